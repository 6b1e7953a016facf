"""`ganforge evaluate`: measure a run's samples (or sample files) against a reference: a table,
and with --json one JSON object."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from ganforge.cli.common import checkpoint_option, positive
from ganforge.errors import GanforgeError

# name -> (what it measures, which way is better); the order of the table.
DESCRIPTIONS = {
    "fid": "Frechet distance of features to the reference (lower is better)",
    "kid": "kernel distance x 1000, unbiased (lower is better; ~0 = indistinguishable)",
    "precision": "share of samples that look like the reference (fidelity, higher is better)",
    "recall": "share of the reference the samples reach (diversity, higher is better)",
    "density": "how tightly samples sit among the reference (fidelity, ~1 for real data)",
    "coverage": "share of the reference with a sample nearby (diversity, higher is better)",
    "digit_score": "Inception-Score formula on the digit classifier (higher is better, max 10)",
    "class_accuracy": "samples the classifier reads as their requested class (higher is better)",
    "classes_covered": "classes the classifier sees made at all (mode collapse if below 10)",
    "class_kl": "KL of the predicted class histogram to uniform (0 = balanced, 2.3 = one class)",
}
# The measures of a model of 2-D points (ganforge.metrics.toy), in the same table layout.
TOY_DESCRIPTIONS = {
    "modes_covered": "mixture modes with a high-quality sample (of num_modes; higher is better)",
    "num_modes": "modes of the data's mixture",
    "high_quality": "share of samples within 3 sigma of a mode (fidelity, higher is better)",
    "mode_kl": "KL of the high-quality samples' mode histogram to uniform (0 = balanced)",
    "swd": "sliced Wasserstein-1 distance to the data, in data units (lower is better)",
}
KID_SCALE = 1000  # KID values are tiny; the table shows them x 1000 (the JSON keeps raw values)


def _format_table(source: str, n: int, reference: str, result: dict, notes: list[str], features: str) -> str:
    """The figures, each feature-based one named with its features (FID[digits], FID[inception])."""
    from ganforge.metrics.custom_features import label

    lines = [f"{source}: {n} samples against {reference}"]
    width = max(16, max(len(label(k, features)) + 2 for k in {**DESCRIPTIONS, **TOY_DESCRIPTIONS}))
    for key, what in {**DESCRIPTIONS, **TOY_DESCRIPTIONS}.items():
        if key not in result:
            continue
        value = result[key]
        if key == "kid":
            shown = f"{value * KID_SCALE:.4g} ± {result['kid_std'] * KID_SCALE:.2g}"
        else:
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"  {label(key, features):<{width}}{shown:>18}   {what}")
    per_class = [(name, result[key]) for name, key in ((label("per_class_fid", features), "per_class_fid"),
                                                       ("accuracy", "per_class_accuracy")) if result.get(key)]
    if per_class:
        classes = sorted({c for _, d in per_class for c in d}, key=int)
        row = max(12, max(len(name) + 1 for name, _ in per_class))
        lines.append(f"  {'per class':<{row + 2}}" + "".join(f"{c:>7}" for c in classes))
        for name, d in per_class:
            lines.append(f"    {name:<{row}}" + "".join(f"{d[c]:>7.3g}" if c in d else f"{'-':>7}" for c in classes))
    lines += [f"note: {note}" for note in notes]
    return "\n".join(lines)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return None if isinstance(value, float) and not math.isfinite(value) else value


@click.command("evaluate")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--n", "n", type=int, default=10_000, show_default=True,
              help="Samples to generate from a run (files are evaluated whole).")
@click.option("--reference", default="mnist-test", show_default=True,
              help="'mnist-test' (bundled features) or a directory of IDX files or images, or an .npz; "
              "for a model of 2-D points its own data unless ring8, grid25, spiral, moons or a CSV is given.")
@checkpoint_option
@click.option("--seed", type=int, default=0, show_default=True, help="Noise seed for a run's samples.")
@click.option("--features", type=click.Path(path_type=Path),
              help="A feature file of your own (TorchScript .pt or ONNX .onnx: images in [-1, 1] -> vectors; "
              "run only files you trust) for FID/KID/precision/recall/density/coverage; needs --reference DIR.")
@click.option("--features-size", type=int, help="Input side of the --features network, when its file does "
              "not declare it (299 for Inception-v3).")
@click.option("--json", "as_json", is_flag=True, help="Also print one JSON object as the last line.")
def command(source, n, reference, checkpoint, seed, features, features_size, as_json):
    """Measure generated digits: FID, KID, precision/recall, density/coverage, class accuracy;
    or any images, with --features FILE (your feature network) and --reference DIR.

    SOURCE is a run directory (or checkpoint), 'pretrained' (the model shipped with ganforge), an
    .npz with 'images' (and 'labels') as written by 'ganforge generate --out X.npz', or a directory
    of images named <label>_<index>.png.
    Example: ganforge evaluate runs/digits --json
    """
    from ganforge.generator import MAX_SAMPLES, load
    from ganforge.metrics import caveats, evaluate_generator, evaluate_samples, load_images
    from ganforge.metrics.custom_features import (DIGITS, evaluate_features, feature_caveats,
                                                  load_extractor)
    from ganforge.metrics.features import RESOLUTION
    from ganforge.rundir import RunDir, names_pretrained

    positive("n", n, MAX_SAMPLES)
    if features is None and features_size is not None:
        raise GanforgeError("--features-size sets the input size of a --features network; give --features FILE too")
    shipped = names_pretrained(source)
    if not (shipped or source.exists()):
        raise GanforgeError(f"{source} does not exist; give a run directory, an .npz file, a directory "
                            "of images, or 'pretrained'")
    extractor = load_extractor(features, features_size) if features is not None else None
    if shipped or RunDir(source).holds_run() or source.suffix == ".safetensors":
        gan = load(source, checkpoint)
        if gan.model.points:
            return _points(gan, source, n, seed, reference, as_json)
        gan.check_whole(n, "an evaluation")
        if extractor is None:
            result = evaluate_generator(gan, n, seed, reference)
        else:
            labels = gan.labels_for(n, None)
            result = evaluate_features(gan.sample(n, labels, seed), labels, reference, extractor)
        shape = (gan.model.img_channels, gan.model.img_resolution, gan.model.img_resolution)
    else:
        images, labels = load_images(source, resolution=extractor.size if extractor else RESOLUTION)
        n, shape = len(images), tuple(images.shape[1:])
        result = (evaluate_samples(images, labels, reference) if extractor is None
                  else evaluate_features(images, labels, reference, extractor))
    notes = caveats(shape, reference) if extractor is None else feature_caveats(extractor)
    name = DIGITS if extractor is None else extractor.name
    click.echo(_format_table(str(source), n, reference, result, notes, name))
    if as_json:
        click.echo(json.dumps(_jsonable({"source": str(source), "n": n, "reference": reference,
                                         "features": name, **result, "notes": notes})))


def _points(gan, source: Path, n: int, seed: int, reference: str, as_json: bool) -> None:
    """A model of 2-D points: modes covered, high-quality share, mode KL and SWD against its data
    (or the points --reference names)."""
    from ganforge.data import is_points, load_dataset
    from ganforge.metrics.toy import toy_metrics
    from ganforge.points import sample_points, training_points

    spec = reference if is_points(reference) else training_points(gan)
    data = load_dataset(spec)
    result = toy_metrics(sample_points(gan, n, seed), data)
    notes = [] if data.centres is not None else [f"{spec} is not a Gaussian mixture: it has no modes "
                                                 "to count, so only the SWD is measured"]
    click.echo(_format_table(str(source), n, spec, result, notes, features="points"))
    if as_json:
        click.echo(json.dumps(_jsonable({"source": str(source), "n": n, "reference": spec, **result,
                                         "notes": notes})))
