"""`relight serve`'s queue and heartbeat options, and the settings they make."""

import argparse

from .liveness import LivenessSettings
from .scheduler import QueueSettings


def add_queue_arguments(p: argparse.ArgumentParser) -> None:
    """`relight serve`'s queue and heartbeat options (defaults: QueueSettings, LivenessSettings)."""
    q, h = QueueSettings(), LivenessSettings()
    p.add_argument("--max-jobs-per-client", type=int, default=q.max_jobs_per_client,
                   help=f"unfinished jobs one client may have; one more gets a 'busy' error (default "
                        f"{q.max_jobs_per_client})")
    p.add_argument("--max-jobs", type=int, default=q.max_jobs,
                   help=f"unfinished jobs of all clients together (default {q.max_jobs})")
    p.add_argument("--render-threads", type=int, default=q.render_threads,
                   help=f"renders run side by side (default {q.render_threads})")
    p.add_argument("--client-timeout", type=float, default=h.client_timeout_s,
                   help="seconds of silence after which a heartbeating client counts as gone and its jobs are "
                        f"cancelled (default {h.client_timeout_s:g})")


def queue_options(args) -> dict:
    """serve()'s queues= and liveness= from add_queue_arguments' options."""
    for name in ("max_jobs_per_client", "max_jobs", "render_threads"):
        if getattr(args, name) < 1:
            raise SystemExit(f"relight serve: --{name.replace('_', '-')} must be at least 1")
    if args.client_timeout <= 0:
        raise SystemExit("relight serve: --client-timeout must be positive")
    return {"queues": QueueSettings(max_jobs_per_client=args.max_jobs_per_client, max_jobs=args.max_jobs,
                                    render_threads=args.render_threads),
            "liveness": LivenessSettings(client_timeout_s=args.client_timeout)}
