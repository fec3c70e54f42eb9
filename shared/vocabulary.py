"""The product's vocabulary, one place for both sides: geometry providers, light hints, render qualities, colour
spaces, bake formats and the default endpoint. The backend, the CLI and the add-on's properties all read it here."""

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5557"  # `relight serve` binds it; the add-on connects to it

# Geometry providers. "auto" (request only) picks "scene" when a mesh is sent, else "inflate".
# "hunyuan3d" and "command" are mesh generators a backend has only when configured: its hello lists what it has.
GEOMETRY_PROVIDERS = ("inflate", "scene", "hunyuan3d", "command")
PROVIDERS = ("auto", *GEOMETRY_PROVIDERS)
PROVIDER_LABELS = {
    "auto": ("Auto", "The selected mesh when there is one, else inflate the silhouette"),
    "inflate": ("Inflate", "Inflate the object's silhouette into a closed shape"),
    "scene": ("Scene Mesh", "The selected mesh object, seen from the active camera (or a fitted one)"),
    "hunyuan3d": ("Hunyuan3D-2", "Hunyuan3D-2's shape model on the backend, camera fitted to the photo"),
    "command": ("Backend Generator", "The generator program the backend was started with, camera fitted to the photo"),
}

# What the input photo's lighting is known to be.
LIGHT_HINTS = ("unknown", "world")
LIGHT_HINT_LABELS = {
    "unknown": ("Unknown", "Estimate the lighting of the image"),
    "world": ("Scene World", "The image was lit by this scene's world"),
}

# Render qualities: "preview" is interactive (one sample per pixel, prefiltered reflections), "final" the evaluated
# reference (supersampled, sampled reflections).
RENDER_QUALITIES = ("preview", "final")
RENDER_QUALITY_LABELS = {
    "preview": ("Interactive", "Fast: one sample per pixel, prefiltered reflections"),
    "final": ("Final", "Supersampled, with per-pixel sampled reflections (several seconds)"),
}

MESH_FORMATS = ("glb", "gltf", "obj", "ply", "stl")  # mesh files a generate request (or `--mesh`) may carry
MESH_UP = ("auto", "y", "z")  # a mesh file's up axis: "auto" is the format's convention (glTF, OBJ: Y; PLY, STL: Z)
COLORSPACES = ("srgb", "linear")  # how a request's image pixels are encoded
BAKE_FORMATS = ("glb", "obj")  # obj: a zip of name.obj, name.mtl and its PNG maps (albedo, roughness, metallic)
DEFAULT_TEXTURE_SIZE = 1024  # baked PBR texture side, pixels
DEFAULT_GAUSSIANS = 100_000  # surface Gaussians of a generated asset: a generate request's "gaussians" when not given


def enum_items(values: tuple, labels: dict) -> list[tuple[str, str, str]]:
    """Blender EnumProperty items [(identifier, name, description)] in the order of `values`."""
    return [(v, *labels[v]) for v in values]

# Turntables: "orbit" turns the camera about the asset, "spin_world" turns the world (the HDRI) instead.
TURNTABLE_MODES = ("orbit", "spin_world")
TURNTABLE_MODE_LABELS = {
    "orbit": ("Orbit", "The camera circles the asset once under a fixed world"),
    "spin_world": ("Spin World", "The world turns once about the vertical axis; the camera stays"),
}
LIBRARY_THUMB_SIDE = 64  # pixels per side of the thumbnails list_assets sends
PASS_NAMES = ("albedo", "roughness", "metallic", "normal", "shadow")  # the decomposition passes_request returns
