"""`relight bench --load`: render latency through a real `relight serve` while generate jobs queue, against the same
renders on an idle server; the first render after start-up; 'busy' replies. Markdown and JSON."""

import json
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .serve_child import start_serve, stop_serve


@dataclass
class LoadConfig:
    """What `relight bench --load` measures."""

    out: Path  # bench_load.md, bench_load.json
    generate_clients: int = 2  # clients each queueing `generates_each` generate jobs at once
    generates_each: int = 2
    render_clients: int = 4  # clients each sending preview renders back to back
    render_size: int = 128  # preview frame edge, pixels
    slow_size: int = 512  # one more client renders final-quality frames this big meanwhile (0: none)
    image_size: int = 64  # generate input edge, pixels (the cost is mostly the 100k Gaussians, not the pixels)
    idle_renders: int = 12  # renders per render client on the idle server (the baseline)
    serve_args: tuple = ()  # more `relight serve` options, e.g. ("--render-threads", "1") to compare
    log: object = field(default=print)


def _image(size: int, seed: int) -> np.ndarray:
    """[size, size, 4] uint8: a shaded disc of a colour of its own on transparent black."""
    yy, xx = (np.mgrid[:size, :size] + 0.5) / size - 0.5
    colour = np.random.default_rng(seed).uniform(0.2, 0.9, 3)
    rgba = np.zeros((size, size, 4), np.float32)
    rgba[..., :3] = colour * np.clip(0.6 + xx - yy, 0.2, 1.0)[..., None]
    rgba[..., 3] = np.hypot(yy, xx) < 0.38
    return (rgba * 255).round().astype(np.uint8)


def _camera(size: int) -> dict:
    from ..core.camera import Camera

    return Camera.look_at((0.0, -4.0, 0.5), (0.0, 0.0, 0.0), 35.0, size, size).to_dict()


def _stats(seconds: list[float]) -> dict:
    if not seconds:
        return {"n": 0}
    ms = np.asarray(seconds) * 1000.0
    return {"n": int(len(ms)), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "max_ms": round(float(ms.max()), 1)}


def _render_loop(endpoint: str, asset_id: str, size: int, keep_going, latencies: list, errors: list,
                 quality: str = "preview") -> None:
    from relight_protocol.client import Client

    with Client(endpoint) as c:
        while keep_going():
            t = time.perf_counter()
            reply = c.call("render_request", {"asset_id": asset_id, "camera": _camera(size), "quality": quality},
                           timeout=600)
            if reply.content.get("status") == "ok":
                latencies.append(time.perf_counter() - t)
            else:
                errors.append(reply.content.get("evalue", "?"))


def run_load(cfg: LoadConfig) -> dict:
    from relight_protocol.client import Client

    log = cfg.log
    with tempfile.TemporaryDirectory(prefix="relight-bench-load-") as store:
        proc, endpoint, start_s = start_serve(Path(store), cfg.serve_args)
        try:
            with Client(endpoint) as c:
                warm_at_start = c.call("hello_request", timeout=60).content.get("warm", {})
                log(f"server up in {start_s:.1f} s; warming: {warm_at_start}")
                t = time.perf_counter()
                base = c.call("generate_request", {"image": _image(cfg.image_size, 0), "name": "base",
                                                   "colorspace": "srgb"}, timeout=1200)  # fmt: skip
                asset_id = base.content["asset_id"]
                log(f"base asset {asset_id} in {time.perf_counter() - t:.1f} s")
                t = time.perf_counter()
                c.call("render_request", {"asset_id": asset_id, "camera": _camera(cfg.render_size),
                                          "quality": "preview"}, timeout=600)  # fmt: skip
                first_render = time.perf_counter() - t
                warm_after = c.call("hello_request", timeout=60).content.get("warm", {})
            log(f"first render {first_render * 1000:.0f} ms")

            idle, idle_errors, counts = [], [], {}

            def idle_going(key=threading.get_ident):
                counts[key()] = counts.get(key(), 0) + 1
                return counts[key()] <= cfg.idle_renders

            args = (endpoint, asset_id, cfg.render_size, idle_going, idle, idle_errors)
            threads = [threading.Thread(target=_render_loop, args=args) for _ in range(cfg.render_clients)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            log(f"idle renders: {_stats(idle)}")

            slow, slow_errors, mixed, stop_slow = [], [], [], threading.Event()
            if cfg.slow_size:  # cheap previews while one client renders big final frames
                slow_th = threading.Thread(target=_render_loop, args=(endpoint, asset_id, cfg.slow_size,
                                                                      lambda: not stop_slow.is_set(), slow,
                                                                      slow_errors, "final"))  # fmt: skip
                slow_th.start()
                counts.clear()
                threads = [threading.Thread(target=_render_loop, args=args[:4] + (mixed, idle_errors))
                           for _ in range(cfg.render_clients)]  # fmt: skip
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
                stop_slow.set()
                slow_th.join()
                log(f"previews beside {cfg.slow_size}² final renders: {_stats(mixed)}; the final renders: "
                    f"{_stats(slow)}")

            loaded, load_errors, gen_seconds, busy = [], [], [], []
            generating = threading.Event()
            generating.set()

            def generate_client(k: int) -> None:
                with Client(endpoint) as gc:
                    t0 = time.perf_counter()
                    ids = [gc.request("generate_request", {"image": _image(cfg.image_size, 100 + 10 * k + j),
                                                           "name": f"load-{k}-{j}", "colorspace": "srgb"})
                           for j in range(cfg.generates_each)]  # fmt: skip
                    for msg_id in ids:
                        reply = gc.wait(msg_id, timeout=3600)
                        if reply.content.get("ename") == "Busy":
                            busy.append(reply.content["evalue"])
                        gen_seconds.append(time.perf_counter() - t0)

            gens = [threading.Thread(target=generate_client, args=(k,)) for k in range(cfg.generate_clients)]
            for th in gens:
                th.start()
            time.sleep(0.5)  # the generates are queued and running before the renders start
            renders = [threading.Thread(target=_render_loop, args=(endpoint, asset_id, cfg.render_size,
                                                                   generating.is_set, loaded, load_errors))
                       for _ in range(cfg.render_clients)]  # fmt: skip
            for th in renders:
                th.start()
            for th in gens:
                th.join()
            generating.clear()
            for th in renders:
                th.join()
            log(f"renders while generating: {_stats(loaded)}")
        finally:
            stop_serve(proc, timeout=30.0)
    report = {
        "config": {k: v for k, v in cfg.__dict__.items() if k not in ("out", "log")},
        "server_start_s": round(start_s, 2), "warm_at_start": warm_at_start, "warm_after_base": warm_after,
        "first_render_ms": round(first_render * 1000.0, 1),
        "render_idle": _stats(idle), "render_under_generate_load": _stats(loaded),
        "preview_beside_final_renders": _stats(mixed), "final_renders": _stats(slow),
        "generate_seconds_until_done": [round(s, 1) for s in sorted(gen_seconds)],
        "busy_replies": len(busy), "render_errors": idle_errors + load_errors,
    }
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_load.json").write_text(json.dumps(report, indent=1))
    (out / "bench_load.md").write_text(load_markdown(report))
    return report


def load_markdown(r: dict) -> str:
    c, idle, loaded = r["config"], r["render_idle"], r["render_under_generate_load"]
    ratio = loaded.get("p95_ms", 0) / max(idle.get("p95_ms", 1e-9), 1e-9) if idle.get("n") else float("nan")
    return "\n".join([
        "# relight bench --load",
        "",
        f"{c['render_clients']} clients render {c['render_size']}² previews back to back while "
        f"{c['generate_clients']} clients queue {c['generates_each']} generates each ({c['image_size']}² inputs). "
        f"Server options: {' '.join(c['serve_args']) or 'the defaults'}.",
        "",
        "| renders | n | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|",
        f"| idle server | {idle.get('n')} | {idle.get('p50_ms')} | {idle.get('p95_ms')} | {idle.get('max_ms')} |",
        f"| while generates queue | {loaded.get('n')} | {loaded.get('p50_ms')} | {loaded.get('p95_ms')} | "
        f"{loaded.get('max_ms')} |",
        _row(f"beside {c['slow_size']}² final renders", r.get("preview_beside_final_renders", {})),
        _row(f"the {c['slow_size']}² final renders", r.get("final_renders", {})),
        "",
        f"p95 under load / idle: {ratio:.2f}. First render after start-up: {r['first_render_ms']} ms (warming: "
        f"{r['warm_after_base'].get('state')}, {r['warm_after_base'].get('seconds')} s). Generates done after (s): "
        f"{r['generate_seconds_until_done']}. Busy replies: {r['busy_replies']}. Render errors: "
        f"{len(r['render_errors'])}.",
        "",
    ])


def _row(name: str, st: dict) -> str:
    return f"| {name} | {st.get('n', 0)} | {st.get('p50_ms')} | {st.get('p95_ms')} | {st.get('max_ms')} |"
