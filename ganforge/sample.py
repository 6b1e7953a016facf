"""The inference pipeline: a checkpoint in, images out. `ganforge.load(RUN)` is the Python API.

    gan = ganforge.load("runs/digits")
    images = gan.sample(16, labels=7, seed=0)   # uint8 (16, 1, 28, 28), all sevens
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ganforge.checkpoint import atomic_write, load_checkpoint, unprefixed
from ganforge.config import ModelConfig, TrainConfig, validate
from ganforge.data import to_uint8
from ganforge.errors import GanforgeError
from ganforge.images import save_grid, to_pil
from ganforge.nets import build_discriminator, build_generator
from ganforge.rundir import find_checkpoint

MAX_SEED = 2**63 - 1

Labels = int | Sequence[int] | torch.Tensor | None


def load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str, path: Path) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise GanforgeError(f"{path}: the {what} weights do not match its configuration ({first}); "
                            "the checkpoint is damaged or was edited") from None


def checkpoint_config(meta: dict, path: Path) -> TrainConfig:
    """The validated configuration stored in a checkpoint's metadata."""
    try:
        return validate(TrainConfig.from_dict(meta["config"]))
    except (KeyError, TypeError, ValueError, GanforgeError) as e:
        raise GanforgeError(f"{path}: damaged checkpoint metadata ({e}); use a checkpoint written "
                            "by ganforge") from None


def check_weights(model: ModelConfig, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Check that the file holds G, D (and G_ema, if any) with exactly the names, shapes and dtypes
    `model` implies. The networks are built on the meta device, so a damaged or hostile config
    (say, width 4096 at 64x64 RGB) allocates nothing before it is found not to match its weights."""
    with torch.device("meta"):
        nets = {"G": build_generator(model), "D": build_discriminator(model)}
    if any(k.startswith("G_ema.") for k in tensors):
        nets["G_ema"] = nets["G"]
    for prefix, net in nets.items():
        want, got = net.state_dict(), unprefixed(prefix, tensors)
        for name in sorted(set(want) | set(got)):
            w, g = want.get(name), got.get(name)
            if w is None or g is None or w.shape != g.shape or w.dtype != g.dtype:
                found = "missing" if g is None else f"{g.dtype} {tuple(g.shape)}"
                expected = "nothing" if w is None else f"{w.dtype} {tuple(w.shape)}"
                raise GanforgeError(f"{path}: {prefix}.{name} is {found}, but its configuration implies "
                                    f"{expected}; the checkpoint is damaged or was edited")


class GAN:
    """A trained generator (G_ema when the run kept one) and its discriminator, for inference."""

    def __init__(self, generator: torch.nn.Module, discriminator: torch.nn.Module, model: ModelConfig,
                 class_names: list[str], step: int, path: Path, device: torch.device):
        self.generator, self.discriminator = generator.eval(), discriminator.eval()
        self.model, self.class_names, self.step, self.path, self.device = model, class_names, step, path, device

    @classmethod
    def from_checkpoint(cls, path: str | Path, name: str = "last", device: str | torch.device = "cpu") -> GAN:
        ckpt = find_checkpoint(path, name)
        tensors, meta = load_checkpoint(ckpt)
        cfg = checkpoint_config(meta, ckpt)
        try:
            class_names, step = [str(c) for c in meta["class_names"]], int(meta["step"])
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise GanforgeError(f"{ckpt}: damaged checkpoint metadata ({e})") from None
        check_weights(cfg.model, tensors, ckpt)
        device = torch.device(device)
        G, D = build_generator(cfg.model), build_discriminator(cfg.model)
        g_prefix = "G_ema" if any(k.startswith("G_ema.") for k in tensors) else "G"
        load_state(G, unprefixed(g_prefix, tensors), "generator", ckpt)
        load_state(D, unprefixed("D", tensors), "discriminator", ckpt)
        return cls(G.to(device), D.to(device), cfg.model, class_names, step, ckpt, device)

    @property
    def conditional(self) -> bool:
        return self.model.conditional

    def labels_for(self, n: int, labels: Labels) -> torch.Tensor | None:
        """Validate `labels` (None, one class, or n classes) into an int64 tensor (n,) or None."""
        if not self.conditional:
            if labels is not None:
                raise GanforgeError("this model is unconditional: it takes no class labels; "
                                    "leave out --classes")
            return None
        if labels is None:  # spread n evenly over the classes, in contiguous blocks
            return spread(n, list(range(self.model.num_classes)))
        t = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
        if t.numel() == 1:
            t = t.expand(n)
        if t.numel() != n:
            raise GanforgeError(f"got {t.numel()} labels for {n} images; give one label or {n}")
        bad = t[(t < 0) | (t >= self.model.num_classes)]
        if bad.numel():
            raise GanforgeError(f"class {int(bad[0])} is outside this model's classes "
                                f"0..{self.model.num_classes - 1}")
        return t.clone()

    def noise(self, n: int, seed: int | None) -> torch.Tensor:
        """z (n, z_dim) drawn on the CPU, so a seed gives the same noise on every device."""
        gen = torch.Generator()
        if seed is None:
            gen.seed()
        elif not 0 <= seed <= MAX_SEED:
            raise GanforgeError(f"seed must be in 0..{MAX_SEED} (got {seed})")
        else:
            gen.manual_seed(seed)
        return torch.randn(n, self.model.z_dim, generator=gen)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Float images in [-1, 1] (n, C, H, W) for given noise and labels: classes (n,), or
        class weights (n, K) that mix the class embeddings (see `interpolation`)."""
        y = labels.to(self.device) if labels is not None else None
        return self.generator(z.to(self.device), y)

    @torch.no_grad()
    def verdict(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The discriminator's probability that each float image (n, C, H, W) is real."""
        if labels is not None and labels.is_floating_point():
            labels = labels.argmax(dim=1)  # D knows whole classes only: judge a mix as its main class
        y = labels.to(self.device) if labels is not None and self.conditional else None
        logits, _ = self.discriminator(images.to(self.device), y)
        return torch.sigmoid(logits)

    def sample(self, n: int, labels: Labels = None, seed: int | None = None,
               batch_size: int = 1000) -> torch.Tensor:
        """n new images as uint8 (n, C, H, W); the same seed gives the same images."""
        if not isinstance(n, int) or n <= 0:
            raise GanforgeError(f"the number of images must be a positive integer (got {n!r})")
        y = self.labels_for(n, labels)
        z = self.noise(n, seed)
        out = [to_uint8(self.generate(z[i:i + batch_size], None if y is None else y[i:i + batch_size])).cpu()
               for i in range(0, n, batch_size)]
        return torch.cat(out)


def load(path: str | Path, checkpoint: str = "last", device: str | torch.device = "cpu") -> GAN:
    """Load a trained GAN from a run directory or a checkpoint file."""
    return GAN.from_checkpoint(path, checkpoint, device)


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
    for an unconditional model. Feed both to `gan.generate`.
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
    if classes is None:
        raise GanforgeError("this model is conditional: give the classes to interpolate between")
    ends = torch.cat([gan.labels_for(1, c) for c in classes])  # validated, (2,)
    onehot = torch.nn.functional.one_hot(ends, gan.model.num_classes).float()  # (2, K)
    return z, torch.lerp(onehot[0], onehot[1], t[:, None])


def write_images(gan: GAN, n: int, classes: str | None, seed: int, out: Path) -> Path:
    """Generate n images and write them as a grid (.png), arrays (.npz) or one PNG each (dir)."""
    out = Path(out)
    chosen = parse_classes(classes, gan.model.num_classes) if gan.conditional else None
    if classes is not None and not gan.conditional:
        raise GanforgeError("this model is unconditional: it takes no classes; leave out --classes")
    labels = spread(n, chosen if chosen is not None else list(range(gan.model.num_classes))) \
        if gan.conditional else None
    images = gan.sample(n, labels, seed)  # uint8 (n, C, H, W)
    if out.suffix.lower() == ".png":
        per_class = math.ceil(n / len(chosen or range(gan.model.num_classes))) if gan.conditional else 0
        save_grid(out, images, per_class or math.ceil(math.sqrt(n)))
    elif out.suffix.lower() == ".npz":
        arrays = {"images": (images[:, 0] if images.shape[1] == 1 else images).numpy()}
        if labels is not None:
            arrays["labels"] = labels.numpy().astype(np.int64)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write(out, buf.getvalue())
    elif out.suffix:
        raise GanforgeError(f"--out {out}: use a .png file, a .npz file or a directory")
    else:
        out.mkdir(parents=True, exist_ok=True)
        width = len(str(n - 1))
        for i, img in enumerate(images):
            label = int(labels[i]) if labels is not None else 0
            arr = img[0].numpy() if img.shape[0] == 1 else img.numpy().transpose(1, 2, 0)
            to_pil(arr).save(out / f"{label}_{i:0{width}d}.png")
    return out
