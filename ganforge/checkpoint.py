"""Checkpoints: one safetensors file per checkpoint, tensors plus JSON metadata, written atomically.

Every tensor (G, D, G_ema, optimizer moments, RNG states) is a safetensors entry; everything else
(step, config, optimizer hyper-parameters, class names) is one JSON document stored in the file's
`__metadata__` under the key "ganforge". One file means one atomic rename: a checkpoint is either
the old one or the new one, never half of each. Loading parses only safetensors and JSON, so it
never runs code from the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ganforge.errors import GanforgeError

FORMAT = "ganforge-checkpoint"
FORMAT_VERSION = 1
META_KEY = "ganforge"
MAX_CHECKPOINT_BYTES = 4 << 30  # refuse to read anything larger: no ganforge model comes close


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same directory, fsync and rename.

    On any failure (disk full, read-only directory) the temporary file is removed, the previous
    file at `path` is left untouched, and a GanforgeError says so.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)
    except OSError as e:
        kept = "the previous file is intact" if path.exists() else "nothing was written"
        raise GanforgeError(f"cannot write {path}: {e.strerror or e}; {kept}. "
                            "Free some disk space or choose a writable --out") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def remove_stale_temps(directory: Path) -> None:
    """Delete the temporary files of atomic writes that a crash (SIGKILL, power loss) cut short.
    Only for a directory no other process is writing to (a run being resumed)."""
    if Path(directory).is_dir():
        for tmp in Path(directory).glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write a checkpoint atomically; refuse (GanforgeError) one holding NaN or Inf, so a diverged
    run never replaces the last good checkpoint."""
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    bad = next((k for k, v in tensors.items() if v.is_floating_point() and not v.isfinite().all()), None)
    if bad is not None:
        kept = "the previous checkpoint there is kept" if Path(path).exists() else "nothing was written"
        raise GanforgeError(f"not writing {path}: {bad} holds NaN or Inf (training diverged); {kept}. "
                            "Resume with lower --lr-g/--lr-d")
    atomic_write(path, st_save(tensors, metadata={META_KEY: json.dumps(meta)}))


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of a ganforge checkpoint; a GanforgeError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"no checkpoint at {path}")
    size = path.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise GanforgeError(f"{path} is {size} bytes, too large to be a ganforge checkpoint")
    data = path.read_bytes()
    bad = (f"{path} is not a readable ganforge checkpoint (truncated, damaged or another "
           "format); use a checkpoint written by ganforge")
    if len(data) < 8 or int.from_bytes(data[:8], "little") > len(data) - 8:
        raise GanforgeError(bad)
    try:
        header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
        meta = json.loads(header.get("__metadata__", {}).get(META_KEY, "null"))
        tensors = st_load(data)
    except (SafetensorError, ValueError, TypeError, AttributeError, RecursionError):
        raise GanforgeError(bad) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise GanforgeError(f"{path} is a safetensors file but not a ganforge checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise GanforgeError(f"{path} has checkpoint format version {meta.get('format_version')!r}; "
                            f"this ganforge reads version {FORMAT_VERSION}. Use the ganforge "
                            f"version that wrote it ({meta.get('ganforge_version', 'unknown')})")
    return tensors, meta


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def optimizer_to_flat(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer's state_dict into safetensors entries and a JSON-able remainder."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(opt: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor],
                        json_part: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in unprefixed(prefix, tensors).items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    for name, value in json_part["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    # load_state_dict checks the groups but not the state's shapes: a damaged file would only fail
    # (or worse, broadcast) at the first optimizer step.
    params = [p for g in opt.param_groups for p in g["params"]]
    for idx, values in state.items():
        for key, value in values.items():
            shape = () if key == "step" else (params[idx].shape if 0 <= idx < len(params) else None)
            if isinstance(value, torch.Tensor) and (value.shape != shape or not value.is_floating_point()):
                raise ValueError(f"{prefix}.{idx}.{key} is {value.dtype} {tuple(value.shape)}, not a float "
                                 f"tensor of shape {tuple(shape) if shape is not None else '(none)'}")
    groups = [{**g, **({"betas": tuple(g["betas"])} if "betas" in g else {})} for g in json_part["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})
