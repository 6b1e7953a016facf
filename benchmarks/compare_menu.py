"""The menu compared: each loss x conditioning choice trained on full MNIST for the same wall-clock
budget, then evaluated the same way. Writes the results table into docs/menu.md.

    python benchmarks/compare_menu.py --data /work/shared/data/mnist --minutes 2

Every row is the `default` preset with one loss and one conditioning swapped in; everything else
(net, width, batch, optimizer, cadence) stays the preset's, so a row differs from the default row
only by its two menu choices. The one exception is WGAN-GP, which is trained with the settings of
its paper (5 critic steps per G step, Adam lr 1e-4, betas (0, 0.9); Gulrajani et al. 2017,
Algorithm 1): with one critic step and momentum 0.5 it is not the published method.

Each trained generator (G_ema when the preset keeps one) is scored by
`ganforge.metrics.evaluate_generator` (FID, precision, recall, class accuracy against the MNIST
test set). images/s counts real images through D per second of training, as metrics.jsonl does.
Without `ganforge.metrics` (or with --no-eval) the runs are trained and timed but not scored,
which is only good for checking the plumbing.
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # find _common however we are loaded
import _common  # noqa: E402  (puts the repository root first on sys.path)
from _common import ROOT  # noqa: E402

import ganforge  # noqa: E402
from ganforge.rundir import RunDir  # noqa: E402
from ganforge.checkpoint import load_checkpoint  # noqa: E402
from ganforge.config import CONDITIONINGS, LOSSES, preset  # noqa: E402
from ganforge.training import train  # noqa: E402

# Per-loss settings that make a row the published method rather than a crippled one.
LOSS_SETTINGS: dict[str, dict] = {
    "wgan-gp": dict(n_dis=5, lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9)),
}
BEGIN, END = "<!-- compare_menu:begin -->", "<!-- compare_menu:end -->"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_data_arg(p)
    _common.add_threads_arg(p)
    p.add_argument("--minutes", type=float, default=2.0, help="training budget per row [default: 2]")
    p.add_argument("--losses", default=",".join(LOSSES), help="comma list [default: all]")
    p.add_argument("--conditionings", default=",".join(CONDITIONINGS), help="comma list [default: all]")
    p.add_argument("--n", type=int, default=10_000, help="images generated per evaluation [default: 10000]")
    p.add_argument("--reference", default="mnist-test", help="evaluation reference [default: mnist-test]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--runs", type=Path, default=ROOT / "benchmarks" / "runs" / "menu",
                   help="where the run directories go (replaced) [default: benchmarks/runs/menu]")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "menu.md",
                   help="markdown file whose results block is (re)written [default: docs/menu.md]")
    p.add_argument("--no-eval", action="store_true", help="train and time only (plumbing check)")
    args = p.parse_args(argv)
    for name, allowed in (("losses", LOSSES), ("conditionings", CONDITIONINGS)):
        chosen = [v for v in getattr(args, name).split(",") if v]
        bad = [v for v in chosen if v not in allowed]
        if bad or not chosen:
            p.error(f"--{name}: choose from {', '.join(allowed)} (got {getattr(args, name)!r})")
        setattr(args, name, chosen)
    return args


def evaluator(no_eval: bool):
    """`ganforge.metrics.evaluate_generator`, or None when evaluation is off or not installed."""
    if no_eval:
        return None
    try:
        from ganforge.metrics import evaluate_generator
    except ImportError:
        print("warning: ganforge.metrics is not available: training and timing only", file=sys.stderr)
        return None
    return evaluate_generator


def run_row(loss: str, conditioning: str, args, evaluate) -> dict:
    settings = LOSS_SETTINGS.get(loss, {})
    peak = _common.row_yardstick(args.threads)  # this row's machine: the yardstick just before training
    cfg = preset("default").replace(data=args.data, loss=loss, conditioning=conditioning, seed=args.seed,
                                    device=args.device, steps=None, epochs=None, minutes=args.minutes,
                                    **settings)
    run = args.runs / f"{loss}-{conditioning}"
    if run.exists():
        shutil.rmtree(run)
    train(cfg, run, progress=False)
    _, meta = load_checkpoint(RunDir(run).checkpoint())
    step, elapsed = int(meta["step"]), float(meta["elapsed_s"])
    row = {"loss": loss, "conditioning": conditioning, "settings": settings, "steps": step,
           "img_per_s": step * cfg.n_dis * cfg.batch_size / elapsed, "matmul_gflops": peak}
    if evaluate is not None:
        t = time.perf_counter()
        scores = evaluate(ganforge.load(run), n=args.n, seed=args.seed, reference=args.reference)
        row.update({k: scores.get(k) for k in ("fid", "precision", "recall", "class_accuracy")})
        row["eval_s"] = time.perf_counter() - t
    return row


def fmt(value, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report(rows: list[dict], args, command: str, scored: bool, header: dict | None = None) -> str:
    default = preset("default")
    is_default = lambda r: r["loss"] == default.loss and r["conditioning"] == default.model.conditioning  # noqa: E731
    ranked = sorted(rows, key=lambda r: (r.get("fid") is None, r.get("fid") or 0.0))
    lines = [
        BEGIN,
        f"Machine: {_common.header_line(header) if header else 'not recorded'}.",
        f"Each row trained for {args.minutes:g} min on `{args.data}`"
        + (f", then {args.n} images scored against `{args.reference}`." if scored else
           "; **not scored** (ganforge.metrics absent or --no-eval): a plumbing check, not a result."),
        "Regenerate with:",
        "",
        "```",
        command,
        "```",
        "",
        "| rank | loss | conditioning | G steps | images/s | FID[digits] ↓ | precision ↑ | recall ↑ | class accuracy ↑ "
        "| matmul GFLOP/s |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(ranked, 1):
        name = r["loss"] + (f" ({', '.join(f'{k} {v}' for k, v in r['settings'].items())})"
                            if r["settings"] else "")
        cells = [str(i) if scored else "-", name, r["conditioning"], str(r["steps"]), f"{r['img_per_s']:.0f}",
                 fmt(r.get("fid"), 2), fmt(r.get("precision"), 3), fmt(r.get("recall"), 3),
                 fmt(r.get("class_accuracy"), 3), fmt(r.get("matmul_gflops"), 0)]
        if is_default(r):
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Bold: the `default` preset ({default.loss} + {default.model.conditioning}). Ranked by FID. "
                 "matmul GFLOP/s: the machine's float32 matmul yardstick, measured just before each row trained.")
    if scored and ranked:
        best = ranked[0]
        if is_default(best):
            runner_up = ranked[1] if len(ranked) > 1 else None
            lines.append("The default preset is the best row in this measurement"
                         + (f" (FID {best['fid']:.2f} against {runner_up['fid']:.2f} for the runner-up, "
                            f"{runner_up['loss']} + {runner_up['conditioning']})." if runner_up else "."))
        else:
            lines.append(f"**In this measurement the best row is {best['loss']} + {best['conditioning']} "
                         f"(FID {best['fid']:.2f}), not the default preset**: the preset should be "
                         "revisited, or the budget is too short to separate the rows.")
    lines.append(END)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    _common.set_threads(args.threads)
    header = _common.machine_header(args.threads)
    command = "python " + " ".join(shlex.quote(a) for a in
                                   ["benchmarks/compare_menu.py", *(sys.argv[1:] if argv is None else argv)])
    evaluate = evaluator(args.no_eval)
    rows = []
    for loss, conditioning in itertools.product(args.losses, args.conditionings):
        print(f"{loss} + {conditioning}: training {args.minutes:g} min", file=sys.stderr, flush=True)
        rows.append(run_row(loss, conditioning, args, evaluate))
        r = rows[-1]
        print(f"  {r['steps']} steps, {r['img_per_s']:.0f} img/s, FID {fmt(r.get('fid'), 2)}, "
              f"recall {fmt(r.get('recall'), 3)}, class accuracy {fmt(r.get('class_accuracy'), 3)}",
              file=sys.stderr, flush=True)
    _common.write_block(args.out, report(rows, args, command, evaluate is not None, header), BEGIN, END)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
