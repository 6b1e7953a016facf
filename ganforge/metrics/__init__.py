"""Measurements of generated images, offline: a bundled digit classifier provides the features
(FID, KID, precision/recall, density/coverage) and the class predictions (digit_score, class
accuracy, mode collapse). See docs/metrics.md for what the figures mean and what "good" is.

    from ganforge.metrics import evaluate_generator, evaluate_samples
    evaluate_generator(ganforge.load("runs/digits"))          # {"fid": ..., "precision": ..., ...}
"""

from ganforge.metrics.registry import (METRICS, QUICK, caveats, evaluate_generator, evaluate_samples,
                                       quick_metrics)
from ganforge.metrics.reference import MNIST_TEST, Reference, load_images, load_reference

__all__ = ["METRICS", "QUICK", "MNIST_TEST", "Reference", "caveats", "evaluate_generator",
           "evaluate_samples", "load_images", "load_reference", "quick_metrics"]
