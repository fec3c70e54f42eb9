"""The `relight` command: demo, serve, generate, reconstruct, render, bake — the same pipeline in-process or as a service."""

import argparse
import json
import sys
from pathlib import Path


def _cmd_demo(args) -> int:
    from .demo import SAMPLE, run_demo

    run_demo(Path(args.out), Path(args.image) if args.image else SAMPLE, size=args.size)
    return 0


def _store(args):
    from .service.store import AssetStore, default_store_dir

    return AssetStore(Path(args.store) if args.store else default_store_dir())


def _cmd_generate(args) -> int:
    from .core.input_image import InputImage
    from .demo import print_progress
    from .generate.pipeline import GenerateInputs, generate

    from .generate.geometry.generators import GeneratorSettings

    mesh = corner_normals = None
    if args.mesh:  # the same reader the server uses for a mesh file sent with a generate request
        from .generate.geometry.mesh_file import read_mesh_file

        *mesh, corner_normals = read_mesh_file(args.mesh, args.up, with_normals=True)
    generators = GeneratorSettings.from_environment(args.model_path, args.generator_cmd)
    mask = None
    if args.mask:  # the user's own outline of the object: a white-on-black image, or one with transparency
        from .core.imageio import read_rgba
        from .generate.segment import mask_from_picture

        mask = mask_from_picture(read_rgba(args.mask))
    asset = generate(GenerateInputs(image=InputImage.from_file(args.image), name=Path(args.image).stem, mesh=mesh,
                                    corner_normals=corner_normals, provider=args.provider, generators=generators,
                                    mask=mask, n_gaussians=args.gaussians),
                     print_progress)
    fit = asset.meta.get("camera_fit") or {}
    if fit.get("done"):
        print(f"relight generate: camera fitted to the photo ({fit.get('reason')}): silhouette IoU "
              f"{fit.get('iou', float('nan')):.3f}", file=sys.stderr)
    _store(args).put(asset)
    meta = asset.meta
    if meta.get("reproduction_psnr") is not None:  # on stderr: stdout is the asset id, for scripts
        print(f"relight generate: the asset reproduces the photo at {meta['reproduction_psnr']:.1f} dB; "
              f"roughness {meta['roughness']:.2f}, metallic {meta['metallic']:.2f}", file=sys.stderr)
    readings = meta.get("material_readings") or []
    if len(readings) > 1:  # the first reading reproduced the photo poorly: say what else was tried
        told = "; ".join(f"{r['how']} (roughness {r['roughness']:.2f}, metallic {r['metallic']:.0f}): "
                         f"{r['reproduction_psnr']} dB" + (", kept" if r["chosen"] else "") for r in readings)
        print(f"relight generate: readings of the material tried: {told}", file=sys.stderr)
    for warning in meta.get("warnings", []):
        print(f"relight generate: warning: {warning}", file=sys.stderr)
    print(asset.asset_id)
    return 0


def _cmd_reconstruct(args) -> int:
    from .demo import print_progress
    from .reconstruct.asset import asset_from_reconstruction, content_id
    from .reconstruct.files import glb_bytes, write_obj
    from .reconstruct.inputs import load_views
    from .reconstruct.pipeline import ReconstructSettings, reconstruct

    settings = ReconstructSettings(texture_size=args.texture_size, optimise=not args.no_optimise)
    views = load_views(Path(args.views))
    mesh = reconstruct(views, print_progress, settings)
    name = Path(args.out).stem
    glb = glb_bytes(mesh, name)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_bytes(glb)
    if args.obj:
        write_obj(mesh, Path(args.obj), name)
    t = mesh.meta["timings"]
    print("relight reconstruct: " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()), file=sys.stderr)
    if not args.no_store:  # also a stored asset, so `relight render ID` and the add-on can relight it
        asset = asset_from_reconstruction(mesh, views, content_id(views, settings.key()), name, baked_glb=glb)
        _store(args).put(asset)
        print(f"relight reconstruct: stored as asset {asset.asset_id}", file=sys.stderr)
    print(args.out)
    return 0


def _environment(args):
    from .core.envmap import Environment, builtin_hdris

    hdris = builtin_hdris()
    src = hdris.get(args.hdri, args.hdri)
    if not Path(src).exists():
        raise SystemExit(f"no HDRI {args.hdri!r}: give a path to an .exr/.hdr or one of {', '.join(sorted(hdris))}")
    import math

    return Environment.from_file(src, math.radians(args.rotation), args.strength)


def _cmd_render(args) -> int:
    from .core.frames import camera_to_world
    from .core.imageio import write_rgba
    from .render.frame import render
    from .render.settings import PRESETS

    asset = _store(args).get(args.asset_id)
    cam = camera_to_world(asset.input_camera, asset.model_matrix).resized(args.size, args.size)
    if args.turntable or args.spin_world:
        return _render_turntable(args, asset, cam)
    res = render(asset, cam, _environment(args), PRESETS[args.quality], background=args.background)
    write_rgba(args.out, res.rgba8)
    print(json.dumps({k: round(v, 4) for k, v in res.timings.items()}))
    return 0


def _progress_to_stderr(stage: str, fraction: float, message: str = "") -> None:
    print(f"[{100 * fraction:5.1f}%] {stage:<10} {message}", file=sys.stderr, flush=True)


def _render_turntable(args, asset, cam) -> int:
    """`relight render ID --turntable N | --spin-world N --out FILE.mp4`: one full turn in N frames, H.264."""
    from .export.video import encode_mp4
    from .render.settings import PRESETS
    from .render.turntable import turntable_frames

    if args.turntable and args.spin_world:
        raise ValueError("give --turntable N (orbit the camera) or --spin-world N (turn the HDRI), not both")
    frames = args.turntable or args.spin_world
    if not 2 <= frames <= 1440:
        raise ValueError(f"a turntable needs 2 to 1440 frames, got {frames}")
    if not str(args.out).lower().endswith(".mp4"):
        raise ValueError(f"a turntable is written as an .mp4 video; --out {args.out} does not end in .mp4")
    if args.size % 2:
        raise ValueError(f"an H.264 video needs an even --size, got {args.size}")
    mode = "orbit" if args.turntable else "spin_world"
    data = encode_mp4(turntable_frames(asset, cam, _environment(args), frames, mode, PRESETS[args.quality],
                                       args.background, _progress_to_stderr), args.fps)  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_bytes(data)
    print(args.out)
    return 0


def _cmd_bake(args) -> int:
    from .demo import print_progress
    from .export.bake import bake_glb

    asset = _store(args).get(args.asset_id)
    Path(args.out).write_bytes(bake_glb(asset, args.texture_size, print_progress))
    print(args.out)
    return 0


def _gaussian_count(text: str) -> int:
    """--gaussians: a whole number, checked by the protocol's own field check (a generate request's bounds)."""
    from relight_protocol.errors import ProtocolError
    from relight_protocol.fields import as_int
    from relight_protocol.limits import MAX_GAUSSIANS, MIN_GAUSSIANS

    try:
        return as_int(int(text), "gaussians", MIN_GAUSSIANS, MAX_GAUSSIANS)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    except ProtocolError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    from relight_protocol.limits import MAX_GAUSSIANS, MIN_GAUSSIANS
    from relight_protocol.vocabulary import DEFAULT_GAUSSIANS, PROVIDERS, RENDER_QUALITIES

    from .evaluate.bench import add_bench_parser
    from .evaluate.forward import add_eval_parser
    from .service.serve_command import add_serve_parser

    ap = argparse.ArgumentParser(prog="relight", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run the whole pipeline on the shipped sample image, relit under 8 HDRIs")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--image", default=None, help="input image (default: the shipped sample)")
    p.add_argument("--size", type=int, default=512, help="relit image size in pixels")
    p.set_defaults(func=_cmd_demo)

    add_serve_parser(sub)
    from .service.keys import add_keys_parser

    add_keys_parser(sub)  # `relight keys` (backend/service/keys.py): CURVE keys for `relight serve --keys`
    add_bench_parser(sub)  # `relight bench` (backend/evaluate/bench.py)
    from .evaluate.multiview import add_multiview_eval
    from .evaluate.relight import add_relight_eval

    kinds = add_eval_parser(sub)  # `relight eval forward`
    add_relight_eval(kinds)  # `relight eval relight`
    add_multiview_eval(kinds)  # `relight eval multiview`

    p = sub.add_parser("generate", help="build an asset from an image into the store; prints its id")
    p.add_argument("image")
    p.add_argument("--mesh", default=None, help="the object's mesh: .glb, .gltf (embedded), .obj, .ply or .stl "
                   "(default: inflate the silhouette)")
    p.add_argument("--up", choices=("auto", "y", "z"), default="auto",
                   help="the mesh file's up axis (auto: Y for glTF and OBJ, Z for PLY and STL)")
    p.add_argument("--mask", default=None, help="the object's outline as an image (white on black, or transparency), "
                   "when the automatic segmentation of a busy background is wrong")
    p.add_argument("--provider", choices=PROVIDERS, default="auto",
                   help="geometry: auto (the --mesh when given, else inflate), inflate, scene, hunyuan3d "
                        "(Hunyuan3D-2, the `hunyuan` extra and local weights) or command (--generator-cmd)")
    p.add_argument("--model-path", default=None, help="Hunyuan3D-2's models folder (default $HY3DGEN_MODELS)")
    p.add_argument("--generator-cmd", default=None,
                   help="an external generator: a command with {image} and {mesh} (default $RELIGHT_GENERATOR_CMD)")
    p.add_argument("--gaussians", type=_gaussian_count, default=DEFAULT_GAUSSIANS,
                   help=f"surface Gaussians of the asset ({MIN_GAUSSIANS}..{MAX_GAUSSIANS}, default "
                        f"{DEFAULT_GAUSSIANS}): fewer generate and relight faster, more keep finer detail")
    p.add_argument("--store", default=None)
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("reconstruct", help="multi-view G-buffers (MAGE's tiled layout, or per-view images with "
                       "cameras.json) -> a baked PBR mesh (GLB), also kept in the store")
    p.add_argument("views", help="folder of G-buffer images (see docs/MULTIVIEW.md)")
    p.add_argument("--out", required=True, help="the GLB to write")
    p.add_argument("--obj", default=None, help="also write OBJ + MTL + textures into this folder")
    p.add_argument("--texture-size", type=int, default=1024)
    p.add_argument("--no-optimise", action="store_true", help="bake onto the visual hull (no mesh optimisation)")
    p.add_argument("--no-store", action="store_true", help="do not keep the result in the asset store")
    p.add_argument("--store", default=None)
    p.set_defaults(func=_cmd_reconstruct)

    p = sub.add_parser("render", help="relight a stored asset from its input camera")
    p.add_argument("asset_id")
    p.add_argument("--hdri", default="studio", help="bpy HDRI name or .exr/.hdr path")
    p.add_argument("--rotation", type=float, default=0.0, help="world Z rotation in degrees")
    p.add_argument("--strength", type=float, default=1.0)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--background", action="store_true", help="draw the environment behind the object")
    p.add_argument("--quality", choices=RENDER_QUALITIES, default="final",
                   help="final: supersampled with per-pixel specular sampling; preview: interactive speed")
    p.add_argument("--out", required=True, help="the PNG to write (an .mp4 with --turntable or --spin-world)")
    p.add_argument("--turntable", type=int, default=0, metavar="N",
                   help="render an orbit of N frames around the asset into the .mp4 --out")
    p.add_argument("--spin-world", type=int, default=0, metavar="N",
                   help="render N frames of the HDRI turning once (the camera stays) into the .mp4 --out")
    p.add_argument("--fps", type=int, default=24, help="frames per second of a turntable video")
    p.add_argument("--store", default=None)
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("bake", help="bake a stored asset to a GLB with PBR textures")
    p.add_argument("asset_id")
    p.add_argument("--texture-size", type=int, default=1024)
    p.add_argument("--out", required=True)
    p.add_argument("--store", default=None)
    p.set_defaults(func=_cmd_bake)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, FileNotFoundError) as e:  # GeneratorError, MeshFileError, bad views: ValueErrors
        print(f"relight {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
