"""Train the bundled digit classifier (the feature network of `ganforge.metrics`) and precompute
the MNIST test set's reference features.

    python scripts/train_digit_classifier.py [--mnist ../shared/data/mnist] [--epochs 7] [--seed 0]

Trains `DigitClassifier` on the 60,000 official MNIST training digits with random shifts of up to
2 pixels and, on half of the digits, pixel noise of random strength; reports accuracy on the 10,000 test digits, and writes
- ganforge/assets/digit_classifier.safetensors: the weights, with the accuracy and this command
  in the metadata;
- ganforge/assets/mnist_test_features.safetensors: the test digits' 64-d features (float16), their
  labels, and the features' mean and covariance (float64, computed before rounding), so that
  evaluation needs neither the data set nor a download.
Seeded and single-threaded; it took 9 minutes (546 s) on the shared 2-core development machine
while other jobs kept its load average near 8.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save as st_save

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from ganforge.files import atomic_write  # noqa: E402
from ganforge.data import to_float  # noqa: E402
from ganforge.data.mnist import load_idx_dir  # noqa: E402
from ganforge.metrics.features import CLASSIFIER_PATH, DigitClassifier, embed  # noqa: E402
from ganforge.metrics.reference import MNIST_TEST_PATH  # noqa: E402

MAX_SHIFT = 2
MAX_NOISE = 0.25  # std of pixel noise, in units of the 0..255 range


def add_noise(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Gaussian pixel noise of a random strength (up to MAX_NOISE) on half of the images, clipped:
    early GAN samples are speckled digits, and their class should still be read correctly."""
    b = len(images)
    sigma = torch.rand(b, 1, 1, 1, generator=gen) * MAX_NOISE * 255 * (torch.rand(b, 1, 1, 1, generator=gen) < 0.5)
    noisy = images.float() + torch.randn(images.shape, generator=gen) * sigma
    return noisy.round().clamp(0, 255).to(torch.uint8)


def shift(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Move each uint8 image (B, 1, 28, 28) by its own random offset of up to MAX_SHIFT pixels."""
    b, _, h, w = images.shape
    padded = F.pad(images, (MAX_SHIFT,) * 4)  # (B, 1, 32, 32), zeros = background
    dy, dx = torch.randint(0, 2 * MAX_SHIFT + 1, (2, b, 1), generator=gen)
    rows = (dy + torch.arange(h))[:, :, None]  # (B, 28, 1)
    cols = (dx + torch.arange(w))[:, None, :]  # (B, 1, 28)
    return padded[torch.arange(b)[:, None, None], 0, rows, cols].unsqueeze(1)


@torch.no_grad()
def accuracy(net: DigitClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    _, probs = embed(images, net.eval())
    return (probs.argmax(1) == labels).float().mean().item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist", type=Path, default=ROOT.parent.parent / "shared" / "data" / "mnist")
    p.add_argument("--epochs", type=int, default=7)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    # One thread: results do not depend on the core count, and on a shared machine one thread
    # trains faster than two fighting other jobs for the cores.
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    train, test = load_idx_dir(args.mnist, "train"), load_idx_dir(args.mnist, "test")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(args.seed)
    net = DigitClassifier().to(memory_format=torch.channels_last)  # faster convolutions on CPU
    steps_per_epoch = len(train) // args.batch_size
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=args.epochs * steps_per_epoch)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(train), generator=gen)
        for i in range(steps_per_epoch):
            idx = perm[i * args.batch_size:(i + 1) * args.batch_size]
            x = to_float(add_noise(shift(train.images[idx], gen), gen)).contiguous(memory_format=torch.channels_last)
            # No label smoothing: digit_score needs confident posteriors on real digits.
            loss = F.cross_entropy(net(x)[1], train.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy(net, test.images, test.labels)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss.item():.4f}, test accuracy {acc:.4%}, "
              f"{time.perf_counter() - start:.0f}s", flush=True)

    raw, _ = embed(train.images, net.eval())
    net.feature_scale.fill_(raw.var(0).mean().sqrt().item())
    command = "python scripts/train_digit_classifier.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "mnist")
    weights = st_save({k: v.contiguous() for k, v in net.state_dict().items()},
                      metadata={"ganforge": json.dumps({"test_accuracy": round(acc, 5), "command": command,
                                                        "train_seconds": round(time.perf_counter() - start)})})
    atomic_write(CLASSIFIER_PATH, weights)

    feats, _ = embed(test.images, net.eval())
    f64 = feats.double()
    mean = f64.mean(0)
    cov = torch.cov(f64.T)
    meta = {"source": "MNIST test set (t10k), 10,000 digits", "classifier_sha256": hashlib.sha256(weights).hexdigest()}
    atomic_write(MNIST_TEST_PATH, st_save({"features": feats.half(), "labels": test.labels.to(torch.uint8),
                                           "mean": mean, "cov": cov}, metadata={"ganforge": json.dumps(meta)}))
    print(f"test accuracy {acc:.4%}; wrote {CLASSIFIER_PATH} and {MNIST_TEST_PATH}")


if __name__ == "__main__":
    main()
