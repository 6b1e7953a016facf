"""Image folders: one sub-folder per class (conditional) or a flat folder (unconditional).

Files of any size and mode are centre-cropped to a square, resized to the model's resolution
and converted to grey or RGB once, at load time. A file that cannot be decoded (not an image,
truncated, zero bytes, over `MAX_PIXELS`) is **skipped**, and one warning counts and names the
skipped files, so one bad file in ten thousand does not stop a run; a folder with no usable
image at all is an error.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ganforge.data.dataset import ImageDataset
from ganforge.errors import GanforgeError

log = logging.getLogger("ganforge")

MAX_PIXELS = 64_000_000  # a decompression bomb is refused before its pixels are decoded
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
NAMED_IN_WARNING = 5


def printable(path: Path | str) -> str:
    """A path for a message: a name that is not valid UTF-8 (undecodable bytes, which Python keeps
    as surrogates) shows its bytes escaped, so the message itself can be printed and sent as JSON."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _listing(directory: Path) -> list[Path]:
    try:
        return sorted(directory.iterdir())
    except OSError as e:  # an unreadable sub-folder (PermissionError) is the user's to fix
        raise GanforgeError(f"cannot read {printable(directory)}: {e.strerror or e}; make it readable "
                            "or move it out of the data folder") from None


def _visible_files(directory: Path) -> list[Path]:
    # scandir knows each entry's type without a stat call: listing 10,000 files stays quick.
    try:
        with os.scandir(directory) as it:
            return sorted(Path(e.path) for e in it if e.is_file() and not e.name.startswith("."))
    except OSError as e:  # an unreadable sub-folder (PermissionError) is the user's to fix
        raise GanforgeError(f"cannot read {printable(directory)}: {e.strerror or e}; make it readable "
                            "or move it out of the data folder") from None


def _class_dirs(directory: Path) -> list[Path]:
    """The class sub-folders; their names become class names (in checkpoints, JSON, the page), so
    a name that is not valid UTF-8 is refused here rather than failing later."""
    subdirs = [p for p in _listing(directory) if p.is_dir() and not p.name.startswith(".")]
    for d in subdirs:
        try:
            d.name.encode("utf-8")
        except UnicodeEncodeError:
            raise GanforgeError(f"class folder {printable(d)} has a name that is not valid UTF-8; rename "
                                "it (class names are stored as text)") from None
    return subdirs


def open_image(path: Path) -> Image.Image:
    """Decode `path` fully or raise ValueError saying why."""
    if path.stat().st_size == 0:
        raise ValueError("zero bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ValueError(f"{w}x{h} pixels, over the {MAX_PIXELS:,} limit")
            img.load()
        except ValueError:
            raise
        # PIL signals undecodable input with many exception types (OSError, SyntaxError,
        # struct.error, DecompressionBombError, ...); each means "not a usable image".
        except Exception as e:  # noqa: BLE001
            raise ValueError(str(e) or type(e).__name__) from None
    return img


def _to_array(img: Image.Image, resolution: int, channels: int) -> np.ndarray:
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # Wide-range grey: scale to 0..255 rather than clip, so 16-bit scans stay visible.
        a = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        span = a.max() - a.min()
        a = (a - a.min()) / span * 255 if span > 0 else np.zeros_like(a)
        img = Image.fromarray(a.astype(np.uint8), mode="L")
    try:
        img = img.convert("L" if channels == 1 else "RGB")
    except ValueError:  # a mode PIL cannot convert directly (LAB -> L) goes through RGB
        img = img.convert("RGB").convert("L")
    img = ImageOps.fit(img, (resolution, resolution), method=Image.Resampling.LANCZOS)
    a = np.asarray(img, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def list_files(directory: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names (sub-folder names; none for a flat folder) and every visible file with its
    label, in the order the images are loaded."""
    if not directory.is_dir():
        raise GanforgeError(f"{printable(directory)} is not a directory")
    subdirs = _class_dirs(directory)
    if subdirs:
        return [p.name for p in subdirs], [(f, label) for label, d in enumerate(subdirs) for f in _visible_files(d)]
    return [], [(f, 0) for f in _visible_files(directory)]


def decode(path: Path, resolution: int, channels: int | None) -> np.ndarray:
    """One file as uint8 (C, resolution, resolution), or ValueError/OSError saying why it is not
    a usable image. Grey files become one channel, colour files three (or one if `channels` is 1);
    the caller repeats grey ones to three if any file is in colour, as convert("RGB") would."""
    with open_image(path) as img:  # closes multi-frame files (GIF, TIFF) at once
        grey = channels == 1 or (channels is None and img.mode in GREY_MODES)
        return _to_array(img, resolution, 1 if grey else 3)


def warn_skipped(directory: Path, skipped: list[str], total: int) -> None:
    """One warning naming the files that were not readable images."""
    if skipped:
        shown = "; ".join(skipped[:NAMED_IN_WARNING])
        more = f"; and {len(skipped) - NAMED_IN_WARNING} more" if len(skipped) > NAMED_IN_WARNING else ""
        log.warning("skipped %d of %d files in %s that are not readable images: %s%s",
                    len(skipped), total, printable(directory), shown, more)


def check_classes(directory: Path, class_names: list[str], labels: set[int]) -> None:
    """An error if no file was a readable image, or if a class folder was left with none (it
    would be trained silently on nothing, sampled as noise)."""
    if not labels:
        raise GanforgeError(f"no readable images in {printable(directory)}; put image files there, "
                            "in one sub-folder per class for a conditional model")
    empty = sorted(set(range(len(class_names))) - labels)
    if empty:
        raise GanforgeError(f"class folder {printable(directory / class_names[empty[0]])} holds no readable "
                            f"image{f' (nor do {len(empty) - 1} more)' if len(empty) > 1 else ''}; "
                            "put images in it or remove it")


def load_folder(directory: Path, resolution: int, channels: int | None = None) -> ImageDataset:
    """All images under `directory` as an ImageDataset; see the module docstring for the rules."""
    class_names, files = list_files(directory)
    # Each image is shrunk as soon as it is decoded, so memory holds one full-size image at a time.
    arrays, skipped = [], []
    for path, label in files:
        try:
            arrays.append((decode(path, resolution, channels), label))
        except (ValueError, OSError) as e:
            skipped.append(f"{printable(path.relative_to(directory))} ({e})")
    warn_skipped(directory, skipped, len(files))
    check_classes(directory, class_names, {label for _, label in arrays})
    channels = max(a.shape[0] for a, _ in arrays)
    images = np.stack([np.repeat(a, channels // a.shape[0], axis=0) for a, _ in arrays])
    labels = np.array([label for _, label in arrays], dtype=np.int64)
    return ImageDataset(torch.from_numpy(images), torch.from_numpy(labels), class_names,
                        source=str(directory))
