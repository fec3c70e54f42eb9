"""`relight bench --addon`: the live preview end to end. The add-on, installed in headless bpy, follows a scripted
orbit of the camera, a turn of the world, then the orbit again with a point lamp beside the asset (as Blender's
default scene has one), against a real `relight serve`; each step's latency runs from the state change to the pixels
in the Blender image "Relight Preview", split into where the time went."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .serve_child import start_serve, stop_serve, wait_warm

REPO = Path(__file__).resolve().parents[2]  # the source tree: build_addon.py builds the extension zip
FPS_BAR, P95_BAR_MS = 20.0, 80.0  # the bars at 512^2
STEP_TIMEOUT = 120.0  # seconds a step may wait for its frame


def _blender_home() -> Path:
    """A temp folder; Blender's user folders go there unless bpy is imported already (it writes there)."""
    home = Path(tempfile.mkdtemp(prefix="relight-bench-addon-"))
    if "bpy" in sys.modules:  # already set up by whoever imported it (a test session): keep its folders
        return home
    for var, sub in (("BLENDER_USER_RESOURCES", "blender"), ("BLENDER_USER_SCRIPTS", "blender/scripts"),
                     ("BLENDER_USER_CONFIG", "blender/config"), ("XDG_CACHE_HOME", "cache")):  # fmt: skip
        os.environ[var] = str(home / sub)
        (home / sub).mkdir(parents=True, exist_ok=True)
    return home


def _percentiles(xs) -> dict:
    a = 1e3 * np.asarray(xs, np.float64)
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)), "n": int(a.size)}


def split(timings: list[dict]) -> dict:
    """Median ms of each part of a frame: render (the server's rasterize, visibility, coverage and shading stages),
    encode (AgX and 8 bits: the server's tonemap stage), server_other (the rest of the server's time: decoding the
    request, finding the asset and world), transport (the round trip less the server and the client's decode),
    decode (the client's poll that received and decoded the reply), upload (the pixels into the Blender image)."""
    parts = {k: [] for k in ("render", "encode", "server_other", "transport", "decode", "upload")}
    for t in timings:
        s = t["server"]
        render = sum(float(s.get(k, 0.0)) for k in ("visibility", "rasterize", "coverage", "shade"))
        encode = float(s.get("tonemap", 0.0))
        total = float(s.get("server_total", render + encode))
        parts["render"].append(render)
        parts["encode"].append(encode)
        parts["server_other"].append(max(0.0, total - render - encode))
        parts["transport"].append(max(0.0, t["round_trip"] - total - t["decode"]))
        parts["decode"].append(t["decode"])
        parts["upload"].append(t["upload"])
    return {k: 1e3 * float(np.median(v)) for k, v in parts.items() if v}


def run(out: Path, size: int = 512, steps: int = 30, n_gaussians: int = 100_000, hdri: str = "studio",
        log=print) -> dict:  # fmt: skip
    """Run the scripted orbit, world turn and orbit under a point lamp; write bench_addon.json and bench_addon.md into `out`."""
    from ..core.cache import cache_root
    from .bench import bench_asset

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    home = _blender_home()
    import bpy  # noqa: E402  (after the user folders are set)

    sys.path.insert(0, str(REPO))
    import build_addon

    store_dir = cache_root() / "bench_assets"
    asset, _ = bench_asset(n_gaussians, store_dir, log)
    zip_path = build_addon.build(home / "dist", REPO / "wheels")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default",
                                                    enable_on_install=True) == {"FINISHED"}  # fmt: skip
    import importlib

    addon = "bl_ext.user_default.relight"
    live = importlib.import_module(addon + ".live")
    scene_io = importlib.import_module(addon + ".scene_io")
    proc, endpoint, _ = start_serve(store_dir)
    try:
        warm_s = wait_warm(endpoint)  # the legs time a warmed server, as an artist's has been for a while
        from ..core.frames import camera_to_world

        scene = bpy.context.scene
        world = bpy.data.worlds.new("Bench World")
        world.use_nodes = True
        nt = world.node_tree
        env = nt.nodes.new("ShaderNodeTexEnvironment")
        env.image = bpy.data.images.load(os.path.join(bpy.utils.system_resource("DATAFILES"), "studiolights",
                                                      "world", f"{hdri}.exr"))  # fmt: skip
        mapping = nt.nodes.new("ShaderNodeMapping")
        nt.links.new(nt.nodes.new("ShaderNodeTexCoord").outputs["Generated"], mapping.inputs["Vector"])
        nt.links.new(mapping.outputs["Vector"], env.inputs["Vector"])
        nt.links.new(env.outputs["Color"], nt.nodes["Background"].inputs["Color"])
        scene.world = world
        cam = camera_to_world(asset.input_camera, asset.model_matrix).resized(size, size)
        cam_obj = scene_io.camera_from_dict(cam.to_dict(), scene)
        base = np.array(cam_obj.matrix_world)
        scene.relight.asset_id = asset.asset_id
        prefs = bpy.context.preferences.addons[addon].preferences
        prefs.endpoint, prefs.live_max_side = endpoint, size
        bpy.context.window_manager.relight.live = True
        live.LIVE.preview.settings.final_quality = False  # the interactive frame only
        centre = asset.model_matrix[:3, 3]

        def wait_frame() -> None:
            deadline = time.monotonic() + STEP_TIMEOUT
            while True:
                frame = live.step()
                if frame is not None and frame.state_key == live.LIVE.preview.state_key:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no frame within {STEP_TIMEOUT} s: {live.LIVE.preview.error}")
                if live.LIVE.preview.in_flight is not None:  # sleep on the socket, not in a spin: 2 cores only
                    live.LIVE.client.wait_readable(50)

        t = time.perf_counter()
        wait_frame()  # the first frame: the world travels, the server loads the asset and warms its caches
        first_s = time.perf_counter() - t
        import mathutils

        legs = {}
        for leg in ("orbit", "world_turn", "orbit_point_lamp"):
            if leg == "orbit_point_lamp":  # as Blender's default scene lights it: a 1000 W point lamp, above and aside
                lamp = bpy.data.objects.new("Bench Lamp", bpy.data.lights.new("Bench Lamp", "POINT"))
                lamp.data.energy = 1000.0
                lamp.location = tuple(centre + asset.scale * np.array([1.5, -1.0, 2.0]))
                scene.collection.objects.link(lamp)
                cam_obj.matrix_world = mathutils.Matrix(base.tolist())
                wait_frame()  # the lamp's first frame: its stored-visibility blend is made once
            latencies, start_n = [], len(live.LIVE.timings)
            t_leg = time.perf_counter()
            for i in range(1, steps + 1):
                if leg != "world_turn":  # 2 degrees about the vertical through the asset per step
                    a = math.radians(2.0 * i)
                    c, s = math.cos(a), math.sin(a)
                    rz = np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
                    to, back = np.eye(4), np.eye(4)
                    to[:3, 3], back[:3, 3] = centre, -centre
                    cam_obj.matrix_world = mathutils.Matrix((to @ rz @ back @ base).tolist())
                else:  # the world's Mapping Z rotation, 0.05 rad per step
                    mapping.inputs["Rotation"].default_value[2] = 0.05 * i
                t0 = time.perf_counter()
                wait_frame()
                latencies.append(time.perf_counter() - t0)
            wall = time.perf_counter() - t_leg
            timings = live.LIVE.timings[start_n:]
            legs[leg] = {"fps": steps / wall, "latency": _percentiles(latencies), "split_ms": split(timings),
                         "round_trip": _percentiles([x["round_trip"] for x in timings])}  # fmt: skip
            log(f"bench --addon: {leg}: {legs[leg]['fps']:.1f} fps, latency p50 {legs[leg]['latency']['p50_ms']:.1f} "
                f"ms, p95 {legs[leg]['latency']['p95_ms']:.1f} ms")  # fmt: skip
        bpy.context.window_manager.relight.live = False
        report = {"size": size, "steps": steps, "gaussians": len(asset.gaussians), "hdri": hdri,
                  "first_frame_s": first_s, "warm_s": warm_s, "legs": legs, "loadavg": list(os.getloadavg()),
                  "bars": {"fps": FPS_BAR, "p95_ms": P95_BAR_MS}}  # fmt: skip
    finally:
        stop_serve(proc)
    (out / "bench_addon.json").write_text(json.dumps(report, indent=1))
    (out / "bench_addon.md").write_text(markdown(report))
    return report


def markdown(rep: dict) -> str:
    lines = ["# relight bench --addon: the live preview end to end", "",
             f"Headless bpy with the installed add-on against a real `relight serve` on loopback; {rep['size']}² "
             "frames "
             f"of {rep['gaussians']} Gaussians under the `{rep['hdri']}` HDRI; {rep['steps']} steps per leg, each "
             "waiting for its own frame (latency = state change to pixels in the image 'Relight Preview'). "
             f"Load average at the end {rep['loadavg'][0]:.1f} (other processes share the 2 cores). First frame "
             f"(world upload, asset load) {rep['first_frame_s']:.2f} s, after the server's start-up warming had ended "
             f"({rep.get('warm_s', float('nan')):.1f} s after it listened; frames rendered during it share the "
             "cores with it).", "",
             "| leg | fps | latency p50 / p95 ms | render | encode | server other | transport | decode | upload |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, leg in rep["legs"].items():
        s = leg["split_ms"]
        lines.append(f"| {name} | {leg['fps']:.1f} | {leg['latency']['p50_ms']:.1f} / {leg['latency']['p95_ms']:.1f} | "
                     f"{s['render']:.1f} | {s['encode']:.1f} | {s['server_other']:.1f} | {s['transport']:.1f} | "
                     f"{s['decode']:.1f} | {s['upload']:.1f} |")  # fmt: skip
    lines += ["", f"Bars: >= {rep['bars']['fps']:.0f} fps, p95 <= {rep['bars']['p95_ms']:.0f} ms. Split columns are "
              "medians in ms (render: the server's render stages; encode: AgX + 8 bits)."]  # fmt: skip
    return "\n".join(lines) + "\n"
