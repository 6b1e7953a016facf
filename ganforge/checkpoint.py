"""Checkpoints: one safetensors file per checkpoint, tensors plus JSON metadata, written atomically.

Every tensor (G, D, G_ema, optimizer moments, RNG states) is a safetensors entry; everything else
(step, config, optimizer hyper-parameters, class names) is one JSON document stored in the file's
`__metadata__` under the key "ganforge". One file means one atomic rename: a checkpoint is either
the old one or the new one, never half of each. Loading parses only safetensors and JSON, so it
never runs code from the file.

This module is the one place that knows the layout inside the file:

    G.<name>, D.<name>, G_ema.<name>      the networks' state dicts (G_ema only when kept)
    opt_g.<i>.<key>, opt_d.<i>.<key>      optimizer state tensors of parameter i
    rng.noise                             the training noise generator's state
    metadata: format, format_version, ganforge_version, config, class_names, step, elapsed_s,
              opt_g / opt_d (param_groups and scalar state), ada (with --augment ada: p, r_t, signs)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ganforge.config import ModelConfig, TrainConfig, validate
from ganforge.errors import GanforgeError
from ganforge.files import atomic_write
from ganforge.nets import build_discriminator, build_generator
from ganforge.rundir import RunDir, find_checkpoint

FORMAT = "ganforge-checkpoint"
FORMAT_VERSION = 1
META_KEY = "ganforge"
MAX_CHECKPOINT_BYTES = 4 << 30  # refuse to read anything larger: no ganforge model comes close


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
    try:
        size = path.stat().st_size
        if size > MAX_CHECKPOINT_BYTES:
            raise GanforgeError(f"{path} is {size} bytes, too large to be a ganforge checkpoint")
        data = path.read_bytes()
    except OSError as e:
        raise GanforgeError(f"cannot read {path}: {e.strerror or e}; check its permissions") from None
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


# -- the layout: networks, optimizers, RNG -------------------------------------------------------

def training_tensors(nets: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                     noise_gen: torch.Generator) -> tuple[dict[str, torch.Tensor], dict]:
    """Everything training needs to continue, as checkpoint tensors and metadata."""
    tensors, meta = {}, {}
    for name, net in nets.items():
        tensors.update(prefixed(name, net.state_dict()))
    for name, opt in optimizers.items():
        opt_tensors, meta[name] = optimizer_to_flat(name, opt)
        tensors.update(opt_tensors)
    tensors["rng.noise"] = noise_gen.get_state()
    return tensors, meta


def restore_training(tensors: dict[str, torch.Tensor], meta: dict, path: Path, nets: dict[str, nn.Module],
                     optimizers: dict[str, torch.optim.Optimizer], noise_gen: torch.Generator) -> tuple[int, float]:
    """Load what `training_tensors` wrote into live modules; returns (step, elapsed seconds)."""
    for name, net in nets.items():
        load_state(net, unprefixed(name, tensors), name, path)
    try:
        for name, opt in optimizers.items():
            optimizer_from_flat(opt, name, tensors, meta[name])
        noise_gen.set_state(tensors["rng.noise"])
        step, elapsed_s = int(meta["step"]), float(meta["elapsed_s"])
    except (KeyError, ValueError, TypeError, AttributeError, RuntimeError, OverflowError) as e:
        raise GanforgeError(f"{path}: damaged training state ({e}); it cannot be resumed") from None
    return step, elapsed_s


@dataclass
class StoredModel:
    """A checkpoint's networks and facts, validated: what inference needs."""

    config: TrainConfig
    class_names: list[str]
    step: int
    generator: dict[str, torch.Tensor]  # G_ema's state when the run kept one, else G's
    discriminator: dict[str, torch.Tensor]
    path: Path


def read_model(path: str | Path, name: str = "last") -> StoredModel:
    """The generator (G_ema if kept) and discriminator of a run directory or checkpoint file."""
    ckpt = find_checkpoint(path, name)
    tensors, meta = load_checkpoint(ckpt)
    cfg = checkpoint_config(meta, ckpt)
    try:
        class_names, step = [str(c) for c in meta["class_names"]], int(meta["step"])
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise GanforgeError(f"{ckpt}: damaged checkpoint metadata ({e})") from None
    check_weights(cfg.model, tensors, ckpt)
    g_prefix = "G_ema" if has_ema(tensors) else "G"
    return StoredModel(cfg, class_names, step, unprefixed(g_prefix, tensors), unprefixed("D", tensors), ckpt)


def has_ema(tensors: dict[str, torch.Tensor]) -> bool:
    return any(k.startswith("G_ema.") for k in tensors)


def load_state(module: nn.Module, state: dict[str, torch.Tensor], what: str, path: Path) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise GanforgeError(f"{path}: the {what} weights do not match its configuration ({first}); "
                            "the checkpoint is damaged or was edited") from None


def checkpoint_config(meta: dict, path: Path) -> TrainConfig:
    """The validated configuration stored in a checkpoint's metadata."""
    try:
        cfg = validate(TrainConfig.from_dict(meta["config"]))
    except (KeyError, TypeError, ValueError, GanforgeError) as e:
        raise GanforgeError(f"{path}: damaged checkpoint metadata ({e}); use a checkpoint written "
                            "by ganforge") from None
    if cfg.model.num_classes is None:
        raise GanforgeError(f"{path}: damaged checkpoint metadata (num_classes is not set); use a "
                            "checkpoint written by ganforge")
    return cfg


def stored_config(run: str | Path) -> TrainConfig:
    """The configuration a run directory was trained with (from its last checkpoint)."""
    ckpt = RunDir(run).checkpoint()
    return checkpoint_config(load_checkpoint(ckpt)[1], ckpt)


def check_weights(model: ModelConfig, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Check that the file holds G, D (and G_ema, if any) with exactly the names, shapes and dtypes
    `model` implies. The networks are built on the meta device, so a damaged or hostile config
    (say, width 4096 at 64x64 RGB) allocates nothing before it is found not to match its weights."""
    with torch.device("meta"):
        nets = {"G": build_generator(model), "D": build_discriminator(model)}
    if has_ema(tensors):
        nets["G_ema"] = nets["G"]
    for prefix, net in nets.items():
        want, got = net.state_dict(), unprefixed(prefix, tensors)
        for name in sorted(set(want) | set(got)):
            w, g = want.get(name), got.get(name)
            if w is None or g is None or w.shape != g.shape or w.dtype != g.dtype:
                found = "missing" if g is None else f"{g.dtype} {tuple(g.shape)}"
                expected = "nothing" if w is None else f"{w.dtype} {tuple(w.shape)}"
                raise GanforgeError(f"{path}: {prefix}.{name} is {found}, but its configuration implies "
                                    f"{expected}; the checkpoint is damaged or was edited{_old_layout(model)}")


def _old_layout(model: ModelConfig) -> str:
    """The other reason a conv net's weights may not match: before depth followed the resolution,
    dcgan and resnet always took two 2x steps from R/4, which differs from today's nets except at
    16 and 28 px."""
    if model.net == "mlp" or model.img_resolution in (16, 28):
        return ""
    return (f", or it was written by a ganforge whose {model.net} nets at {model.img_resolution} px "
            "had another layout (two blocks from R/4); retrain it with this version")
