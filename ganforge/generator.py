"""The inference pipeline: a generator and its discriminator in, images (and verdicts) out.

`ganforge.load(RUN)` builds a `GAN` from a checkpoint; the training loop builds one around its live
networks, so sample grids during training and images afterwards come from the same code.

    gan = ganforge.load("runs/digits")
    images = gan.sample(16, labels=7, seed=0)   # uint8 (16, 1, 28, 28), all sevens
"""

from __future__ import annotations

import contextlib
import numbers
from pathlib import Path
from typing import Iterator, Sequence

import torch

from ganforge.checkpoint import read_model
from ganforge import dist, police
from ganforge.config import ModelConfig, TrainConfig
from ganforge.data import to_float, to_uint8
from ganforge.errors import GanforgeError
from ganforge.nets import build_discriminator, build_generator, dcgan

MAX_SEED = 2**63 - 1
UNCONDITIONAL_ROWS = 8  # rows of a sheet from an unconditional model
SAMPLE_BATCH = 1000  # images per forward pass when sampling many
MAX_SAMPLES = 1_000_000  # images one call may ask for: bounds time, and memory where kept whole
MAX_SAMPLE_BYTES = 1 << 30  # of uint8 images held at once (a grid, an .npz, an evaluation)
CONV_NETS = ("dcgan", "resnet")
NOISE_ROWS = 1024  # noise rows drawn at a time for many images (a multiple of 16: see noise_chunks)
# Folding (see `folded`) made the 28 px digit G 1.46x and the 32 px one 1.13x faster; at 64 and
# 128 px it gained about 6% for two to three times the memory of a batch (its col2im input).
FOLD_MAX_SIDE = 32

Labels = int | Sequence[int] | torch.Tensor | None


@contextlib.contextmanager
def evaluating(module: torch.nn.Module):
    """Run `module` in eval mode (BatchNorm on running statistics, left untouched), then restore."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def for_inference(G: torch.nn.Module, model: ModelConfig, device: str | torch.device) -> torch.nn.Module:
    """G in eval mode on `device`, in the memory layout that generates fastest there: on a CPU,
    oneDNN's (transposed) convolutions run ~1.5x faster on channels-last maps
    (benchmarks/THROUGHPUT.md, generation), with the same images."""
    G = G.eval().to(device)
    if model.net in CONV_NETS and torch.device(device).type == "cpu":
        G = G.to(memory_format=torch.channels_last)
    return G


def folded(G: torch.nn.Module, model: ModelConfig, device: str | torch.device) -> torch.nn.Module | None:
    """A faster copy of a trained G for generating on `device`, where one was measured faster:
    a DCGAN generator of up to FOLD_MAX_SIDE px on a CPU (`dcgan.FoldedGenerator`); None elsewhere.
    Its images equal G's to float rounding (now and then a pixel one level apart in uint8)."""
    if model.net == "dcgan" and model.img_resolution <= FOLD_MAX_SIDE and torch.device(device).type == "cpu":
        return dcgan.FoldedGenerator(G).requires_grad_(False)
    return None


class GAN:
    """A generator (G_ema when the run kept one) and its discriminator, for inference."""

    def __init__(self, generator: torch.nn.Module, discriminator: torch.nn.Module, model: ModelConfig,
                 class_names: list[str], step: int = 0, path: Path | None = None,
                 device: torch.device | str = "cpu", config: TrainConfig | None = None, fold: bool = False):
        self.generator, self.discriminator = generator, discriminator
        # A loaded model generates through a faster folded copy of its G where there is one (see
        # `folded`); the training loop's GAN does not fold, as its G changes every step.
        self.fold = fold
        self._folded: tuple[tuple, torch.nn.Module | None] | None = None  # (G's tensors then, the copy)
        self.model, self.class_names, self.step, self.path = model, class_names, step, path
        self.device = torch.device(device)
        self.config = config  # how it was trained (loss, data), when known
        self._police_reference: tuple[torch.Tensor, str] | str | None = None  # see police_reference
        self.police_folder: str | None = None  # see rank_among

    @classmethod
    def from_checkpoint(cls, path: str | Path, name: str = "last", device: str | torch.device = "cpu") -> GAN:
        stored = read_model(path, name)
        model = stored.config.model
        G, D = build_generator(model), build_discriminator(model)
        G.load_state_dict(stored.generator, strict=True)  # names and shapes checked by read_model
        D.load_state_dict(stored.discriminator, strict=True)
        return cls(for_inference(G, model, device), D.eval().to(device), model, stored.class_names, stored.step,
                   stored.path, device, stored.config, fold=True)

    @property
    def conditional(self) -> bool:
        return self.model.conditional

    @property
    def num_classes(self) -> int:
        return self.model.num_classes

    @property
    def loss(self) -> str | None:
        """The loss D was trained with, which decides what its scores mean (see ganforge.police)."""
        return self.config.loss if self.config is not None else None

    def labels_for(self, n: int, labels: Labels) -> torch.Tensor | None:
        """Validate `labels` (None, one class, or n classes) into an int64 tensor (n,) or None;
        None for a conditional model spreads n evenly over all classes."""
        if not self.conditional:
            if labels is not None:
                raise GanforgeError("this model is unconditional: it takes no class labels; "
                                    "leave out --classes")
            return None
        if labels is None:
            _check_count("the number of images", n, 0)
            return spread(n, list(range(self.num_classes)))
        try:
            t = torch.as_tensor(labels)
        except (TypeError, ValueError, RuntimeError, OverflowError):
            t = None
        if t is None or t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
            raise GanforgeError(f"class labels must be whole numbers: one class or a list of them "
                                f"(got {str(labels)[:80]!r})")
        t = t.to(torch.int64).reshape(-1)
        if t.numel() == 1:
            t = t.expand(n)
        if t.numel() != n:
            raise GanforgeError(f"got {t.numel()} labels for {n} images; give one label or {n}")
        bad = t[(t < 0) | (t >= self.num_classes)]
        if bad.numel():
            raise GanforgeError(f"class {int(bad[0])} is outside this model's classes "
                                f"0..{self.num_classes - 1}")
        return t.clone()

    @staticmethod
    def _noise_generator(seed: int | None) -> torch.Generator:
        gen = torch.Generator()
        if seed is None:
            gen.seed()
        elif isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
            raise GanforgeError(f"seed must be a whole number in 0..{MAX_SEED} (got {seed!r})")
        else:
            gen.manual_seed(int(seed))
        return gen

    def noise(self, n: int, seed: int | None) -> torch.Tensor:
        """z (n, z_dim) drawn on the CPU, so a seed gives the same noise on every device."""
        _check_count("the number of noise vectors", n, 0)
        return torch.randn(n, self.model.z_dim, generator=self._noise_generator(seed))

    def noise_chunks(self, n: int, seed: int | None, rows: int = NOISE_ROWS) -> Iterator[torch.Tensor]:
        """`noise(n, seed)` a chunk of about `rows` rows at a time, equal to it bit for bit, so
        many images never need all their noise at once. Torch's CPU sampler turns uniforms into
        normals in blocks of 16 values and redraws a ragged end: draws of a multiple of 16 values
        continue one draw exactly, so `rows` is a multiple of 16, and a tail of under 16 values
        joins the chunk before it (tests/test_hardening.py checks the equality)."""
        gen, z_dim, start = self._noise_generator(seed), self.model.z_dim, 0
        while start < n:
            size = min(rows, n - start)
            if 0 < (n - start - size) * z_dim < 16:
                size = n - start
            yield torch.randn(size, z_dim, generator=gen)
            start += size

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Float images in [-1, 1] (n, C, H, W) for given noise and labels: classes (n,), or
        class weights (n, K) that mix the class embeddings (see `interpolation`)."""
        y = labels.to(self.device) if labels is not None else None
        fast = self.folded_generator()
        if fast is not None:
            return fast(z.to(self.device), y)
        with evaluating(self.generator) as G:
            return G(z.to(self.device), y)

    def folded_generator(self) -> torch.nn.Module | None:
        """The folded copy of G that `generate` runs, or None (G itself runs). Folded again
        whenever G's tensors have changed since (replaced, moved, or edited in place)."""
        if not self.fold:
            return None
        G = self.generator
        tensors = tuple((t.data_ptr(), t._version, t.device) for t in (*G.parameters(), *G.buffers()))
        if self._folded is None or self._folded[0] != tensors:
            self._folded = (tensors, folded(G, self.model, self.device))
        return self._folded[1]

    @torch.no_grad()
    def score(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """D's raw score (its logit) for each float image (n, C, H, W) in [-1, 1], a batch at a
        time; what it means depends on the loss (`police` says, and ranks it)."""
        m = self.model
        shape = (2,) if m.points else (m.img_channels, m.img_resolution, m.img_resolution)
        if not (torch.is_tensor(images) and images.is_floating_point() and tuple(images.shape[1:]) == shape):
            got = f"{images.dtype} {tuple(images.shape)}" if torch.is_tensor(images) else type(images).__name__
            raise GanforgeError(f"D judges float {'points' if m.points else 'images'} (n, "
                                f"{', '.join(map(str, shape))}) in [-1, 1] (got {got}); uint8 images "
                                "(from sample()) go through ganforge.data.to_float first")
        if torch.is_tensor(labels) and labels.is_floating_point() and labels.ndim == 2:
            labels = labels.argmax(dim=1)  # D knows whole classes only: judge a mix as its main class
        if self.conditional and labels is None:
            raise GanforgeError("this model is conditional: its D judges an image as one class; "
                                "give the labels too")
        y = self.labels_for(len(images), labels).to(self.device) if self.conditional else None
        with evaluating(self.discriminator) as D:
            return torch.cat([D(images[i:i + SAMPLE_BATCH].to(self.device),
                                None if y is None else y[i:i + SAMPLE_BATCH])[0]
                              for i in range(0, len(images), SAMPLE_BATCH)]).float()

    def verdict(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """sigmoid(D's score): D's probability that the image is real under the bce and minimax
        losses, but not a probability under hinge, lsgan or wgan-gp; `police` ranks instead."""
        return torch.sigmoid(self.score(images, labels))

    def rank_among(self, folder: str | Path) -> None:
        """Rank the police's verdicts among real images from `folder` (one sub-folder per class, or
        IDX files): a model trained on a folder of images needs it named, because ganforge does not
        read a folder that only a checkpoint names (see police.reference_images)."""
        if not Path(folder).is_dir():
            raise GanforgeError(f"{folder}: no such directory; give a folder of real images "
                                "(one sub-folder per class) or of IDX files")
        if self.config is None:
            raise GanforgeError("this GAN has no training configuration (its resolution, channels and "
                                "classes decide how the images are read): load it from a checkpoint")
        self.police_folder, self._police_reference = str(folder), None

    def police_reference(self) -> tuple[torch.Tensor, str] | str:
        """(D's scores on the police's fixed batch of real images, the batch's name), computed
        once per GAN (a checkpoint's D does not change), or why there is no such batch."""
        if self._police_reference is None:
            ref = police.reference_images(self.config, self.police_folder)
            self._police_reference = ref if isinstance(ref, str) else (
                self.score(to_float(ref.images), ref.labels).cpu(), ref.name)
        return self._police_reference

    def police(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> police.Verdict:
        """The honest verdict on float images (n, C, H, W) in [-1, 1]: D's raw scores, each one's
        percentile among D's scores on real images ("more real-looking than 73% of real digits"),
        and what the score means under this model's loss."""
        scores, ref = self.score(images, labels).cpu(), self.police_reference()
        if isinstance(ref, str):
            return police.Verdict(scores, None, police.meaning(self.loss), ref)
        return police.Verdict(scores, police.percentile(scores, ref[0]), police.meaning(self.loss), ref[1])

    def images(self, z: torch.Tensor, labels: torch.Tensor | None = None,
               batch_size: int = SAMPLE_BATCH) -> torch.Tensor:
        """uint8 images (n, C, H, W) on the CPU for given noise and labels, a batch at a time."""
        if self.model.points:
            raise GanforgeError("this is a model of 2-D points, not of images: draw its points with "
                                "ganforge.points.sample_points(gan, n, seed)")
        _check_count("batch_size", batch_size, 1)
        return torch.cat([to_uint8(self.generate(z[i:i + batch_size],
                                                 None if labels is None else labels[i:i + batch_size])).cpu()
                          for i in range(0, len(z), batch_size)])

    def sample(self, n: int, labels: Labels = None, seed: int | None = None,
               batch_size: int = SAMPLE_BATCH) -> torch.Tensor:
        """n new images as uint8 (n, C, H, W); the same seed gives the same images."""
        return torch.cat([images for images, _ in self.sample_chunks(n, labels, seed, batch_size)])

    def sample_chunks(self, n: int, labels: Labels = None, seed: int | None = None,
                      batch_size: int = SAMPLE_BATCH) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """`sample(n, labels, seed)` as chunks of (uint8 images, their labels), in order: for
        writing many images with memory bounded by a chunk."""
        if not isinstance(n, int) or isinstance(n, bool) or not 0 < n <= MAX_SAMPLES:
            raise GanforgeError(f"the number of images must be a positive integer up to {MAX_SAMPLES:,} (got {n!r})")
        labels, start = self.labels_for(n, labels), 0
        for z in self.noise_chunks(n, seed):
            chunk = None if labels is None else labels[start:start + len(z)]
            yield self.images(z, chunk, batch_size), chunk
            start += len(z)

    def check_whole(self, n: int, what: str) -> None:
        """Refuse n images that `what` would hold in memory at once beyond MAX_SAMPLE_BYTES."""
        m = self.model
        per_image = m.img_channels * m.img_resolution ** 2
        if n * per_image > MAX_SAMPLE_BYTES:
            raise GanforgeError(f"{n} images of {m.img_channels}x{m.img_resolution}x{m.img_resolution} are "
                                f"{n * per_image / 2**30:.1f} GiB, held at once by {what}; the limit is "
                                f"{MAX_SAMPLE_BYTES // per_image} images (1 GiB)")

    def sheet_labels(self, columns: int, max_rows: int | None = None) -> torch.Tensor | None:
        """Labels for a sheet with one row per class (at most `max_rows`), `columns` per row."""
        if not self.conditional:
            return None
        rows = min(self.num_classes, max_rows or self.num_classes)
        return spread(rows * columns, list(range(rows)))

    def class_sheet(self, columns: int, seed: int, max_rows: int | None = None) -> torch.Tensor:
        """uint8 images for a sheet: one row per class (UNCONDITIONAL_ROWS rows for an
        unconditional model), `columns` images per row, from the noise of `seed`."""
        labels = self.sheet_labels(columns, max_rows)
        n = len(labels) if labels is not None else UNCONDITIONAL_ROWS * columns
        return self.images(self.noise(n, seed), labels)


def _check_count(what: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise GanforgeError(f"{what} must be a whole number of at least {low} (got {value!r})")


def load(path: str | Path, checkpoint: str = "last", device: str | torch.device = "cpu") -> GAN:
    """Load a trained GAN from a run directory or a checkpoint file, onto `device` ("cpu",
    "cuda", "cuda:N", "mps", a torch.device, or "auto": the best one present)."""
    return GAN.from_checkpoint(path, checkpoint, inference_device(device))


def inference_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device this machine has; a GanforgeError naming the problem otherwise."""
    if device == "auto":
        device = dist.best_device_type()
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        d = None
    if d is None or d.type not in ("cpu", "cuda", "mps"):
        raise GanforgeError(f"device must be cpu, cuda, cuda:N, mps or auto (got {str(device)[:40]!r})")
    present = (torch.cuda.is_available() and (d.index or 0) < torch.cuda.device_count() if d.type == "cuda"
               else dist.mps_available() if d.type == "mps" else True)
    if not present:
        raise GanforgeError(f"device {str(d)!r} asked for, but PyTorch does not see it here; use device='cpu'")
    return d


def parse_classes(spec: str | None, num_classes: int) -> list[int] | None:
    """'7' | '0,3,9' | 'all' -> class list; None when not given."""
    if spec is None:
        return None
    if spec.strip() == "all":
        return list(range(num_classes))
    try:
        classes = [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise GanforgeError(f"--classes must be 'all', one class or a comma list like 0,3,9 (got {spec!r})") from None
    if not classes:
        raise GanforgeError("--classes is empty; give 'all', one class or a list like 0,3,9")
    for c in classes:
        if not 0 <= c < num_classes:
            raise GanforgeError(f"class {c} is outside this model's classes 0..{num_classes - 1}")
    return classes


def spread(n: int, classes: list[int]) -> torch.Tensor:
    """n labels spread evenly over `classes`, in contiguous blocks (one grid row per class)."""
    return torch.tensor(classes)[torch.arange(n) * len(classes) // n]


def class_ends(start: int | None, end: int | None) -> tuple[int, int] | None:
    """The two classes of an interpolation when one or both are given: a missing end repeats the
    other (a walk within one class); None when neither is given."""
    if start is None and end is None:
        return None
    return (start if start is not None else end, end if end is not None else start)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between noise rows a and b (n, d) at fractions t (n,).

    Gaussian noise lives near a sphere of radius sqrt(d); a straight line between two points cuts
    inside it, through noise G never saw in training, while the arc stays at a typical length.
    """
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1).clamp(-1, 1)
    omega = torch.acos(cos)[:, None]  # (n, 1) angle between a and b
    t = t[:, None]
    arc = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega).clamp_min(1e-7)
    return torch.where(omega > 1e-4, arc, torch.lerp(a, b, t))  # (nearly) parallel: the line is the arc


def interpolation(gan: GAN, steps: int, seeds: tuple[int, int], classes: tuple[int, int] | None = None,
                  spherical: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Noise (steps, z_dim) and labels walking from (seeds[0], classes[0]) to (seeds[1], classes[1]).

    The noise moves along the arc (or the line) between the two seeds' noise; the labels are class
    weights (steps, K) that move the class embedding linearly from one class to the other, or None
    for an unconditional model. Without classes, a conditional model walks within class 0. Feed
    both to `gan.generate`.
    """
    if not isinstance(steps, int) or steps < 2:
        raise GanforgeError(f"an interpolation needs at least 2 steps (got {steps!r})")
    t = torch.linspace(0, 1, steps)
    z_from, z_to = (gan.noise(1, s).expand(steps, -1) for s in seeds)
    z = slerp(z_from, z_to, t) if spherical else torch.lerp(z_from, z_to, t[:, None])
    if not gan.conditional:
        if classes is not None:
            raise GanforgeError("this model is unconditional: it takes no classes to interpolate between")
        return z, None
    ends = torch.cat([gan.labels_for(1, c) for c in classes or (0, 0)])  # validated, (2,)
    onehot = torch.nn.functional.one_hot(ends, gan.num_classes).float()  # (2, K)
    return z, torch.lerp(onehot[0], onehot[1], t[:, None])
