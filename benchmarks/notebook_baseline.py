"""The baseline ganforge's `tutorial` preset is measured against: a re-creation of the training
loop of the classic "Train Basic GAN" MNIST notebook (MLP generator and discriminator, BCE on
logits, Adam 1e-5), written from a description of it, as a user would run it on a CPU.

    python benchmarks/notebook_baseline.py [--seconds 5 | --steps 200] [--data DIR] [--threads 2]

What the notebook does, and so what this loop pays for:
- data: a per-sample `Dataset` whose items are PIL images (as torchvision's MNIST returns them)
  put through a to-tensor transform (uint8 -> float [0, 1], one image at a time), batched by
  `DataLoader(batch_size=128, shuffle=True)` in the main process (num_workers 0);
- (1) update D on fakes from fresh noise (detached) toward 0 and the real batch toward 1, the two
  BCE-with-logits losses averaged; backward with retain_graph=True, as the notebook writes it;
- (2) update G on fakes from new noise toward 1;
- bookkeeping every step: `.item()` of both losses into running means over `display_step`, a
  tqdm bar over the batches; every `display_step` steps a printed line and 5x5 grids of fake and
  real images (built here as the notebook's image helper builds them, but not shown).

images/s counts real images through D per second (as ganforge's metrics.jsonl does), timed from
the first batch (or the end of step `skip_steps`) to the end of the last step: start-up (reading
MNIST, building the networks) is left out, as `elapsed_s` leaves it out of ganforge's training.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))  # find _common however we are loaded
import _common  # noqa: E402  (puts the repository root first on sys.path)

from ganforge.data import load_dataset  # noqa: E402  (reads the IDX files, as torchvision's MNIST does)

Z_DIM = 64
HIDDEN = 128
IMAGE_PIXELS = 28 * 28
BATCH_SIZE = 128
LR = 1e-5
DISPLAY_STEP = 500


def to_tensor(pic: Image.Image) -> torch.Tensor:
    """A greyscale PIL image -> float32 (1, H, W) in [0, 1]: the notebook's ToTensor()."""
    array = np.array(pic, dtype=np.uint8, copy=True)  # (H, W)
    return torch.from_numpy(array).unsqueeze(0).float().div(255)


class MNISTImages(Dataset):
    """One (image, label) per index: a PIL image from the uint8 array, then the transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=to_tensor):
        self.images, self.labels, self.transform = images, labels, transform  # (N, 28, 28) uint8, (N,)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        img = Image.fromarray(self.images[index], mode="L")
        return self.transform(img), int(self.labels[index])


def generator_block(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.BatchNorm1d(d_out), nn.ReLU(inplace=True))


class Generator(nn.Module):
    def __init__(self, z_dim: int = Z_DIM, hidden: int = HIDDEN, pixels: int = IMAGE_PIXELS):
        super().__init__()
        self.net = nn.Sequential(
            generator_block(z_dim, hidden),
            generator_block(hidden, hidden * 2),
            generator_block(hidden * 2, hidden * 4),
            generator_block(hidden * 4, hidden * 8),
            nn.Linear(hidden * 8, pixels),
            nn.Sigmoid(),
        )

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.net(noise)  # (B, 784) in [0, 1]


def discriminator_block(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.LeakyReLU(0.2, inplace=True))


class Discriminator(nn.Module):
    def __init__(self, pixels: int = IMAGE_PIXELS, hidden: int = HIDDEN):
        super().__init__()
        self.net = nn.Sequential(
            discriminator_block(pixels, hidden * 4),
            discriminator_block(hidden * 4, hidden * 2),
            discriminator_block(hidden * 2, hidden),
            nn.Linear(hidden, 1),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)  # (B, 1) logits


def disc_loss(gen, disc, criterion, real: torch.Tensor, n: int) -> torch.Tensor:
    fake = gen(torch.randn(n, Z_DIM))
    fake_logits = disc(fake.detach())
    real_logits = disc(real)
    fake_loss = criterion(fake_logits, torch.zeros_like(fake_logits))
    real_loss = criterion(real_logits, torch.ones_like(real_logits))
    return (fake_loss + real_loss) / 2


def gen_loss(gen, disc, criterion, n: int) -> torch.Tensor:
    fake_logits = disc(gen(torch.randn(n, Z_DIM)))
    return criterion(fake_logits, torch.ones_like(fake_logits))


def train_step(gen, disc, gen_opt, disc_opt, criterion, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the notebook: D, then G, each on fakes from fresh noise; real is (B, 784)."""
    n = len(real)
    # (1) Update D: maximise log D(x) + log(1 - D(G(z)))
    disc_opt.zero_grad()
    d_loss = disc_loss(gen, disc, criterion, real, n)
    d_loss.backward(retain_graph=True)
    disc_opt.step()
    # (2) Update G: maximise log D(G(z)), new noise
    gen_opt.zero_grad()
    g_loss = gen_loss(gen, disc, criterion, n)
    g_loss.backward()
    gen_opt.step()
    return d_loss, g_loss


def build(seed: int = 0):
    """The notebook's networks, optimizers and criterion."""
    torch.manual_seed(seed)
    gen, disc = Generator(), Discriminator()
    gen_opt = torch.optim.Adam(gen.parameters(), lr=LR)
    disc_opt = torch.optim.Adam(disc.parameters(), lr=LR)
    return gen, disc, gen_opt, disc_opt, nn.BCEWithLogitsLoss()


def image_grid(images: torch.Tensor, n: int = 25, nrow: int = 5, pad: int = 2) -> np.ndarray:
    """The notebook's image helper up to (not including) the plotting call: the first n images,
    unflattened to (1, 28, 28), tiled nrow wide with padding, as an (H, W) array."""
    tiles = images.detach().cpu().view(-1, 1, 28, 28)[:n]
    rows = math.ceil(len(tiles) / nrow)
    side = 28 + pad
    grid = torch.zeros(1, rows * side + pad, nrow * side + pad)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, nrow)
        grid[:, pad + r * side:pad + r * side + 28, pad + c * side:pad + c * side + 28] = tile
    return grid.permute(1, 2, 0).squeeze().numpy()


def make_loader(data: str) -> DataLoader:
    ds = load_dataset(data)
    images = ds.images[:, 0].numpy()  # (N, 28, 28) uint8, as torchvision's MNIST keeps them
    return DataLoader(MNISTImages(images, ds.labels.numpy()), batch_size=BATCH_SIZE, shuffle=True)


def run_notebook(seconds: float | None = None, steps: int | None = None, data: str | None = None,
                 threads: int | None = None, seed: int = 0, skip_steps: int = 0, progress_file=None) -> float:
    """Train the notebook's GAN for `seconds` of loop time or `steps` steps (whichever comes
    first; at least one must be given) on `data` (default: the shared MNIST directory) and
    return real images through D per second, counted after the first `skip_steps` steps (0: from
    the first batch). The tqdm bar writes to `progress_file` (default: os.devnull, so that
    benchmark output stays readable; the bar's cost is paid all the same)."""
    if seconds is None and steps is None:
        raise ValueError("give seconds or steps")
    if steps is not None and steps <= skip_steps:
        raise ValueError(f"steps ({steps}) must be more than skip_steps ({skip_steps})")
    if threads is not None:
        _common.set_threads(threads)
    gen, disc, gen_opt, disc_opt, criterion = build(seed)
    loader = make_loader(data or _common.default_data())
    budget_s = math.inf if seconds is None else seconds
    max_steps = math.inf if steps is None else steps

    own_file = progress_file is None
    progress_file = open(os.devnull, "w") if own_file else progress_file
    cur_step, images, mean_gen_loss, mean_disc_loss = 0, 0, 0.0, 0.0
    start = counted_from = time.perf_counter()
    try:
        while True:  # epochs, until the budget is spent
            for real, _ in tqdm(loader, file=progress_file):
                n = len(real)
                real = real.view(n, -1)  # (B, 784)
                d_loss, g_loss = train_step(gen, disc, gen_opt, disc_opt, criterion, real)
                mean_disc_loss += d_loss.item() / DISPLAY_STEP
                mean_gen_loss += g_loss.item() / DISPLAY_STEP
                if cur_step % DISPLAY_STEP == 0 and cur_step > 0:
                    print(f"Step {cur_step}: Generator loss: {mean_gen_loss}, discriminator loss: "
                          f"{mean_disc_loss}", file=progress_file)
                    image_grid(gen(torch.randn(n, Z_DIM)))
                    image_grid(real)
                    mean_gen_loss = mean_disc_loss = 0.0
                cur_step += 1
                images += n
                now = time.perf_counter()
                if cur_step == skip_steps:
                    images, counted_from = 0, now
                if cur_step >= max_steps or (now - start >= budget_s and cur_step > skip_steps):
                    return images / (now - counted_from)
    finally:
        if own_file:
            progress_file.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0, help="loop time to train [default: 5]")
    p.add_argument("--steps", type=int, help="stop after this many steps instead")
    _common.add_data_arg(p)
    _common.add_threads_arg(p)
    args = p.parse_args()
    threads = _common.set_threads(args.threads)
    header = _common.machine_header(threads)
    print(_common.header_line(header))
    rate = run_notebook(None if args.steps else args.seconds, args.steps, args.data, threads)
    print(f"notebook baseline: {rate:,.0f} img/s on `{args.data}` "
          f"(matmul yardstick {header['matmul_gflops']:.0f} GFLOP/s)")


if __name__ == "__main__":
    main()
