"""Training throughput with 1 process versus 2 data-parallel processes (torchrun, gloo, CPU).

    python benchmarks/scaling.py [--minutes 0.5] [--batch-sizes 64,256] [--out results.json]

For each global batch size it runs `ganforge train` (default preset: conditional MLP, bundled
digits) for a fixed wall-clock budget, three ways, and reports images per second (G steps x
global batch / s, the median of the logged intervals after the first, which holds warm-up):

    1 proc x 1 thread     the baseline one worker
    1 proc x N threads    the same cores used by intra-op threads instead of processes
    2 procs x 1 thread    torchrun --nproc_per_node=2, each rank half of every batch

Prints a Markdown table and, with --out, writes the numbers with the machine and the date.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG_EVERY = 20
NEVER = 10**9  # no sample grids or checkpoints inside the measured time


def run(procs: int, threads: int, batch: int, minutes: float, workdir: Path) -> float | None:
    out = workdir / f"p{procs}-t{threads}-b{batch}"
    train = ["-m", "ganforge", "train", "--device", "cpu", "--batch-size", str(batch), "--minutes", str(minutes),
             "--log-every", str(LOG_EVERY), "--sample-every", str(NEVER), "--checkpoint-every", str(NEVER),
             "--quiet", "--out", str(out)]
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"] if procs > 1 else []
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, *launcher, *train], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(r["img_per_s"] for r in records[1:]) if len(records) > 1 else None


def fmt(img_s: float | None) -> str:
    return "-" if img_s is None else f"{img_s:.0f}"  # "-": too slow to log two intervals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=0.5, help="budget of each training run")
    parser.add_argument("--batch-sizes", default="64,256")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    ways = [(1, 1), (1, cores), (2, 1)]
    results, load_before = [], os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            for procs, threads in ways:
                img_s = run(procs, threads, batch, args.minutes, Path(tmp))
                results.append({"batch": batch, "procs": procs, "threads": threads, "img_per_s": img_s})
                print(f"batch {batch}: {procs} proc x {threads} thread(s): {fmt(img_s)} img/s", file=sys.stderr)

    print(f"| global batch | 1 proc x 1 thread | 1 proc x {cores} threads | 2 procs x 1 thread | 2 procs / 1x1 |")
    print("|---|---|---|---|---|")
    for batch in dict.fromkeys(r["batch"] for r in results):
        row = {(r["procs"], r["threads"]): r["img_per_s"] for r in results if r["batch"] == batch}
        base, two = row[(1, 1)], row[(2, 1)]
        ratio = f"{two / base:.2f}x" if base and two else "-"
        print(f"| {batch} | {fmt(base)} | {fmt(row[(1, cores)])} | {fmt(two)} | {ratio} |")
    if args.out:
        args.out.write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(),
            "processor": platform.processor(), "cores": cores, "load_avg_before": load_before,
            "command": " ".join([Path(sys.executable).name, *sys.argv]), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
