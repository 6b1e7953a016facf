"""The dataset cache: an image folder is decoded and resized once, then memory-mapped.

Decoding and resizing thousands of PNG/JPEG files takes seconds to minutes on every run and every
resume; the cache keeps the result as raw pixels, so a later load only lists and stats the files
and maps one file. Mapped, not read: the pages are loaded when a batch gathers them, and the
kernel may drop them again, so a data set larger than memory still trains.

    $GANFORGE_DATA/cache/<folder>-<key[:16]>.u8     uint8 images (N, C, R, R), C order, no header
    $GANFORGE_DATA/cache/<folder>-<key[:16]>.json   {"sha256": of the body, "body": {format,
        version, key, source, resolution, channels, shape, class_names, labels, skipped}}

The key is a SHA-256 of the folder's file list (relative names, sizes, mtimes in ns), the
resolution, the requested channels and VERSION (bumped whenever decoding changes). A cache is
used only if its sidecar parses, its checksum and key match, and the pixel file has exactly the
size its shape implies; anything else (a changed folder, a truncated or edited file) is rebuilt,
never trusted. Both files are written to a temporary name and renamed, so a crash leaves the old
entry or none. A rebuild deletes the entries of earlier versions of the same folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import torch

from ganforge.data.dataset import ImageDataset
from ganforge.data.folder import check_classes, decode, list_files, load_folder, printable, warn_skipped
from ganforge.data.mnist import cache_dir
from ganforge.errors import GanforgeError
from ganforge.files import TEMP_SUFFIX, write_json

log = logging.getLogger("ganforge")

FORMAT = "ganforge-dataset-cache"
VERSION = 2  # 2: the sidecar keeps the skipped files, so every load warns about them again
COPY_CHUNK = 4096  # images per step when grey images written so far are repeated to RGB


def cache_root() -> Path:
    return cache_dir() / "cache"


def folder_key(directory: Path, files: list[tuple[Path, int]], resolution: int, channels: int | None) -> str:
    """What the decoded images depend on, hashed: every file's relative name, size and mtime."""
    listing, prefix = [], len(str(directory)) + 1
    for path, _ in files:
        st = os.stat(path)
        listing.append([str(path)[prefix:].replace(os.sep, "/"), st.st_size, st.st_mtime_ns])
    text = json.dumps({"version": VERSION, "resolution": resolution, "channels": channels, "files": listing})
    return hashlib.sha256(text.encode()).hexdigest()


def _paths(entry: Path) -> tuple[Path, Path]:
    return entry.with_name(entry.name + ".json"), entry.with_name(entry.name + ".u8")


def _checksum(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def load_cached(directory: Path, resolution: int, channels: int | None = None) -> ImageDataset:
    """The image folder `directory` as `load_folder` would load it, from the cache when it holds
    this folder as it is now, else decoded into the cache first (see the module docstring)."""
    class_names, files = list_files(directory)
    key = folder_key(directory, files, resolution, channels)
    root = cache_root()
    entry = root / f"{re.sub(r'[^A-Za-z0-9_-]+', '_', directory.resolve().name)[:40]}-{key[:16]}"
    dataset = _read(entry, key, directory)
    if dataset is not None:
        return dataset
    try:
        root.mkdir(parents=True, exist_ok=True)
        writable = os.access(root, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        log.warning("cannot write the dataset cache %s; decoding %s in memory for this run (set "
                    "GANFORGE_DATA to a writable directory to cache it)", root, directory)
        return load_folder(directory, resolution, channels)
    body = {"format": FORMAT, "version": VERSION, "key": key, "source": str(directory.resolve()),
            "resolution": resolution, "channels": channels, "class_names": class_names}
    _build(entry, body, directory, files)
    _drop_superseded(root, body)
    dataset = _read(entry, key, directory)
    if dataset is None:
        raise GanforgeError(f"the dataset cache {entry} could not be read back after writing it; "
                            "check the disk, or set GANFORGE_DATA to another directory")
    return dataset


def _read(entry: Path, key: str, directory: Path) -> ImageDataset | None:
    """The cached data set, or None when the entry is missing, stale or damaged."""
    meta_path, data_path = _paths(entry)
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        body = meta["body"]
        if meta["sha256"] != _checksum(body):
            raise ValueError("its sidecar does not match its checksum")
        if body["format"] != FORMAT or body["version"] != VERSION or body["key"] != key:
            return None  # another folder state or an older ganforge: rebuilt silently
        shape = tuple(int(s) for s in body["shape"])
        size, expected = data_path.stat().st_size, int(np.prod(shape))
        if len(shape) != 4 or size != expected:
            raise ValueError(f"{data_path.name} holds {size} bytes, its shape {shape} needs {expected}")
        labels = torch.tensor(body["labels"], dtype=torch.int64)
        skipped = [str(s) for s in body["skipped"]]
        # Copy-on-write: pages come from the file, and a write to the tensor stays private.
        images = torch.from_numpy(np.memmap(data_path, dtype=np.uint8, mode="c", shape=shape))
        warn_skipped(directory, skipped, len(labels) + len(skipped))  # once the entry is known good
        return ImageDataset(images, labels, [str(c) for c in body["class_names"]], source=str(directory))
    except (OSError, ValueError, KeyError, TypeError, OverflowError, GanforgeError) as e:
        log.warning("the dataset cache %s is damaged (%s); rebuilding it", entry, e)
        return None


def _build(entry: Path, body: dict, directory: Path, files: list[tuple[Path, int]]) -> None:
    """Decode `files` one at a time straight into the pixel file (memory holds one image), then
    write the sidecar. Grey images are repeated to RGB once a colour one turns up, as load_folder
    does, so the result is the same as decoding the whole folder in memory."""
    meta_path, data_path = _paths(entry)
    resolution, channels = body["resolution"], body["channels"]
    c = channels  # None until the first image when the folder decides (grey, or RGB if any is)
    labels, skipped = [], []
    tmp = _temp(entry)
    try:
        out = open(tmp, "wb")
        try:
            for path, label in files:
                try:
                    a = decode(path, resolution, channels)
                except (ValueError, OSError) as e:
                    skipped.append(f"{printable(path.relative_to(directory))} ({e})")
                    continue
                c = c or a.shape[0]
                if a.shape[0] > c:
                    out.close()
                    tmp = _grey_to_rgb(tmp, entry, len(labels), resolution * resolution)
                    out, c = open(tmp, "ab"), 3
                out.write(np.repeat(a, c // a.shape[0], axis=0).tobytes())
                labels.append(label)
            check_classes(directory, body["class_names"], set(labels))  # _read warns about `skipped`
            out.flush()
            os.fsync(out.fileno())
        finally:
            out.close()
        os.replace(tmp, data_path)
    except OSError as e:
        raise GanforgeError(f"cannot write the dataset cache {data_path}: {e.strerror or e}; free some "
                            "disk space or set GANFORGE_DATA to another directory") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    body = {**body, "shape": [len(labels), c, resolution, resolution], "labels": labels, "skipped": skipped}
    write_json(meta_path, {"sha256": _checksum(body), "body": body})


def _temp(entry: Path) -> str:
    fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=f".{entry.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    return tmp


def _grey_to_rgb(tmp: str, entry: Path, n: int, pixels: int) -> str:
    """A new temporary file holding the n grey images of `tmp` with each plane repeated three
    times; `tmp` is removed."""
    new = _temp(entry)
    try:
        grey = np.memmap(tmp, dtype=np.uint8, mode="r", shape=(n, 1, pixels))
        with open(new, "wb") as out:
            for i in range(0, n, COPY_CHUNK):
                out.write(np.repeat(grey[i:i + COPY_CHUNK], 3, axis=1).tobytes())
        del grey
    except BaseException:
        os.unlink(new)
        raise
    os.unlink(tmp)
    return new


def _drop_superseded(root: Path, body: dict) -> None:
    """Delete cache entries of the same folder, resolution and channels under another key: the
    folder has changed since, so they can never be used again."""
    same = ("source", "resolution", "channels")
    for meta_path in root.glob("*.json"):
        try:
            other = json.loads(meta_path.read_text())["body"]
            if other["key"] == body["key"] or any(other[k] != body[k] for k in same):
                continue
        except (OSError, ValueError, KeyError, TypeError):
            continue
        entry = meta_path.with_suffix("")
        for path in _paths(entry):
            path.unlink(missing_ok=True)
