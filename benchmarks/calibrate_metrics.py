"""Calibration of ganforge's metrics: what real, corrupted and collapsed digits score against the
bundled MNIST test features, so users know what "good" means (recorded in docs/metrics.md).

    python benchmarks/calibrate_metrics.py [--threads 2]

"real" is the 10,000 bundled MNIST *training* digits (1,000 per class); the classifier was trained
on them, which flatters class accuracy a little but not the feature statistics much (see the docs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))  # find _common however we are loaded
import _common  # noqa: E402  (puts the repository root first on sys.path)

from ganforge.data import load_dataset  # noqa: E402
from ganforge.metrics import evaluate_samples, load_reference  # noqa: E402

COLUMNS = ("fid", "kid", "precision", "recall", "density", "coverage", "digit_score", "class_accuracy",
           "classes_covered", "class_kl")


def noisy(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian pixel noise of std `sigma` in units of the full 0..255 range, clipped."""
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(0)) * sigma * 255
    return (images.float() + noise).round().clamp(0, 255).to(torch.uint8)


def blurred(images: torch.Tensor, size: int) -> torch.Tensor:
    """A size x size box blur."""
    return F.avg_pool2d(images.float(), size, stride=1, padding=size // 2, count_include_pad=False).round().to(torch.uint8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _common.add_threads_arg(p)
    threads = _common.set_threads(p.parse_args().threads)
    print(_common.header_line(_common.machine_header(threads)))
    print()
    ds = load_dataset("digits")
    images, labels = ds.images, ds.labels
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    low = labels < 5
    cases = {
        "real train digits (bundled)": (images, labels),
        "pixel noise sigma 0.1": (noisy(images, 0.1), labels),
        "pixel noise sigma 0.2": (noisy(images, 0.2), labels),
        "pixel noise sigma 0.4": (noisy(images, 0.4), labels),
        "box blur 3x3": (blurred(images, 3), labels),
        "box blur 5x5": (blurred(images, 5), labels),
        "digits 0-4 only (5,000)": (images[low], labels[low]),
        "one digit repeated 10,000x": (images[:1].expand(len(images), -1, -1, -1), labels[:1].expand(len(images))),
        "real digits, labels shuffled": (images, shuffled),
    }
    load_reference()  # so that the first timing is the evaluation alone
    names = {"fid": "FID[digits]", "kid": "KID[digits] x1000"}  # digit features, not Inception's
    print("| case | " + " | ".join(names.get(c, c) for c in COLUMNS)
          + " | seconds | matmul GFLOP/s |")
    print("|---" * (len(COLUMNS) + 3) + "|")
    for name, (x, y) in cases.items():
        peak = _common.row_yardstick(threads)  # beside the seconds, so that they can be compared
        start = time.perf_counter()
        r = evaluate_samples(x, y)
        seconds = time.perf_counter() - start
        cells = [f"{r[c] * 1000:.2f}" if c == "kid" else (str(r[c]) if isinstance(r[c], int) else f"{r[c]:.3f}")
                 for c in COLUMNS]
        print(f"| {name} | " + " | ".join(cells) + f" | {seconds:.1f} | {peak:.0f} |", flush=True)


if __name__ == "__main__":
    main()
