"""`relight serve`'s command line: checks what can be checked before the slow start (generator template, keys, a
non-loopback bind), starts the Ray workers when asked, then runs the Server until SIGINT/SIGTERM."""

import argparse
import os
import signal
import sys
from pathlib import Path

import zmq

from .liveness import LivenessSettings
from .options import add_queue_arguments, queue_options
from .scheduler import QueueSettings
from .server import DEFAULT_BIND, Server, insecure_bind_message, is_loopback


def serve(bind: str = DEFAULT_BIND, store_dir: str | Path | None = None, *, install_signals: bool = True,
          model_path: str | None = None, generator_cmd: str | None = None, hunyuan_steps: int | None = None,
          octree_resolution: int | None = None, keys_dir: str | Path | None = None, insecure: bool = False,
          workers: str = "local", ray_workers: int = 2, queues: QueueSettings | None = None,
          liveness: LivenessSettings | None = None) -> int:
    """Run the service until SIGINT/SIGTERM. Prints 'relight serve: listening on <endpoint>' once ready."""
    # The renderer's OpenMP threads sleep between kernels instead of spinning (libgomp spins for a while by
    # default): on 2 cores shared with Blender, the spinning starved the add-on and the server's own serial steps
    # (`relight bench --addon`: 7 -> 19 fps, p95 210 -> 61 ms). Set before OpenMP loads, unless already chosen.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ..generate.geometry.command import GeneratorError, check_template
    from ..generate.geometry.generators import GeneratorSettings

    if generator_cmd:
        try:
            check_template(generator_cmd)
        except GeneratorError as e:
            print(f"relight serve: {e}", file=sys.stderr, flush=True)
            return 2
    if keys_dir is None and not insecure and not is_loopback(bind):  # said before the slow warm-up
        print(f"relight serve: {insecure_bind_message(bind)}", file=sys.stderr, flush=True)
        return 2
    if keys_dir is not None:
        from .keys import KeysError, load_server_keys

        try:
            load_server_keys(keys_dir)
        except KeysError as e:
            print(f"relight serve: {e}", file=sys.stderr, flush=True)
            return 2
    settings = GeneratorSettings.from_environment(model_path, generator_cmd, hunyuan_steps, octree_resolution)
    cluster = None
    try:
        from .cluster import ClusterUnavailable, RayCluster, parse_workers

        spec = parse_workers(workers, ray_workers)
        if spec is not None:
            print(f"relight serve: starting {spec.workers} Ray workers"
                  f"{' on ' + spec.address if spec.address else ' on a local Ray cluster'}", flush=True)
            cluster = RayCluster(spec, settings, log=lambda text: print(f"relight serve: {text}", flush=True))
    except (ValueError, ClusterUnavailable) as e:
        print(f"relight serve: {e}", file=sys.stderr, flush=True)
        return 2
    server = Server(bind, store_dir, generators=settings, keys_dir=keys_dir, insecure=insecure,
                    cluster=cluster, queues=queues, liveness=liveness)
    server.log(f"store {server.store_dir}")
    server.log(f"geometry providers: {', '.join(server._providers())}")
    server.warm_up()
    try:
        endpoint = server.start()
    except zmq.ZMQError as e:
        print(f"relight serve: cannot bind {bind}: {e}; is another `relight serve` running? "
              "choose another port with --bind tcp://127.0.0.1:PORT", file=sys.stderr, flush=True)
        if cluster is not None:
            cluster.shutdown()
        return 2
    if install_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: server.stop())
    server.log(f"listening on {endpoint}")
    server.serve_forever()
    return 0


def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `serve` subcommand; its handler is args.func(args) -> exit code."""
    p = subparsers.add_parser("serve", help="run the backend service for the Blender add-on (ZeroMQ)",
                              description="Run the Relight backend service (ZeroMQ ROUTER).")
    p.add_argument("--bind", default=DEFAULT_BIND,
                   help=f"ZeroMQ endpoint to bind (default {DEFAULT_BIND}; a port of * or 0 picks a free one; "
                        "a non-loopback address needs --keys, or --insecure)")
    p.add_argument("--keys", default=None, type=Path, metavar="DIR",
                   help="CURVE keys folder written by `relight keys`: encrypt, and serve only the clients whose "
                        "public keys are in DIR/authorized (re-read when it changes)")
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback --bind without --keys (anyone who reaches the port can use it)")
    p.add_argument("--store", default=None, type=Path,
                   help="folder of stored assets (default $RELIGHT_STORE_DIR or ~/.cache/relight/assets)")
    p.add_argument("--model-path", default=None,
                   help="Hunyuan3D-2's models folder (default $HY3DGEN_MODELS or ~/.cache/hy3dgen); the hunyuan3d "
                        "provider is offered when the `hunyuan` extra is installed and the weights are there")
    p.add_argument("--generator-cmd", default=None,
                   help="an external mesh generator, offered as the `command` provider: a command line with {image} "
                        "(the object's PNG) and {mesh} or {mesh.obj|.ply|.stl} (the file it writes); default "
                        "$RELIGHT_GENERATOR_CMD")
    p.add_argument("--hunyuan-steps", type=int, default=None, help="Hunyuan3D-2's sampling steps (default 30)")
    p.add_argument("--octree-resolution", type=int, default=None,
                   help="Hunyuan3D-2's surface grid cells per side (default 256; about 128 on a CPU)")
    add_queue_arguments(p)
    p.add_argument("--workers", default="local",
                   help="where jobs run: local (this process, default), ray (a local Ray cluster started here) or "
                        "ray:ADDRESS (a running Ray cluster, e.g. ray:10.0.0.5:6379); needs the `cluster` extra")
    p.add_argument("--ray-workers", type=int, default=2,
                   help="pipeline workers to start on the Ray cluster (each holds a CPU, and a GPU when there are "
                        "enough; default 2)")
    p.set_defaults(func=lambda args: serve(args.bind, args.store, model_path=args.model_path,
                                           generator_cmd=args.generator_cmd, hunyuan_steps=args.hunyuan_steps,
                                           octree_resolution=args.octree_resolution, keys_dir=args.keys,
                                           insecure=args.insecure, workers=args.workers, ray_workers=args.ray_workers,
                                           **queue_options(args)))
    return p
