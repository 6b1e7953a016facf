"""The ablations behind the default preset: each variant changes one thing from a base, trains for
the same wall-clock budget on full MNIST and is scored by `ganforge evaluate` (10,000 samples).

    python benchmarks/tune_default.py [--data mnist] [--minutes 3] [--parallel 2] [--only 1,3] [--out FILE]

Runs go `--parallel` at a time, each on one thread (OMP_NUM_THREADS=1): on a 2-core machine two
one-thread runs side by side make the most of both cores, and every variant sees the same share.
Prints (and with --out writes) a markdown table with machine, date and command; docs/tuning.md
holds the recorded one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # find _common however we are loaded
import _common  # noqa: E402  (puts the repository root first on sys.path)

# Round one's base, with the settings that became defaults later pinned to what it ran with.
BASE = ["--net", "dcgan", "--width", "32", "--ema", "0.995", "--loss", "hinge", "--lr-g", "2e-4",
        "--lr-d", "2e-4", "--batch-size", "64", "--conditioning", "projection", "--eval-every", "0",
        "--amp", "off", "--ema-rampup", "0", "--d-depth", "0", "--g-depth", "0", "--diversity", "0"]
VARIANTS = {
    "base: dcgan w32, hinge, projection, lr 2e-4, b64, EMA 0.995": [],
    "loss bce": ["--loss", "bce"],
    "loss bce, conditioning input": ["--loss", "bce", "--conditioning", "input"],
    "loss bce, batch 128": ["--loss", "bce", "--batch-size", "128"],
    "spectral norm": ["--spectral-norm"],
    "betas 0,0.9": ["--betas", "0,0.9"],
    "lr_d 4e-4 (TTUR)": ["--lr-d", "4e-4"],
    "width 48": ["--width", "48"],
    "lr 4e-4 (G and D)": ["--lr-g", "4e-4", "--lr-d", "4e-4"],
    "conditioning acgan": ["--conditioning", "acgan"],
    "batch 32": ["--batch-size", "32"],
    "EMA 0.999": ["--ema", "0.999"],
    "lr 4e-4, batch 32": ["--lr-g", "4e-4", "--lr-d", "4e-4", "--batch-size", "32"],
    "lr 8e-4 (G and D)": ["--lr-g", "8e-4", "--lr-d", "8e-4"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_data_arg(ap)
    ap.add_argument("--minutes", type=float, default=3.0)
    _common.add_variant_args(ap)
    ap.add_argument("--out", type=Path, help="Also write the table to this markdown file.")
    args = ap.parse_args()

    header = _common.machine_header(1)  # each run has one thread
    print(_common.header_line(header), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, run, peak in _common.train_variants(
                _common.chosen_variants(VARIANTS, args.only), args.parallel,
                lambda run, extra: ["--data", args.data, "--minutes", str(args.minutes), "--quiet", "--out", run,
                                    *BASE, *extra], Path(tmp)):
            out = _common.finish(_common.python_child("-m", "ganforge", "evaluate", run, "--json", threads=2),
                                 "evaluation")
            m = json.loads(out.strip().splitlines()[-1])
            rows.append((name, m, peak))
            print(name, {k: round(m[k], 3) for k in ("fid", "class_accuracy", "precision", "recall")},
                  f"matmul yardstick {peak:.0f} GFLOP/s", flush=True)

    command = " ".join(["python benchmarks/tune_default.py", *sys.argv[1:]])
    lines = ["| variant | FID[digits] ↓ | class accuracy ↑ | precision ↑ | recall ↑ | matmul GFLOP/s (1 thread) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {m['fid']:.2f} | {m['class_accuracy']:.3f} | {m['precision']:.3f} | {m['recall']:.3f} "
              f"| {peak:.0f} |" for name, m, peak in rows]
    intro = (f"Machine: {_common.header_line(header)}. {args.parallel} runs at a time on 1 thread each; "
             f"{args.minutes:g} minutes of training per variant on `--data {args.data}`; matmul GFLOP/s: "
             f"the yardstick measured again just before each pair of runs. Command: `{command}`.")
    print(intro)
    print("\n".join(lines))
    if args.out:
        args.out.write_text("# Tuning the default preset\n\n" + intro + "\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
