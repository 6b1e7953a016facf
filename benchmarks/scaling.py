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
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # find _common however we are loaded
import _common  # noqa: E402  (puts the repository root first on sys.path)
from _common import ROOT  # noqa: E402

from ganforge.checkpoint import load_checkpoint  # noqa: E402
from ganforge.rundir import RunDir  # noqa: E402

NEVER = 10**9  # no logs, sample grids or checkpoints inside the measured time


def run(procs: int, threads: int, batch: int, minutes: float, workdir: Path) -> float:
    out = workdir / f"p{procs}-t{threads}-b{batch}"
    train = ["-m", "ganforge", "train", "--device", "cpu", "--batch-size", str(batch), "--minutes", str(minutes),
             "--log-every", str(NEVER), "--sample-every", str(NEVER), "--checkpoint-every", str(NEVER),
             "--quiet", "--out", str(out)]
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"] if procs > 1 else []
    subprocess.run([sys.executable, *launcher, *train], env=_common.subprocess_env(threads), cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    _, meta = load_checkpoint(RunDir(out).checkpoint())
    return meta["step"] * batch / meta["elapsed_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=0.5, help="budget of each training run")
    parser.add_argument("--batch-sizes", default="64,256")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    ways = [(1, 1), (1, cores), (2, 1)]
    header = _common.machine_header(1)  # each worker of the baseline has one thread
    print(_common.header_line(header))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            for procs, threads in ways:
                peak = _common.row_yardstick(threads)  # one worker's yardstick, just before the run
                img_s = run(procs, threads, batch, args.minutes, Path(tmp))
                results.append({"batch": batch, "procs": procs, "threads": threads, "img_per_s": img_s,
                                "matmul_gflops": round(peak, 1)})
                print(f"batch {batch}: {procs} proc x {threads} thread(s): {img_s:.0f} img/s "
                      f"(matmul yardstick {peak:.0f} GFLOP/s on {threads} thread(s))", file=sys.stderr)

    print(f"| global batch | 1 proc x 1 thread | 1 proc x {cores} threads | 2 procs x 1 thread | 2 procs / 1x1 "
          f"| matmul GFLOP/s, 1 / {cores} threads |")
    print("|---|---|---|---|---|---|")
    for batch in dict.fromkeys(r["batch"] for r in results):
        row = {(r["procs"], r["threads"]): r for r in results if r["batch"] == batch}
        base, two = row[(1, 1)]["img_per_s"], row[(2, 1)]["img_per_s"]
        print(f"| {batch} | {base:.0f} | {row[(1, cores)]['img_per_s']:.0f} | {two:.0f} | {two / base:.2f}x "
              f"| {row[(1, 1)]['matmul_gflops']:.0f} / {row[(1, cores)]['matmul_gflops']:.0f} |")
    if args.out:
        args.out.write_text(json.dumps({
            "machine": header, "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
