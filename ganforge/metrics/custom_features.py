"""A measure for any images: FID, KID, precision/recall and density/coverage on the features of
an extractor the user supplies, against a reference folder of their own images.

The bundled digit classifier sees every image as a digit; for photos, faces or anything else the
user brings a feature file, a network mapping float images (N, C, S, S) with values in [-1, 1]
(the range of G's output) to vectors (N, D):

- TorchScript (`.pt`), loaded with `torch.jit.load`. It may declare its input in an extra file
  `ganforge.json` saved with it: {"input_size": S, "channels": C} (see docs/metrics.md).
- ONNX (`.onnx`), run with onnxruntime (`pip install 'ganforge[export]'`); the input size and
  channels are read from the graph's static input shape.

`--features-size S` gives the size when the file does not declare it (and overrides it).
Images are converted to the declared channels (grey repeated, RGB to luma), resized to S x S by
ganforge (area when shrinking, bilinear when growing, in uint8) and scaled to [-1, 1]. Loading a
TorchScript file does not unpickle arbitrary Python objects, but running it runs the program it
holds: use feature files you trust, as you would any code.

Every printed figure names its features ("FID[digits]", "FID[inception]": the file stem), so a
figure on one extractor is never read as one on another; JSON keys stay `fid`, `kid`, ... beside
a `features` field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ganforge.data import resize, to_float, to_grey
from ganforge.errors import GanforgeError
from ganforge.metrics.reference import MNIST_TEST, Reference, load_images, mean_cov
from ganforge.metrics.registry import METRICS, Embedded, Result, checked_labels

DIGITS = "digits"  # the name of the bundled digit features
# The figures that come from features (the rest, digit_score and class accuracy, come from the
# digit classifier's predictions), and how they are printed.
FEATURE_KEYS = ("fid", "kid", "precision", "recall", "density", "coverage", "per_class_fid")
PRINTED = {"fid": "FID", "kid": "KID", "per_class_fid": "FID"}
FEATURE_METRICS = ("fid", "kid", "precision_recall_density_coverage", "per_class_fid")
META_FILE = "ganforge.json"
TORCHSCRIPT, ONNX = (".pt", ".pth", ".ts"), (".onnx",)
MAX_SIZE = 2048
BATCH = 64  # images per forward pass: an Inception batch of 64 at 299 x 299 needs ~1 GB


def label(key: str, features: str = DIGITS) -> str:
    """How figure `key` is printed: "FID[digits]", "precision[inception]"; others unchanged."""
    return f"{PRINTED.get(key, key)}[{features}]" if key in FEATURE_KEYS else key


@dataclass
class FeatureExtractor:
    """A feature file, loaded: uint8 images in, float32 features (N, D) out."""

    path: Path
    size: int  # S: images are resized to S x S
    channels: int | None  # C the network takes; None: the images' own
    forward: Callable[[torch.Tensor], torch.Tensor]  # float (B, C, S, S) in [-1, 1] -> (B, D)

    @property
    def name(self) -> str:
        return self.path.stem

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = to_channels(images, self.channels)
        out = []
        for i in range(0, len(images), BATCH):
            x = to_float(resize(images[i:i + BATCH], self.size))
            try:
                f = torch.as_tensor(self.forward(x))
            except Exception as e:  # noqa: BLE001 -- the network is foreign code: any failure is its
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise GanforgeError(f"--features {self.path} failed on images of shape {tuple(x.shape)} "
                                    f"({first}); check its input size (--features-size) and channels") from None
            if f.ndim != 2 or len(f) != len(x):
                raise GanforgeError(f"--features {self.path} returned shape {tuple(f.shape)} for {len(x)} images; "
                                    "a feature file must return one vector per image, (N, D)")
            out.append(f.float())
        features = torch.cat(out)
        if not features.isfinite().all():
            raise GanforgeError(f"--features {self.path} returned NaN or Inf features")
        return features


def to_channels(images: torch.Tensor, channels: int | None) -> torch.Tensor:
    """uint8 (N, C, H, W) or (N, H, W) with `channels` channels: grey repeated, RGB to luma."""
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if channels is None or images.shape[1] == channels:
        return images
    return images.expand(-1, 3, -1, -1) if channels == 3 else to_grey(images)


def load_extractor(path: str | Path, size: int | None = None) -> FeatureExtractor:
    """The feature file at `path` (see the module docstring); `size` overrides its input size."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise GanforgeError(f"--features {path}: no such file; give a TorchScript .pt or ONNX .onnx feature file")
    suffix = path.suffix.lower()
    if suffix in TORCHSCRIPT:
        forward, declared = _torchscript(path)
    elif suffix in ONNX:
        forward, declared = _onnx(path)
    else:
        raise GanforgeError(f"--features {path}: expected a TorchScript .pt or an ONNX .onnx file "
                            f"(got {suffix or 'no extension'})")
    size = size if size is not None else declared.get("input_size")
    channels = declared.get("channels")
    if size is None:
        raise GanforgeError(f"--features {path} does not declare its input size; give --features-size S "
                            "(299 for Inception-v3)")
    if not (isinstance(size, int) and not isinstance(size, bool) and 1 <= size <= MAX_SIZE):
        raise GanforgeError(f"the input size of --features {path} must be an integer in [1, {MAX_SIZE}] (got {size!r})")
    if channels not in (None, 1, 3):
        raise GanforgeError(f"--features {path} declares {channels!r} input channels; ganforge gives 1 or 3")
    return FeatureExtractor(path, size, channels, forward)


def _torchscript(path: Path) -> tuple[Callable, dict]:
    extra = {META_FILE: ""}
    try:
        net = torch.jit.load(str(path), map_location="cpu", _extra_files=extra).eval()
        declared = json.loads(extra[META_FILE]) if extra[META_FILE] else {}
    except (RuntimeError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise GanforgeError(f"--features {path} is not a readable TorchScript file ({first}); save one "
                            "with torch.jit.save (docs/metrics.md)") from None
    if not isinstance(declared, dict):
        raise GanforgeError(f"--features {path}: its {META_FILE} must be a JSON object")
    return net, declared


def _onnx(path: Path) -> tuple[Callable, dict]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise GanforgeError("ONNX feature files need onnxruntime: pip install 'ganforge[export]', or "
                            "give a TorchScript .pt file") from None
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 -- onnxruntime raises its own types for unreadable models
        raise GanforgeError(f"--features {path} is not a readable ONNX model ({str(e).splitlines()[0]})") from None
    if not session.get_inputs():
        raise GanforgeError(f"--features {path}: the ONNX model has no input")
    first = session.get_inputs()[0]
    shape = list(first.shape) + [None] * 4
    declared = {"channels": shape[1] if isinstance(shape[1], int) else None,
                "input_size": shape[2] if isinstance(shape[2], int) and shape[2] == shape[3] else None}

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(session.run(None, {first.name: x.numpy()})[0]))

    return forward, declared


def feature_reference(spec: str, extractor: FeatureExtractor, resolution: int, channels: int) -> Reference:
    """The reference images at `spec`, brought to the samples' `resolution` and `channels` (so
    that both take the same path into the network), embedded by `extractor`."""
    if spec == MNIST_TEST:
        raise GanforgeError("--features needs --reference DIR: a folder (or .npz, or IDX files) of real "
                            "images; the bundled mnist-test reference holds digit features only")
    path = Path(spec).expanduser()
    if not path.exists():
        raise GanforgeError(f"--reference {spec}: no such file or directory")
    images, labels = load_images(path, prefer_split="test", resolution=resolution)
    features = extractor(resize(to_channels(images, channels), resolution))
    return Reference(str(path), features, labels, *mean_cov(features), digits=False)


def evaluate_features(images: torch.Tensor, labels: torch.Tensor | None, reference: str,
                      extractor: FeatureExtractor) -> Result:
    """FID, KID, precision/recall, density/coverage (and per-class FID when both sides have labels)
    of uint8 images (N, C, H, W) against `reference`, on `extractor`'s features."""
    labels = checked_labels(images, labels)
    images = to_channels(images.cpu(), None)
    ref = feature_reference(reference, extractor, images.shape[-1], images.shape[1])
    sample = Embedded(extractor(images), None, labels)
    result: Result = {}
    for name in FEATURE_METRICS:
        result.update(METRICS[name](sample, ref))
    return result


def feature_caveats(extractor: FeatureExtractor) -> list[str]:
    return [f"features from {extractor.path} at {extractor.size}x{extractor.size}: these figures compare "
            f"only with figures on the same feature file, input size, resizing and reference; not with "
            "published FIDs unless the extractor and the resizing match theirs exactly (docs/metrics.md)"]
