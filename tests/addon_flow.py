"""The add-on's Generate -> Preview -> Import flow against a running `relight serve`, shared by test_addon.py (bpy 4.5,
this venv) and blender_version_flow.py (bpy 4.2 and 5.0, each in its own venv): it needs only bpy and numpy."""

from __future__ import annotations

from pathlib import Path

from blender_fixture import addon_prefs, image_pixels, make_camera, make_hdri_world, tick_until_idle, uses_nodes

TEXTURE_SIZE = 256  # pixels; the baked maps' side, small to keep the flow quick


def use_server(endpoint: str) -> None:
    """Point the add-on's preferences at `endpoint` with a request timeout generous for a loaded machine."""
    prefs = addon_prefs()
    prefs.endpoint = endpoint
    prefs.request_timeout = 10.0


def principled_input_source(link_node, socket_name: str):
    """Follow the link into `socket_name` back through Separate Color / normal-map style nodes to an image node."""
    sock = link_node.inputs[socket_name]
    assert sock.is_linked, f"Principled BSDF {socket_name} is not linked to a texture"
    node = sock.links[0].from_node
    seen = 0
    while node.type != "TEX_IMAGE" and seen < 4:
        linked = [i for i in node.inputs if i.is_linked]
        assert linked, f"{socket_name} comes from {node.type} with no input"
        node = linked[0].links[0].from_node
        seen += 1
    return node


def generate_preview_import(addon, endpoint: str, image_path: Path) -> dict[str, float]:
    """Image -> Generate (tick) -> Preview under the scene world (tick) -> Import PBR mesh (tick), asserting each
    step's result in the scene. `addon`: the installed extension's module. Returns each step's seconds."""
    import bpy

    use_server(endpoint)
    session = addon.session
    scene = bpy.context.scene
    status = bpy.context.window_manager.relight
    make_hdri_world("sunset", rotation_z=0.5)
    make_camera(location=(0.0, -4.0, 1.0), target=(0.0, 0.0, 0.3), width=80, height=64)
    scene.relight.image = bpy.data.images.load(str(image_path))
    scene.relight.texture_size = TEXTURE_SIZE

    seen = []
    record = lambda: seen.append((status.stage, round(status.fraction, 3)))  # noqa: E731
    assert bpy.ops.relight.generate() == {"FINISHED"}  # returns at once: the job runs on the backend
    assert session.SESSION.running_job() is not None and status.job_action == "generate"
    t_generate = tick_until_idle(session, on_tick=record)
    assert status.last_error == "", status.last_error
    assert scene.relight.asset_id
    assert "reproduces the photo at" in status.status_message and "roughness" in status.status_message
    fractions = [f for _, f in seen if f > 0]
    assert fractions and max(fractions) >= 0.3 and len({s for s, _ in seen}) >= 3  # progress reached the panel

    assert bpy.ops.relight.preview() == {"FINISHED"}
    t_preview = tick_until_idle(session)
    assert status.last_error == "", status.last_error
    assert status.last_warning == ""
    preview = bpy.data.images["Relight Preview"]
    assert tuple(preview.size) == (80, 64)
    px = image_pixels(preview)
    alpha = px[..., 3]
    coverage = float((alpha > 0.5).mean())
    assert 0.02 < coverage < 0.9, coverage
    rgb = px[..., :3][alpha > 0.5]
    assert rgb.std() > 0.02 and rgb.mean() > 0.05  # shaded, not flat or black

    before = set(bpy.data.objects)
    assert bpy.ops.relight.import_mesh() == {"FINISHED"}
    t_import = tick_until_idle(session)
    assert status.last_error == "", status.last_error
    meshes = [o for o in bpy.data.objects if o not in before and o.type == "MESH"]
    assert len(meshes) == 1
    mat = meshes[0].active_material
    assert mat is not None and uses_nodes(mat)
    bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    textures = {name: principled_input_source(bsdf, name) for name in ("Base Color", "Roughness", "Metallic")}
    for name, node in textures.items():
        assert node.type == "TEX_IMAGE" and node.image is not None, name
        assert tuple(node.image.size) == (TEXTURE_SIZE, TEXTURE_SIZE), (name, tuple(node.image.size))
    return {"generate": t_generate, "preview": t_preview, "import": t_import}
