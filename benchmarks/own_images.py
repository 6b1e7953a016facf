"""Your own pictures (issue 15): image folders made from MNIST, trained with `ganforge train`,
scored with the bundled digit evaluator. Each part is recorded in its own block (between
`<!-- own_images:PART:begin/end -->`) of benchmarks/RESULTS.md, or of docs/tuning.md for the
tuning parts, so one can be rerun alone:

    python benchmarks/own_images.py --parts finetune,smalldata,colour,res64tune,res64,res128tune,res128
                                    [--data MNIST_DIR] [--threads 1] [--keep DIR]

- finetune: a model of digits 0-4 (all of MNIST's) fine-tuned with --init-from on 5-9 (100 per
  class) against training from scratch on the same 500 images; class accuracy against seconds.
- smalldata: 50 digits per class, without and with --augment ada, equal minutes; FID, recall and
  ADA's p over time (own_images_ada.png).
- colour: coloured 32x32 digits (benchmarks/_own_data.py says how they are made and read);
  digit accuracy of the generated images' luminance and the colour distance to the data's.
- res64tune, res128tune: short runs (--res-short minutes) of --res-variants at 64 or 128 px,
  recorded in docs/tuning.md.
- res64, res128: digits upsampled to 64x64 or 128x128, 2000 per class, --res-minutes; generated
  digits scored at 28x28. --res-args gives the run's settings beyond the folder defaults.

Training runs in child processes (`python -m ganforge train`, OMP_NUM_THREADS=--threads), one at
a time; seconds are the training loop's own (`elapsed_s` of the checkpoints: no start-up, no data
loading). Accuracy against time comes from copies of last.safetensors taken as the run writes it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # find _common however we are loaded
import _common  # noqa: E402  (puts the repository root first on sys.path)
import _own_data as od  # noqa: E402
import torch  # noqa: E402
from _common import ROOT  # noqa: E402

from ganforge.checkpoint import load_checkpoint  # noqa: E402
from ganforge.generator import GAN  # noqa: E402
from ganforge.metrics.features import embed  # noqa: E402
from ganforge.metrics.registry import evaluate_samples  # noqa: E402
from ganforge.outputs import save_grid  # noqa: E402
from ganforge.plots import new_figure, save_png  # noqa: E402
from ganforge.rundir import RunDir  # noqa: E402

POLL_S = 0.5
SCORED = ("fid", "class_accuracy", "precision", "recall")


def train(argv: list[str], out: Path, threads: int, cache: Path, watch: bool = False) -> list[Path]:
    """`python -m ganforge train ARGV --out OUT` in a child process; with `watch`, every version of
    its last checkpoint is copied to OUT/../OUT.name-snapshots as it appears. Returns the copies."""
    env = {**_common.subprocess_env(threads), "GANFORGE_DATA": str(cache)}
    cmd = [sys.executable, "-m", "ganforge", "train", *argv, "--out", str(out), "--quiet"]
    print("$", shlex.join(cmd[1:]), file=sys.stderr, flush=True)
    snapshots, seen = [], None
    keep = out.parent / f"{out.name}-snapshots"
    keep.mkdir(parents=True, exist_ok=True)
    last = out / "checkpoints" / "last.safetensors"
    with subprocess.Popen(cmd, env=env, cwd=ROOT) as proc:
        while proc.poll() is None or watch:
            if watch and last.exists():
                stamp = last.stat().st_mtime_ns, last.stat().st_ino
                if stamp != seen:  # the run renames a complete file into place: copy that one
                    seen = stamp
                    snapshots.append(Path(shutil.copyfile(last, keep / f"{len(snapshots):04d}.safetensors")))
            if proc.poll() is not None:
                break
            time.sleep(POLL_S)
    if proc.returncode != 0:
        raise SystemExit(f"training failed ({proc.returncode}): {shlex.join(cmd)}")
    return snapshots


def seconds(checkpoint: Path) -> tuple[int, float]:
    meta = load_checkpoint(checkpoint)[1]
    return meta["step"], meta["elapsed_s"]


def score(gan: GAN, n: int, seed: int = 0, view=None, metrics=None) -> dict:
    """The digit evaluator's figures for n samples spread over the classes; the samples are
    turned into digits by `view` first (colour) and their labels into the digits the class
    folders are named for."""
    labels = gan.labels_for(n, None)
    images = gan.sample(n, labels, seed)
    if view is not None:
        images = view(images)
    result = evaluate_samples(images, od.digit_labels(gan.class_names, labels), metrics=metrics)
    return {k: result[k] for k in SCORED if k in result}


def trajectory(snapshots: list[Path], n: int, metrics=("class_accuracy",)) -> list[dict]:
    rows = []
    for path in snapshots:
        step, secs = seconds(path)
        rows.append({"step": step, "seconds": round(secs, 1),
                     **score(GAN.from_checkpoint(path), n, metrics=metrics)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def first_at(rows: list[dict], key: str, level: float) -> dict | None:
    return next((r for r in rows if r.get(key, -1) >= level), None)


def fmt(v, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


# ---------------------------------------------------------------------------------------------
# The parts. Each returns the lines of its block.

def part_finetune(a, work: Path, images, labels) -> list[str]:
    base_idx = od.pick(labels, range(5), None)
    base = od.write_folder(work / "digits0-4", images[base_idx], labels[base_idx])
    small_idx = od.pick(labels, range(5, 10), 100)
    small = od.write_folder(work / "digits5-9x100", images[small_idx], labels[small_idx])
    common = ["--minutes", str(a.ft_minutes), "--eval-every", "0", "--sample-every", "100000",
              "--checkpoint-every", str(a.ft_every)]
    train(["--data", str(base), "--minutes", str(a.pre_minutes), "--eval-every", "0"], work / "pre",
          a.threads, work / "cache")
    pre_steps, pre_s = seconds(work / "pre" / "checkpoints" / "last.safetensors")
    arms = {}
    for name, extra in (("fine-tuned", ["--init-from", str(work / "pre")]), ("from scratch", [])):
        snaps = train(["--data", str(small), *common, *extra], work / name.replace(" ", "-"), a.threads,
                      work / "cache", watch=True)
        arms[name] = trajectory(snaps, a.ft_samples)
    plot_curves({n: ([r["seconds"] for r in rows], [r["class_accuracy"] for r in rows]) for n, rows in arms.items()},
                "class accuracy on 5-9 (500 training images)", "training seconds", "class accuracy",
                a.out.parent / "own_images_finetune.png", level=a.ft_level)
    hit = {n: first_at(rows, "class_accuracy", a.ft_level) for n, rows in arms.items()}
    lines = [(f"Pre-training on digits 0-4 (all {int((labels < 5).sum()):,} MNIST training images): "
             f"{pre_steps} steps in {pre_s:.0f} s. Then {a.ft_minutes:g} minutes on 100 images of each of 5-9, "
             f"checkpoint every {a.ft_every} steps, each scored with {a.ft_samples} samples."), "",
             f"| start | time to accuracy {a.ft_level} (s) | steps then | accuracy at the end | steps at the end |",
             "|---|---|---|---|---|"]
    for n, rows in arms.items():
        h = hit[n]
        lines.append(f"| {n} | {fmt(h and h['seconds'], 1)} | {fmt(h and h['step'])} | "
                     f"{fmt(rows[-1]['class_accuracy'])} | {rows[-1]['step']} |")
    lines += ["", "Accuracy at the checkpoints (every other one past the first ten):", ""]
    for n, rows in arms.items():
        shown = rows[:10] + rows[10::2]
        lines.append(f"- {n}: " + ", ".join(f"{r['class_accuracy']:.2f} at {r['seconds']:.0f} s" for r in shown))
    ft, sc = hit["fine-tuned"], hit["from scratch"]
    if ft and sc:
        verdict = "met" if ft["seconds"] < sc["seconds"] / 2 else "missed"
        lines += ["", (f"**Target {verdict}**: fine-tuning reached {a.ft_level} in {ft['seconds']:.0f} s, "
                      f"training from scratch in {sc['seconds']:.0f} s (ratio {ft['seconds'] / sc['seconds']:.2f}; "
                      "the target is under 0.5).")]
    else:
        lines += ["", (f"**Target not shown**: {'fine-tuning' if not ft else 'training from scratch'} never reached "
                      f"{a.ft_level} within {a.ft_minutes:g} minutes.")]
    lines += ["", "![accuracy against seconds](own_images_finetune.png)"]
    return lines


def plot_curves(series: dict, title: str, xlabel: str, ylabel: str, path: Path, level: float | None = None,
                extra: dict | None = None, extra_label: str = "", log_y: bool = False) -> None:
    """Named (x, y) curves on one axis (log-scaled with `log_y`), and `extra` curves on a second
    panel beside it."""
    fig = new_figure(11 if extra else 7, 4)
    axes = fig.subplots(1, 2 if extra else 1)
    axes = list(axes) if extra else [axes]
    for ax, curves, label in ((axes[0], series, ylabel), *(((axes[1], extra, extra_label),) if extra else ())):
        for name, (xs, ys) in curves.items():
            ax.plot(xs, ys, marker="o", markersize=3, linewidth=2, label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    if log_y:
        axes[0].set_yscale("log")
    if level is not None:
        axes[0].axhline(level, color="grey", linestyle="--", linewidth=1)
    axes[0].set_title(title)
    save_png(fig, path)


def ada_p(run: Path) -> tuple[list[float], list[float]]:
    """ADA's p against training seconds, from the run's metrics.jsonl."""
    rows = [r for r in RunDir(run).read_metrics() if "ada_p" in r and "time_s" in r]
    return [r["time_s"] for r in rows], [r["ada_p"] for r in rows]


def part_smalldata(a, work: Path, images, labels) -> list[str]:
    idx = od.pick(labels, range(10), 50, seed=1)
    folder = od.write_folder(work / "digits-x50", images[idx], labels[idx])
    arms, curves = {}, {}
    common = ["--data", str(folder), "--minutes", str(a.small_minutes), "--eval-every", "0",
              "--sample-every", "100000", "--checkpoint-every", str(a.small_every)]
    for name, extra in (("no augmentation", []), ("--augment ada", ["--augment", "ada"])):
        run = work / ("ada" if extra else "plain")
        snaps = train([*common, *extra], run, a.threads, work / "cache", watch=True)
        curve = trajectory(snaps, a.small_curve_samples, metrics=("fid",))
        curves[name] = ([r["seconds"] for r in curve], [r["fid"] for r in curve])
        gan = GAN.from_checkpoint(run)
        arms[name] = {"step": gan.step, "seconds": seconds(snaps[-1])[1], **score(gan, a.samples)}
        if extra:
            arms[name]["p"] = ada_p(run)
    times, ps = arms["--augment ada"]["p"]
    plot_curves(curves, "FID (digit features), 2,000 samples per checkpoint", "training seconds", "FID",
                a.out.parent / "own_images_ada.png", extra={"ADA p": (times, ps)}, extra_label="p", log_y=True)
    lines = [f"500 images (50 per class), {a.small_minutes:g} minutes each; {a.samples:,} samples at the end.", "",
             "| run | steps | FID[digits] ↓ | recall ↑ | precision ↑ | class accuracy ↑ |", "|---|---|---|---|---|---|"]
    for n, r in arms.items():
        lines.append(f"| {n} | {r['step']} | {fmt(r['fid'], 2)} | {fmt(r['recall'])} | {fmt(r['precision'])} | "
                     f"{fmt(r['class_accuracy'])} |")
    marks = [i for i in range(len(times)) if i % max(1, len(times) // 10) == 0] + [len(times) - 1]
    lines += ["", "ADA's p (from metrics.jsonl `ada_p`): " +
              ", ".join(f"{ps[i]:.3f} at {times[i]:.0f} s" for i in sorted(set(marks))) + ".", "",
              "![FID and p against seconds](own_images_ada.png)"]
    return lines


def part_colour(a, work: Path, images, labels) -> list[str]:
    idx = od.pick(labels, range(10), a.colour_per_class + a.colour_real // 10, seed=2)
    rgb, _, _ = od.colour_digits(images[idx], seed=3)
    lab = labels[idx]
    held = torch.zeros(len(idx), dtype=torch.bool)
    for c in range(10):  # the last colour_real/10 of each class are held out: the floor's second sample
        held[torch.nonzero(lab == c).flatten()[a.colour_per_class:]] = True
    folder = od.write_folder(work / "colour-digits", rgb[~held], lab[~held])
    gen = torch.Generator().manual_seed(4)
    train_part = rgb[~held][torch.randperm(int((~held).sum()), generator=gen)[:a.colour_real]]
    real = evaluate_samples(od.digit_view(rgb[held]), lab[held], metrics=["class_accuracy", "fid"])
    train(["--data", str(folder), "--resolution", "32", "--minutes", str(a.colour_minutes), "--eval-every", "0",
           *shlex.split(a.colour_args)], work / "colour", a.threads, work / "cache")
    gan = GAN.from_checkpoint(work / "colour")
    glabels = gan.labels_for(a.colour_real, None)
    z = gan.noise(a.colour_real, 0)
    fake = gan.images(z, glabels)
    view, digits = od.digit_view(fake), od.digit_labels(gan.class_names, glabels)
    result = evaluate_samples(view, digits, metrics=["class_accuracy", "fid"])
    fg_f, bg_f = od.fg_bg_colours(fake)
    fg_a, bg_a = od.fg_bg_colours(train_part)
    fg_b, bg_b = od.fg_bg_colours(rgb[held])
    # Where the luminance view fails: G's colour pairs that come closer in luma than the data's
    low = float(od.luma_difference(fg_b, bg_b).abs().quantile(0.01))
    luma = od.luma_difference(fg_f, bg_f)
    under = luma.abs() < low
    right = embed(view)[1].argmax(1) == digits

    def read_right(images: torch.Tensor) -> str:  # share of the masked images read right
        return fmt(float(right[images].float().mean())) if images.any() else "—"

    def light_share(images: torch.Tensor) -> str:  # share of lighter digits on a darker ground
        return f"{(luma[images] > 0).float().mean():.1%}"
    above = z[:, 0] > 0  # what G made of its first latent bit, if it has one
    bit = [(f"The first latent bit: {light_share(above)} of the images with z_1 > 0 are lighter digits on a "
            f"darker ground, {light_share(~above)} of those with z_1 < 0."), ""] if gan.model.latent_bits else []
    d = {"fake": (od.colour_distance(fg_f, fg_a), od.colour_distance(bg_f, bg_a)),
         "floor": (od.colour_distance(fg_b, fg_a), od.colour_distance(bg_b, bg_a))}
    save_grid(a.out.parent / "own_images_colour.png", gan.class_sheet(10, seed=0), ncol=10, scale=2)
    lines = [(f"{int((~held).sum()):,} coloured digits (32x32 RGB, {a.colour_per_class} per class), "
             f"{a.colour_minutes:g} minutes, `--resolution 32`, "
             f"{'`' + a.colour_args + '` and ' if a.colour_args else ''}folder defaults otherwise: {gan.step} steps. "
             f"{a.colour_real:,} generated images (spread over the classes) against {a.colour_real:,} training images; "
             f"the floor compares those with {int(held.sum()):,} held-out images coloured the same way."), "",
             ("| | digit accuracy of the luminance view ↑ | FID of the view (digit features) | "
             "colour distance, foreground ↓ | colour distance, background ↓ |"), "|---|---|---|---|---|",
             (f"| generated | {fmt(result['class_accuracy'])} | {fmt(result['fid'], 2)} | "
             f"{d['fake'][0]:.3f} | {d['fake'][1]:.3f} |"),
             (f"| real (held out) | {fmt(real['class_accuracy'])} | {fmt(real['fid'], 2)} | "
              f"{d['floor'][0]:.3f} | {d['floor'][1]:.3f} |"), "",
             (f"Luma contrast (`luma_difference`, absolute: the two mean colours' luma apart): {under.float().mean():.1%} of the "
              f"generated images read under {low:.2f}, the held-out real images' 1st percentile; the luminance view "
              f"of those is read right {read_right(under)} of the time, of the others {read_right(~under)}."), "",
             *bit, "![one row per class](own_images_colour.png)"]
    return lines


def res_folder(work: Path, images, labels, side: int) -> Path:
    folder = work.parent / f"digits{side}"  # shared by resN and resNtune
    if not folder.exists():
        idx = od.pick(labels, range(10), 2000, seed=5)
        od.write_folder(folder, od.upsample(images[idx], side), labels[idx])
    return folder


def res_runs(a, work: Path, folder: Path, side: int, variants: list[tuple[str, str, float]]) -> list[dict]:
    """Train each (name, flags, minutes) at `side` px and score it at 28 px."""
    rows = []
    for i, (name, flags, minutes) in enumerate(variants):
        run = work / f"run{i}-{minutes:g}"
        train(["--data", str(folder), "--resolution", str(side), "--minutes", str(minutes), "--eval-every", "0",
               *shlex.split(flags)], run, a.threads, work.parent / "cache")
        gan = GAN.from_checkpoint(run)
        rows.append({"name": name, "flags": flags, "minutes": minutes, "step": gan.step,
                     "seconds": round(seconds(run / "checkpoints" / "last.safetensors")[1]),
                     **score(gan, a.samples, view=od.lanczos_28)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def res_ceiling(images, labels, n: int, side: int) -> dict:
    """The real digits of the folder through the same scoring: what a perfect model gets."""
    idx = od.pick(labels, range(10), n // 10, seed=6)
    result = evaluate_samples(od.lanczos_28(od.upsample(images[idx], side)), labels[idx])
    return {k: result[k] for k in SCORED}


def res_table(rows: list[dict], side: int) -> list[str]:
    lines = [(f"| settings (beyond `--resolution {side}`) | minutes | steps | training s | class accuracy ↑ | "
             "recall ↑ | precision ↑ | FID[digits] ↓ |"), "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        flags = f" (`{r['flags']}`)" if r["flags"] else ""
        lines.append(f"| {r['name']}{flags} | {r['minutes']:g} | {r['step']} | {r['seconds']} | "
                     f"{fmt(r['class_accuracy'])} | {fmt(r['recall'])} | {fmt(r['precision'])} | {fmt(r['fid'], 2)} |")
    return lines


def res_tune(a, work: Path, images, labels, side: int) -> list[str]:
    variants = [(*v.partition("=")[::2], a.res_short) for v in a.res_variants.split(";")]
    rows = res_runs(a, work, res_folder(work, images, labels, side), side, variants)
    return [(f"Digits upsampled to {side}x{side} (2,000 per class), {a.res_short:g} minutes each, one run at a "
             f"time; {a.samples:,} generated digits each, downsampled to 28x28 for the digit evaluator."), "",
            *res_table(rows, side)]


def res_final(a, work: Path, images, labels, side: int) -> list[str]:
    variants = [("folder defaults" if not a.res_args else "chosen", a.res_args, m) for m in a.res_minutes]
    rows = res_runs(a, work, res_folder(work, images, labels, side), side, variants)
    best = rows[-1]
    real = res_ceiling(images, labels, a.samples, side)
    save_grid(a.out.parent / f"own_images_{side}px.png",
              GAN.from_checkpoint(work / f"run{len(rows) - 1}-{best['minutes']:g}").class_sheet(10, seed=0), ncol=10)

    def verdict(key: str, target: float) -> str:
        return (f"{key.replace('_', ' ')} {best[key]:.3f} (issue 15's 64 px target {target}: "
                f"{'met' if best[key] >= target else 'missed'})")
    return [(f"20,000 digits upsampled to {side}x{side} (2,000 per class); {a.samples:,} generated digits "
             "downsampled to 28x28 (Lanczos) for the digit evaluator."), "", *res_table(rows, side), "",
            (f"Real digits of the folder scored the same way (the ceiling): class accuracy "
             f"{real['class_accuracy']:.3f}, recall {real['recall']:.3f}, precision {real['precision']:.3f}, "
             f"FID {real['fid']:.2f}."), "",
            f"**At {best['minutes']:g} minutes: {verdict('class_accuracy', 0.95)}; {verdict('recall', 0.40)}.**", "",
            f"![one row per class, {side}x{side}](own_images_{side}px.png)"]


# Each part: (a, work directory, MNIST images, labels) -> the lines of its block.
RUNNERS: dict[str, Callable[..., list[str]]] = {
    "finetune": part_finetune, "smalldata": part_smalldata, "colour": part_colour,
    "res64tune": partial(res_tune, side=64), "res64": partial(res_final, side=64),
    "res128tune": partial(res_tune, side=128), "res128": partial(res_final, side=128),
}
PARTS = tuple(RUNNERS)
TUNING_PARTS = ("res64tune", "res128tune")  # recorded in docs/tuning.md; the others in RESULTS.md


# ---------------------------------------------------------------------------------------------

def write_block(path: Path, part: str, lines: list[str]) -> None:
    begin, end = f"<!-- own_images:{part}:begin -->", f"<!-- own_images:{part}:end -->"
    _common.write_block(path, "\n".join([begin, *lines, end]) + "\n", begin, end)


def destination(a: argparse.Namespace, part: str) -> Path:
    return a.tuning_out if part in TUNING_PARTS else a.out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_data_arg(ap)
    _common.add_threads_arg(ap, default=1)
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--keep", type=Path, help="Build folders and runs here (default: a temporary directory).")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    ap.add_argument("--samples", type=int, default=10_000, help="Samples for a final score.")
    ap.add_argument("--pre-minutes", type=float, default=3.0)
    ap.add_argument("--ft-minutes", type=float, default=4.0)
    ap.add_argument("--ft-every", type=int, default=50, help="Checkpoint (and score) every N steps.")
    ap.add_argument("--ft-samples", type=int, default=1000)
    ap.add_argument("--ft-level", type=float, default=0.90)
    ap.add_argument("--small-minutes", type=float, default=5.0)
    ap.add_argument("--small-every", type=int, default=500)
    ap.add_argument("--small-curve-samples", type=int, default=2000)
    ap.add_argument("--colour-minutes", type=float, default=10.0)
    ap.add_argument("--colour-per-class", type=int, default=2000)
    ap.add_argument("--colour-real", type=int, default=2000, help="Images per colour sample (real and generated).")
    ap.add_argument("--colour-args", default="", help="Flags beyond the folder defaults for the colour run.")
    # One set of flags for both sides (the parts name the side); the res64- spellings are the
    # recorded commands' and still work.
    ap.add_argument("--res-minutes", "--res64-minutes", type=lambda s: [float(m) for m in s.split(",")],
                    default=[10.0], help="Minutes of the res64/res128 run (a comma list: one run each).")
    ap.add_argument("--res-args", "--res64-args", default="",
                    help="Flags beyond the folder defaults for the res64/res128 run.")
    ap.add_argument("--res-short", "--res64-short", type=float, default=2.5,
                    help="Minutes of each res64tune/res128tune run.")
    ap.add_argument("--res-variants", "--res64-variants", default="folder defaults",
                    help="resNtune's runs: 'NAME=FLAGS;NAME=FLAGS' (FLAGS beyond --resolution N).")
    ap.add_argument("--tuning-out", type=Path, default=ROOT / "docs" / "tuning.md",
                    help="Where res64tune and res128tune record their tables.")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    parts = a.parts.split(",")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}")
    _common.set_threads(a.threads)
    images, labels = od.mnist(a.data)
    command = "python " + shlex.join(["benchmarks/own_images.py", *(sys.argv[1:] if argv is None else argv)])
    with tempfile.TemporaryDirectory() as tmp:
        root = a.keep or Path(tmp)
        for part in parts:
            header = _common.header_line(_common.machine_header(a.threads))
            started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
            lines = RUNNERS[part](a, root / part, images, labels)
            out = destination(a, part)
            write_block(out, part,
                        [f"- Command: `{command}` (part {part}, {started} UTC)",
                         f"- Machine at the start: {header}", "", *lines])
            print(f"wrote part {part} to {out}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
