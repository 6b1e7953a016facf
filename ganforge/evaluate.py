"""`ganforge evaluate` and `ganforge report`: measure a run's samples, and draw its curves.
Kept outside `ganforge.metrics` so that `ganforge --help` does not import torch."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from ganforge.errors import GanforgeError

# name -> (what it measures, which way is better); the order of the table.
DESCRIPTIONS = {
    "fid": "Frechet distance of features to the reference (lower is better)",
    "kid": "kernel distance x 1000, unbiased (lower is better; ~0 = indistinguishable)",
    "precision": "share of samples that look like reference digits (fidelity, higher is better)",
    "recall": "share of the reference the samples reach (diversity, higher is better)",
    "density": "how tightly samples sit among reference digits (fidelity, ~1 for real data)",
    "coverage": "share of reference digits with a sample nearby (diversity, higher is better)",
    "digit_score": "Inception-Score formula on the digit classifier (higher is better, max 10)",
    "class_accuracy": "samples the classifier reads as their requested class (higher is better)",
    "classes_covered": "classes the classifier sees made at all (mode collapse if below 10)",
    "class_kl": "KL of the predicted class histogram to uniform (0 = balanced, 2.3 = one class)",
}
KID_SCALE = 1000  # KID values are tiny; the table shows them x 1000 (the JSON keeps raw values)


def _format_table(source: str, n: int, reference: str, result: dict, notes: list[str]) -> str:
    lines = [f"{source}: {n} samples against {reference}"]
    for key, what in DESCRIPTIONS.items():
        if key not in result:
            continue
        value = result[key]
        if key == "kid":
            shown = f"{value * KID_SCALE:.4g} ± {result['kid_std'] * KID_SCALE:.2g}"
        else:
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"  {key:<16}{shown:>18}   {what}")
    per_class = [(name, result[key]) for name, key in (("fid", "per_class_fid"),
                                                       ("accuracy", "per_class_accuracy")) if result.get(key)]
    if per_class:
        classes = sorted({c for _, d in per_class for c in d}, key=int)
        lines.append("  per class     " + "".join(f"{c:>7}" for c in classes))
        for name, d in per_class:
            lines.append(f"    {name:<12}" + "".join(f"{d[c]:>7.3g}" if c in d else f"{'-':>7}" for c in classes))
    lines += [f"note: {note}" for note in notes]
    return "\n".join(lines)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return None if isinstance(value, float) and not math.isfinite(value) else value


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--n", "n", type=int, default=10_000, show_default=True,
              help="Samples to generate from a run (files are evaluated whole).")
@click.option("--reference", default="mnist-test", show_default=True,
              help="'mnist-test' (bundled features) or a directory of IDX files or images, or an .npz.")
@click.option("--checkpoint", type=click.Choice(["last", "best"]), default="last", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Noise seed for a run's samples.")
@click.option("--json", "as_json", is_flag=True, help="Also print one JSON object as the last line.")
def evaluate(source, n, reference, checkpoint, seed, as_json):
    """Measure generated digits: FID, KID, precision/recall, density/coverage, class accuracy.

    SOURCE is a run directory (or checkpoint), an .npz with 'images' (and 'labels') as written by
    'ganforge generate --out X.npz', or a directory of images named <label>_<index>.png.
    Example: ganforge evaluate runs/digits --json
    """
    from ganforge.metrics import caveats, evaluate_generator, evaluate_samples, load_images
    from ganforge.rundir import holds_run
    from ganforge.sample import load

    if n <= 0:
        raise GanforgeError(f"--n must be a positive integer (got {n})")
    if not source.exists():
        raise GanforgeError(f"{source} does not exist; give a run directory, an .npz file or a "
                            "directory of images")
    if holds_run(source) or source.suffix == ".safetensors":
        gan = load(source, checkpoint)
        result = evaluate_generator(gan, n, seed, reference)
        shape = (gan.model.img_channels, gan.model.img_resolution, gan.model.img_resolution)
    else:
        images, labels = load_images(source)
        n, shape = len(images), tuple(images.shape[1:])
        result = evaluate_samples(images, labels, reference)
    notes = caveats(shape, reference)
    click.echo(_format_table(str(source), n, reference, result, notes))
    if as_json:
        click.echo(json.dumps(_jsonable({"source": str(source), "n": n, "reference": reference,
                                         **result, "notes": notes})))


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="PNG to write [default: RUN/report.png].")
@click.option("--checkpoint", type=click.Choice(["last", "best"]), default="last", show_default=True)
def report(run, out, checkpoint):
    """Draw a run's loss and metric curves and a per-class sample sheet into one PNG.
    Example: ganforge report runs/digits"""
    from ganforge.checkpoint import atomic_write
    from ganforge.images import png_bytes
    from ganforge.sample import load

    out = out or Path(run) / "report.png"
    atomic_write(out, png_bytes(draw_report(load(run, checkpoint), run)))
    click.echo(f"wrote {out}")


def draw_report(gan, run: Path):
    """Loss curves, FID curve, fidelity/diversity curves and a per-class sheet, stacked."""
    from PIL import Image

    from ganforge.images import grid, line_plot, to_pil
    from ganforge.sample import spread
    from ganforge.train import loss_plot, read_metrics

    records = read_metrics(run)
    evals = [(r["step"], r["eval"]) for r in records if "eval" in r]
    eval_curve = lambda key: ([s for s, e in evals if key in e], [e[key] for s, e in evals if key in e])  # noqa: E731
    panels = [loss_plot(records),
              line_plot({"fid": eval_curve("fid")}, "FID by step (lower is better)"),
              line_plot({k: eval_curve(k) for k in ("precision", "recall", "coverage", "class_accuracy")},
                        "fidelity and diversity by step")]
    rows = gan.model.num_classes if gan.conditional else 8
    columns = 10
    labels = spread(rows * columns, list(range(rows))) if gan.conditional else None
    sheet = to_pil(grid(gan.sample(rows * columns, labels, seed=0), columns), scale=2).convert("RGB")
    width = max(p.width for p in panels + [sheet])
    canvas = Image.new("RGB", (width, sum(p.height for p in panels) + sheet.height), "white")
    y = 0
    for p in panels + [sheet]:
        canvas.paste(p, ((width - p.width) // 2, y))
        y += p.height
    return canvas
