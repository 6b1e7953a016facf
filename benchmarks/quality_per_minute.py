"""Quality per CPU-minute: train presets on full MNIST for a wall-clock budget and evaluate
10,000 conditional samples (1,000 per class) at 1, 2, 5 and 10 minutes of training.

    python benchmarks/quality_per_minute.py [--data mnist] [--presets tutorial,default]
                                            [--minutes 1,2,5,10] [--threads 2] [--seed N]

Each preset trains in one run directory; at each mark the run is stopped by its `--minutes`
budget, evaluated with ganforge's bundled digit evaluator, and resumed (data loading and the
evaluation do not count towards the budget: `elapsed_s` in the checkpoint is training-loop time,
sample grids and checkpoints included). Writes benchmarks/RESULTS.md (machine, date, torch
version, command, table) and benchmarks/quality_per_minute.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

sys.path.insert(0, str(Path(__file__).resolve().parent))  # find _common however we are loaded
import _common  # noqa: E402  (puts the repository root first on sys.path)
from _common import ROOT, write_block  # noqa: E402

import ganforge  # noqa: E402
from ganforge.config import preset  # noqa: E402
from ganforge.metrics import evaluate_generator  # noqa: E402
from ganforge.plots import STYLE, draw_curves, new_figure, save_png  # noqa: E402
from ganforge.training import train  # noqa: E402

COLUMNS = ("fid", "class_accuracy", "precision", "recall", "classes_covered")
BEGIN, END = "<!-- quality_per_minute:begin -->", "<!-- quality_per_minute:end -->"


def run_preset(name: str, data: str, marks: list[float], workdir: Path, threads: int,
               seed: int | None = None) -> list[dict]:
    run = workdir / name
    rows = []
    for i, minutes in enumerate(marks):
        peak = _common.row_yardstick(threads)  # the machine during this stretch of training
        cfg = preset(name).replace(data=data, minutes=minutes, steps=None, epochs=None, eval_every=0)
        cfg = cfg if seed is None else cfg.replace(seed=seed)
        train(cfg, run, resume=i > 0, progress=False)
        gan = ganforge.load(run)
        t = time.perf_counter()
        metrics = evaluate_generator(gan, n=10_000, seed=0)
        row = {"preset": name, "minutes": minutes, "step": gan.step,
               "images_seen": gan.step * cfg.batch_size * cfg.n_dis,  # real images through D
               "eval_s": round(time.perf_counter() - t, 1), "matmul_gflops": round(peak, 1),
               **{k: metrics.get(k) for k in COLUMNS}}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def table(rows: list[dict], header: dict, command: str) -> str:
    """The results block: machine, command, and a row per mark with the images seen and the
    machine's matmul yardstick, so that slower machines can be compared by images as well as minutes."""
    lines = [
        BEGIN,
        f"- Machine: {_common.header_line(header)}",
        f"- Command: `{command}`",
        "- Evaluation: 10,000 samples (1,000 per class for conditional models) against the MNIST test "
        "set, with ganforge's bundled digit classifier: FID (digit features), not comparable with "
        "Inception FIDs (see docs/metrics.md).",
        "- images seen: real images through D (steps x batch x D steps per G step); matmul GFLOP/s: the "
        "machine's float32 matmul yardstick, measured again before each stretch of training.",
        "",
        "| preset | minutes | steps | images seen | FID[digits] ↓ | class accuracy ↑ | precision ↑ | recall ↑ "
        "| classes covered | matmul GFLOP/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['preset']} | {r['minutes']:g} | {r['step']} | {r['images_seen']:,} | " +
                     " | ".join(fmt(r[k]) for k in COLUMNS) + f" | {r['matmul_gflops']:.0f} |")
    return "\n".join([*lines, END]) + "\n"


def plot_png(rows: list[dict], presets: list[str], path: Path) -> None:
    """FID and recall against training minutes and against images seen, side by side."""
    with matplotlib.rc_context(STYLE):
        fig = new_figure(11, 4.2)
        for ax, x, xlabel in zip(fig.subplots(1, 2), ("minutes", "images_seen"), ("training minutes", "real images seen")):
            series = {}
            for name in presets:
                mine = [r for r in rows if r["preset"] == name]
                series[f"{name} FID[digits]"] = ([r[x] for r in mine], [r["fid"] for r in mine])
                series[f"{name} recall x10"] = ([r[x] for r in mine], [10 * r["recall"] for r in mine])
            draw_curves(ax, series, f"against {xlabel}", xlabel, "FID[digits] (lower), recall x10 (higher)")
            ax.set_yscale("symlog", linthresh=1)
    save_png(fig, path)


def fmt(v) -> str:
    if v is None:
        return "—"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_data_arg(ap)
    ap.add_argument("--presets", default="tutorial,default")
    ap.add_argument("--minutes", default="1,2,5,10")
    _common.add_threads_arg(ap)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    ap.add_argument("--keep", type=Path, help="Keep the run directories here (default: a temporary one).")
    ap.add_argument("--seed", type=int, help="Seed of every run (default: the preset's): another draw of the same recipe.")
    args = ap.parse_args()
    threads = _common.set_threads(args.threads)
    header = _common.machine_header(threads)
    marks = [float(m) for m in args.minutes.split(",")]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        for name in args.presets.split(","):
            rows += run_preset(name, args.data, marks, workdir, threads, args.seed)

    command = " ".join(["python benchmarks/quality_per_minute.py", *sys.argv[1:]])
    write_block(args.out, table(rows, header, command), BEGIN, END)
    plot_png(rows, args.presets.split(","), args.out.parent / "quality_per_minute.png")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
