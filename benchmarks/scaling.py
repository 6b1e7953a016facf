"""Training throughput with 1 process versus 2 data-parallel processes (torchrun, gloo, CPU).

    python benchmarks/scaling.py [--minutes 0.5] [--batch-sizes 64,256] [--out results.json]

For each global batch size it runs `ganforge train` (the default preset: the conditional dcgan
pair; bundled digits) for a fixed wall-clock budget, three ways, and reports images per second: G steps x
global batch / training seconds, as the final checkpoint records them (start-up excluded):

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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this worktree's ganforge, as the runs use

from ganforge.checkpoint import load_checkpoint  # noqa: E402
from ganforge.rundir import RunDir  # noqa: E402
NEVER = 10**9  # no logs, sample grids or checkpoints inside the measured time


def run(procs: int, threads: int, batch: int, minutes: float, workdir: Path) -> float:
    out = workdir / f"p{procs}-t{threads}-b{batch}"
    train = ["-m", "ganforge", "train", "--device", "cpu", "--batch-size", str(batch), "--minutes", str(minutes),
             "--log-every", str(NEVER), "--sample-every", str(NEVER), "--checkpoint-every", str(NEVER),
             "--quiet", "--out", str(out)]
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"] if procs > 1 else []
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, *launcher, *train], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    _, meta = load_checkpoint(RunDir(out).checkpoint())
    return meta["step"] * batch / meta["elapsed_s"]


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor()


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
                print(f"batch {batch}: {procs} proc x {threads} thread(s): {img_s:.0f} img/s", file=sys.stderr)

    print(f"| global batch | 1 proc x 1 thread | 1 proc x {cores} threads | 2 procs x 1 thread | 2 procs / 1x1 |")
    print("|---|---|---|---|---|")
    for batch in dict.fromkeys(r["batch"] for r in results):
        row = {(r["procs"], r["threads"]): r["img_per_s"] for r in results if r["batch"] == batch}
        base, two = row[(1, 1)], row[(2, 1)]
        print(f"| {batch} | {base:.0f} | {row[(1, cores)]:.0f} | {two:.0f} | {two / base:.2f}x |")
    if args.out:
        args.out.write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(),
            "processor": cpu_model(), "cores": cores, "load_avg_before": load_before,
            "command": " ".join([Path(sys.executable).name, *sys.argv]), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
