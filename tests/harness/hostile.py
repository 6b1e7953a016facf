"""Hostile inputs: planted pickles, broken checkpoints, IDX files and images, shared by the tests and
`scripts/reliability_record.py`."""

from __future__ import annotations
import gzip
import json
import struct
import zlib
from pathlib import Path
import numpy as np
import torch
from PIL import Image
from safetensors.torch import save as st_save
from ganforge.rundir import RunDir
from ganforge.checkpoint import META_KEY, load_checkpoint


class Payload:
    """Unpickling this creates `marker`: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def checkpoint_parts(tiny_run: Path) -> tuple[bytes, dict, dict]:
    data = RunDir(tiny_run).checkpoint().read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    return data, header, json.loads(header["__metadata__"][META_KEY])


def rewrite(tensors: dict, meta: dict) -> bytes:
    return st_save(tensors, metadata={META_KEY: json.dumps(meta)})


def broken_checkpoints(tiny_run: Path) -> dict[str, bytes]:
    data, header, meta = checkpoint_parts(tiny_run)
    tensors, _ = load_checkpoint(RunDir(tiny_run).checkpoint())
    n = int.from_bytes(data[:8], "little")
    config = meta["config"]
    first_g = next(k for k in tensors if k.startswith("G.") and tensors[k].ndim == 2)
    return {
        "zero bytes": b"",
        "7 bytes": data[:7],
        "truncated in the header": data[:8 + n // 2],
        "truncated in the tensors": data[:len(data) // 2],
        "one byte short": data[:-1],
        "header length 2^64-1": b"\xff" * 8 + data[8:],
        "header length past the end": (len(data)).to_bytes(8, "little") + data[8:],
        "header not JSON": data[:8] + b"\x00" * n + data[8 + n:],
        "header a JSON list": rewrite_header(data, [1, 2, 3]),
        "header nested 100000 deep": rewrite_header(data, None, raw=b"[" * 100_000 + b"]" * 100_000),
        "tensor offsets past the data": rewrite_header(data, {**header, first_g: {
            **header[first_g], "data_offsets": [0, 1 << 40]}}),
        "no ganforge metadata": st_save(tensors),
        "metadata not JSON": st_save(tensors, metadata={META_KEY: "{not json"}),
        "another format": rewrite(tensors, {**meta, "format": "other"}),
        "future version": rewrite(tensors, {**meta, "format_version": 99}),
        "no config": rewrite(tensors, {k: v for k, v in meta.items() if k != "config"}),
        "config a string": rewrite(tensors, {**meta, "config": "mlp"}),
        "unknown config field": rewrite(tensors, {**meta, "config": {**config, "evil": 1}}),
        "negative width": rewrite(tensors, {**meta, "config": {**config, "model": {**config["model"], "width": -4}}}),
        "width as text": rewrite(tensors, {**meta, "config": {**config, "model": {**config["model"], "width": "16"}}}),
        "channels as a float": rewrite(tensors, {**meta, "config": {**config, "model": {**config["model"], "img_channels": 1.0}}}),
        "data not a string": rewrite(tensors, {**meta, "config": {**config, "data": None}}),
        "data a list": rewrite(tensors, {**meta, "config": {**config, "data": ["x"]}}),
        # Honest about its shapes, this config would need ~8 GB of weights: refused before allocating.
        "huge network": rewrite(tensors, {**meta, "config": {**config, "model": {
            **config["model"], "width": 4096, "img_resolution": 64, "img_channels": 3}}}),
        "step not a number": rewrite(tensors, {**meta, "step": "many"}),
        "wrong dtype": rewrite({**tensors, first_g: tensors[first_g].to(torch.float64)}, meta),
        "integer weights": rewrite({**tensors, first_g: tensors[first_g].to(torch.int32)}, meta),
        "wrong shape": rewrite({**tensors, first_g: tensors[first_g].reshape(-1)}, meta),
        "missing tensor": rewrite({k: v for k, v in tensors.items() if k != first_g}, meta),
    }


def rewrite_header(data: bytes, header, raw: bytes | None = None) -> bytes:
    n = int.from_bytes(data[:8], "little")
    body = raw if raw is not None else json.dumps(header).encode()
    return len(body).to_bytes(8, "little") + body + data[8 + n:]


def idx_header(ndim: int, shape: tuple[int, ...], code: int = 0x08) -> bytes:
    return bytes([0, 0, code, ndim]) + struct.pack(f">{len(shape)}I", *shape)


def broken_idx() -> dict[str, bytes]:
    body = bytes(5 * 4 * 4)
    return {
        "zero bytes": b"",
        "bad magic": b"\x01\x02\x08\x03" + body,
        "float type": idx_header(3, (5, 4, 4), 0x0D) + body,
        "0 dimensions": idx_header(0, ()) + body,
        "9 dimensions": idx_header(9, (1,) * 9),
        "truncated header": idx_header(3, (5, 4, 4))[:9],
        "truncated body": idx_header(3, (5, 4, 4)) + body[:-1],
        "trailing bytes": idx_header(3, (5, 4, 4)) + body + b"\x00",
        "16 EiB declared": idx_header(3, (2**32 - 1,) * 3) + body,
        "product wraps int64 to 80": idx_header(4, (2**32 - 1, 2**32 - 1, 2**32 - 1, 2**32 - 1)) + body,
        "product wraps int64 to 0": idx_header(3, (65536, 65536, 65536 * 65536 - 1))[:8] + b"\x00\x01\x00\x00"
        + b"\x00\x01\x00\x00" + b"\x00\x01\x00\x00" + body,
        "gzip truncated": gzip.compress(idx_header(3, (5, 4, 4)) + body)[:20],
        "gzip garbage": b"\x1f\x8b" + bytes(range(256)),
    }


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height grey pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(1000)))
            + chunk(b"IEND", b""))


def odd_mode_images(rng: np.random.Generator) -> dict[str, Image.Image]:
    rgb = Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    f = rng.random((40, 30)).astype(np.float32)
    f[0, 0], f[1, 1] = np.nan, np.inf
    return {"1.png": rgb.convert("1"), "L.png": rgb.convert("L"), "LA.png": rgb.convert("LA"),
            "P.png": rgb.convert("P"), "P.gif": rgb.convert("P"), "RGBA.png": rgb.convert("RGBA"),
            "CMYK.jpg": rgb.convert("CMYK"), "CMYK.tif": rgb.convert("CMYK"), "LAB.tif": rgb.convert("LAB"),
            "I16.png": Image.fromarray(rng.integers(0, 65536, (40, 30)).astype(np.uint16)),
            "I.tif": Image.fromarray(rng.integers(-9, 10**6, (40, 30)).astype(np.int32)),
            "F.tif": Image.fromarray(f), "RGB.webp": rgb, "RGB.bmp": rgb}
