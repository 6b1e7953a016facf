"""The metric registry and the two entry points: `evaluate_samples` (images in, figures out) and
`evaluate_generator` (a trained GAN in, figures out).

Each registry entry maps the embedded samples and the reference to a few named figures; the math
lives in `ganforge.metrics.scores`, where every function cites its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch

from ganforge.errors import GanforgeError
from ganforge.generator import GAN
from ganforge.metrics import scores
from ganforge.metrics.features import RESOLUTION, embed
from ganforge.metrics.reference import MNIST_TEST, Reference, load_reference, mean_cov

Result = dict[str, float | dict]


@dataclass
class Embedded:
    features: torch.Tensor  # float32 (N, 64)
    probs: torch.Tensor  # float32 (N, 10)
    labels: torch.Tensor | None  # int64 (N,): the classes the images were made for


Metric = Callable[[Embedded, Reference], Result]
METRICS: dict[str, Metric] = {}


def metric(name: str) -> Callable[[Metric], Metric]:
    def register(fn: Metric) -> Metric:
        METRICS[name] = fn
        return fn
    return register


@metric("fid")
def _fid(s: Embedded, ref: Reference) -> Result:
    return {"fid": scores.frechet_distance(*mean_cov(s.features), ref.mean, ref.cov)}


@metric("kid")
def _kid(s: Embedded, ref: Reference) -> Result:
    kid, kid_std = scores.kernel_distance(s.features, ref.features, scores.KID_SUBSETS)
    return {"kid": kid, "kid_std": kid_std}


@metric("precision_recall_density_coverage")
def _manifold(s: Embedded, ref: Reference) -> Result:
    real, radii = ref.manifold(len(s.features))
    return scores.manifold_scores(real, s.features, radii)


@metric("digit_score")
def _digit_score(s: Embedded, ref: Reference) -> Result:
    return {"digit_score": scores.digit_score(s.probs)}


@metric("class_accuracy")
def _class_accuracy(s: Embedded, ref: Reference) -> Result:
    if s.labels is None:
        return {}
    per_class = {str(c): scores.class_accuracy(s.probs[s.labels == c], s.labels[s.labels == c])
                 for c in s.labels.unique().tolist()}
    return {"class_accuracy": scores.class_accuracy(s.probs, s.labels), "per_class_accuracy": per_class}


@metric("per_class_fid")
def _per_class_fid(s: Embedded, ref: Reference) -> Result:
    if s.labels is None or ref.labels is None:
        return {}
    per_class = {}
    for c in s.labels.unique().tolist():
        fake, real = s.features[s.labels == c], ref.features[ref.labels == c]
        if len(fake) > 1 and len(real) > 1:
            per_class[str(c)] = scores.frechet_distance(*mean_cov(fake), *mean_cov(real))
    return {"per_class_fid": per_class}


@metric("classes")
def _classes(s: Embedded, ref: Reference) -> Result:
    return {"classes_covered": scores.classes_covered(s.probs), "class_kl": scores.class_kl(s.probs)}


QUICK = ("fid", "precision_recall_density_coverage", "class_accuracy", "classes")


def checked_labels(images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
    """At least 2 images, and labels (when given) as int64 (N,) on the CPU, one per image."""
    if len(images) < 2:
        raise GanforgeError(f"need at least 2 images to evaluate (got {len(images)})")
    if labels is None:
        return None
    labels = torch.as_tensor(labels).long().reshape(-1).cpu()
    if len(labels) != len(images):
        raise GanforgeError(f"got {len(labels)} labels for {len(images)} images")
    return labels


def evaluate_samples(images: torch.Tensor, labels: torch.Tensor | None = None,
                     reference: str | Reference = MNIST_TEST,
                     metrics: Iterable[str] | None = None) -> Result:
    """Every metric (or those named in `metrics`) of uint8 images (N, C, H, W) or (N, H, W),
    generated for `labels` (N,) when given, against `reference` ("mnist-test" or a path)."""
    names = list(METRICS) if metrics is None else list(metrics)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise GanforgeError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
    labels = checked_labels(images, labels)
    ref = load_reference(reference)
    features, probs = embed(images)
    s = Embedded(features, probs, labels)
    result: Result = {}
    for name in names:
        result.update(METRICS[name](s, ref))
    return result


def quick_metrics(images: torch.Tensor, labels: torch.Tensor | None = None,
                  reference: str | Reference = MNIST_TEST) -> Result:
    """FID, precision/recall, density/coverage, class accuracy and classes covered: the
    in-training subset."""
    return evaluate_samples(images, labels, reference, QUICK)


def evaluate_generator(gan: GAN, n: int = 10_000, seed: int = 0, reference: str | Reference = MNIST_TEST) -> Result:
    """Sample n images from `gan` (spread evenly over its classes when it is conditional) and
    evaluate them."""
    labels = gan.labels_for(n, None)
    return evaluate_samples(gan.sample(n, labels, seed), labels, reference)


def caveats(image_shape: tuple[int, ...], reference: str | Reference = MNIST_TEST) -> list[str]:
    """Which figures mean what for images of `image_shape` (C, H, W) against `reference`."""
    ref = load_reference(reference)
    notes = []
    if tuple(image_shape[-3:]) != (1, RESOLUTION, RESOLUTION):
        notes.append(f"images are {'x'.join(map(str, image_shape[-3:]))}, not 1x28x28 digits: the "
                     "features are those of a digit classifier (after conversion to 28x28 grey), so "
                     "fid/kid/precision/recall/density/coverage only rank samples of the same data "
                     "against a reference of that data (--reference PATH); they are not comparable "
                     "with digit figures")
    if not ref.digits:
        notes.append(f"the reference {ref.name} is not known to hold digits (no labels, or the digit "
                     "classifier reads them poorly): digit_score, class_accuracy, classes_covered and "
                     "class_kl count digit predictions and mean nothing here; per_class_fid uses the "
                     "reference's own labels")
    return notes
