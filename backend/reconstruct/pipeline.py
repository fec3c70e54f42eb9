"""reconstruct(): multi-view G-buffers -> visual hull -> mesh optimisation -> xatlas UVs and angle-weighted baking
-> ReconstructedMesh, with progress by stage and each stage's time in its meta. Each stage is a function of its own
module; this is where their boundaries meet."""

import time
from dataclasses import dataclass

from ..core.progress import no_progress
from .views import MultiViewSet, ReconstructedMesh


@dataclass
class ReconstructSettings:
    hull_resolution: int = 128  # voxels along the hull grid's longest side
    optimise: bool = True  # False: bake onto the visual hull itself
    texture_size: int = 1024  # texels along each side of every baked map

    def key(self) -> str:
        """The settings' part of a reconstructed asset's content id."""
        return f"{self.hull_resolution}|{int(self.optimise)}|{self.texture_size}"


# each stage's share of the whole run's progress bar: (start, end)
SPANS = {"check": (0.0, 0.03), "hull": (0.03, 0.15), "optimise": (0.15, 0.65), "bake": (0.65, 1.0)}


def _within(progress, stage: str):
    """A progress callable for one stage that maps its own fraction in [0, 1] onto the stage's span."""
    a, b = SPANS[stage]

    def report(_stage: str, fraction: float, message: str = "") -> None:
        progress(stage, a + (b - a) * min(max(float(fraction), 0.0), 1.0), message)

    return report


def reconstruct(views: MultiViewSet, progress=no_progress, settings: ReconstructSettings | None = None) -> ReconstructedMesh:
    """Posed G-buffers -> the baked PBR mesh in the views' frame. Raises ReconstructInputError (a ValueError) naming
    the view and the domain for unusable input, before any work is done."""
    from .bake_maps import bake_views
    from .depth_scale import UNCERTAINTY, depth_scales, rescale_depth
    from .hull import visual_hull
    from .inputs import validate_views
    from .optimise import OptimiseSettings, optimise_mesh

    s = settings or ReconstructSettings()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    progress("check", 0.0, f"checking {views.n_views} views")
    validate_views(views)
    timings["check"] = time.perf_counter() - t0

    t = time.perf_counter()
    progress("hull", SPANS["hull"][0], f"visual hull at {s.hull_resolution}^3")
    stats = {}
    relative = False  # True once some view's depth scale was off: its distance is then trusted only to UNCERTAINTY
    if views.depth is not None:  # depth is trusted up to a scale per view, which the masks' hull fixes
        vm, fm = visual_hull(views, resolution=s.hull_resolution, use_depth=False)
        scales = depth_scales(views, vm, fm, s.hull_resolution)
        views = rescale_depth(views, scales)
        stats["depth_scales"] = [round(float(x), 4) for x in views.meta["depth_scales"]]
        relative = any(x != 1.0 for x in views.meta["depth_scales"])
        stats["depth_relative"] = relative
    v, f = visual_hull(views, resolution=s.hull_resolution, progress=_within(progress, "hull"),
                       depth_margin=UNCERTAINTY if relative else 0.0)
    timings["hull"] = time.perf_counter() - t
    stats["hull_faces"] = int(len(f))

    if s.optimise:
        t = time.perf_counter()
        progress("optimise", SPANS["optimise"][0], "fitting the mesh to the masks, normals and depth")
        v, f, opt_stats = optimise_mesh(views, v, f, progress=_within(progress, "optimise"),
                                        settings=OptimiseSettings(depth_relative=relative))
        stats.update(opt_stats)
        timings["optimise"] = time.perf_counter() - t

    t = time.perf_counter()
    progress("bake", SPANS["bake"][0], f"UVs and {s.texture_size}^2 maps")
    mesh = bake_views(views, v, f, size=s.texture_size, progress=_within(progress, "bake"))
    timings["bake"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    bake_split = mesh.meta.pop("timings", None)  # the bake's own split (unwrap, raster, project, fill) is kept
    mesh.meta = {**mesh.meta, **stats, "timings": timings, "views": views.n_views}
    if bake_split:
        mesh.meta["bake_timings"] = bake_split
    progress("done", 1.0, f"{len(mesh.faces)} faces, {s.texture_size}^2 maps in {timings['total']:.1f} s")
    return mesh
