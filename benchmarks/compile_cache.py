"""torch.compile's start-up cost with a cold and a warm inductor cache, and the steady speed it
buys: the default preset's `Trainer.step()` eager, compiled with an empty cache, and compiled
again with the cache the first compiled run filled; each run in a fresh process (no in-memory
cache carries over), all three sharing a TORCHINDUCTOR_CACHE_DIR made for the measurement.

    python benchmarks/throughput.py --compile-cache [--threads 1] [--step-seconds 10] [--data DIR]

(throughput.py's mode; the block between this module's markers in THROUGHPUT.md is rewritten.)
What the warm run reuses: torch's FX graph cache (inductor's generated and compiled kernels) and
its AOT autograd cache (the joint forward/backward graphs), both on by default in torch 2.13 and
kept under the inductor cache directory; Dynamo still traces the Python code in every process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # find _common however we are loaded
import _common  # noqa: E402  (puts the repository root first on sys.path)

from ganforge.config import preset  # noqa: E402
from ganforge.training import Trainer  # noqa: E402


COMPILE_BEGIN, COMPILE_END = "<!-- compile-cache:begin -->", "<!-- compile-cache:end -->"
# Steps counted as start-up: the first compiles G and D for D's update, the G update compiles D
# again (frozen), and later steps may still recompile (the step counter, a new batch shape).
START_STEPS = 5


def compile_child(data: str, compile: bool, seconds: float) -> dict:
    """In a fresh process: the default preset's first START_STEPS steps (compilation happens in
    them), then steps/s over `seconds`."""
    cfg = preset("default").replace(data=data, device="cpu", compile=compile)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run", progress=False)
        t0 = time.perf_counter()
        for _ in range(START_STEPS):
            trainer.step()
        start_s, steps, t1 = time.perf_counter() - t0, 0, time.perf_counter()
        while time.perf_counter() - t1 < seconds:
            trainer.step()
            steps += 1
        return {"start_s": start_s, "steps_per_s": steps / (time.perf_counter() - t1)}


def compile_cache(data: str, threads: int, seconds: float) -> list[dict]:
    """Eager, then compiled with an empty inductor cache (cold), then compiled again in a new
    process with the cache the cold run filled (warm: torch's FX graph and AOT autograd caches).
    Each in its own process, so that no in-memory cache carries over."""
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**_common.subprocess_env(threads), "TORCHINDUCTOR_CACHE_DIR": cache}
        for name, compile in (("eager (no --compile)", False), ("--compile, cold cache", True),
                              ("--compile, warm cache", True)):
            peak = _common.row_yardstick(threads)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "on" if compile else "off",
                   "--data", data, "--threads", str(threads), "--seconds", str(seconds)]
            with _common.PressureMeter() as pressure:
                p = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if p.returncode != 0:
                raise SystemExit(f"error: the {name} run failed: {p.stderr.strip().splitlines()[-1:]}")
            rows.append({"run": name, **json.loads(p.stdout.strip().splitlines()[-1]), "matmul_gflops": peak,
                         "pressure_pct": pressure.percent})
            print(f"  {name}: first {START_STEPS} steps {rows[-1]['start_s']:.1f} s, then "
                  f"{rows[-1]['steps_per_s']:.1f} steps/s", file=sys.stderr, flush=True)
    return rows


def compile_report(header: dict, command: str, rows: list[dict]) -> str:
    eager = rows[0]
    lines = [COMPILE_BEGIN, f"Machine: {_common.header_line(header)}.", "", "```", command, "```", "",
             f"Default preset, `Trainer.step()`, each run in a fresh process; start-up = the first {START_STEPS} "
             "steps (compilation happens in them) less what those steps take at the steady rate:", "",
             f"| run | first {START_STEPS} steps s | start-up s | steady steps/s | vs eager | matmul GFLOP/s "
             "(yardstick, just before) | CPU pressure |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        overhead = r["start_s"] - START_STEPS / r["steps_per_s"]
        lines.append(f"| {r['run']} | {r['start_s']:.1f} | {overhead:.1f} | {r['steps_per_s']:.1f} | "
                     f"{r['steps_per_s'] / eager['steps_per_s']:.2f}× | {r['matmul_gflops']:.0f} | "
                     f"{throughput_pct(r['pressure_pct'])} |")
    lines.append(COMPILE_END)
    return "\n".join(lines) + "\n"


def throughput_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def main() -> None:
    """The child process's entry: one run, its figures as a JSON line."""
    ap = argparse.ArgumentParser(description="one run of the compile-cache measurement (see the module docstring)")
    ap.add_argument("--child", choices=("on", "off"), required=True, help="torch.compile or eager")
    _common.add_data_arg(ap)
    _common.add_threads_arg(ap)
    ap.add_argument("--seconds", type=float, default=10.0, help="steady-rate measurement after start-up")
    args = ap.parse_args()
    _common.set_threads(args.threads)
    print(json.dumps(compile_child(args.data, args.child == "on", args.seconds)))


if __name__ == "__main__":
    main()
