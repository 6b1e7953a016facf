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
import math
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
    # save_checkpoint never writes NaN or Inf, so any is damage or an edit; found here, once, it
    # cannot reach generate (black images), evaluate (a meaningless number) or a resumed run.
    bad = next((k for k, v in tensors.items() if v.is_floating_point() and not bool(v.isfinite().all())), None)
    if bad is not None:
        raise GanforgeError(f"{path}: {bad} holds NaN or Inf, which ganforge never saves; the checkpoint is "
                            "damaged or was edited: use another checkpoint (checkpoints/best?) or retrain")
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


# Adam's hyper-parameters, as its state_dict stores them. The numbers come from the file (a
# roll-back lowers lr, and resuming keeps that); each is checked, as a bad one (lr "abc", lr -1,
# beta 1) would fail at the first step or quietly train backwards. The implementation flags say
# how this machine computes (fused, foreach, capturable), so the live optimizer's values win.
ADAM_NUMBERS = ("lr", "betas", "eps", "weight_decay")
ADAM_FLAGS = ("amsgrad", "maximize", "decoupled_weight_decay")  # what Adam computes
ADAM_IMPLEMENTATION = ("foreach", "fused", "capturable", "differentiable")  # how it computes it
MAX_STEP = 10**12  # far beyond any run; bounds what a file may claim


def _number(value: Any, low: float, high: float, low_open: bool, high_open: bool) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and (value > low if low_open else value >= low) and (value < high if high_open else value <= high))


def check_adam_group(group: Any, live: dict, prefix: str, i: int) -> dict:
    """A stored Adam param group, validated, with `live`'s params and implementation flags."""
    where = f"{prefix}.param_groups[{i}]"
    if not isinstance(group, dict):
        raise ValueError(f"{where} is not an object")
    unknown = sorted(set(group) - {"params", *ADAM_NUMBERS, *ADAM_FLAGS, *ADAM_IMPLEMENTATION})
    missing = [k for k in ADAM_NUMBERS if k not in group]
    if unknown or missing:
        raise ValueError(f"{where} has {'unknown' if unknown else 'no'} {(unknown or missing)[0]!r}")
    betas = group["betas"]
    checks = {"lr": _number(group["lr"], 0, 1, True, False),
              "betas": isinstance(betas, (list, tuple)) and len(betas) == 2
              and all(_number(b, 0, 1, False, True) for b in betas),
              "eps": _number(group["eps"], 0, math.inf, True, True),
              "weight_decay": _number(group["weight_decay"], 0, math.inf, False, True)}
    checks.update({k: isinstance(group.get(k, False), bool) for k in ADAM_FLAGS})
    checks.update({k: group.get(k) is None or isinstance(group[k], bool) for k in ADAM_IMPLEMENTATION})
    allowed = {"lr": "a number in (0, 1]", "betas": "two numbers in [0, 1)", "eps": "a number above 0",
               "weight_decay": "a number of at least 0"}
    bad = next((k for k, ok in checks.items() if not ok), None)
    if bad is not None:
        raise ValueError(f"{where}.{bad} is {group.get(bad)!r}, expected {allowed.get(bad, 'true or false')}")
    if group.get("maximize", False):
        raise ValueError(f"{where}.maximize is true: ganforge's optimizers minimise their losses")
    return {**group, "betas": tuple(betas), "params": group["params"],
            **{k: live[k] for k in ADAM_IMPLEMENTATION if k in live}}


def optimizer_from_flat(opt: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor],
                        json_part: dict) -> None:
    """Load what `optimizer_to_flat` wrote into the live Adam `opt`; ValueError if the file does
    not hold exactly Adam's state for these parameters.

    Optimizer.load_state_dict places the state by the parameter ids the file lists, and the fused
    kernel trusts shapes, so ids out of order or repeated would corrupt memory: the ids must be
    exactly 0..n-1 in order, and every state tensor is checked against its parameter after loading."""
    groups = json_part["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(opt.param_groups):
        raise ValueError(f"{prefix} has {len(groups) if isinstance(groups, list) else 'no'} param groups, "
                         f"expected {len(opt.param_groups)}")
    first = 0
    for i, (group, live) in enumerate(zip(groups, opt.param_groups)):
        ids = list(range(first, first + len(live["params"])))
        stored = group.get("params") if isinstance(group, dict) else None
        if not isinstance(stored, list) or [type(x) for x in stored] != [int] * len(ids) or stored != ids:
            raise ValueError(f"{prefix}.param_groups[{i}].params must be the ids {first}..{ids[-1] if ids else first} "
                             "in order")
        first += len(ids)
    groups = [check_adam_group(g, live, prefix, i) for i, (g, live) in enumerate(zip(groups, opt.param_groups))]
    state: dict[int, dict[str, Any]] = {}
    for name, value in unprefixed(prefix, tensors).items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    for name, value in json_part["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    if not set(state) <= set(range(first)):
        raise ValueError(f"{prefix} holds state for parameter {max(state)}; it has {first} parameters")
    amsgrad = [g.get("amsgrad", False) for g, live in zip(groups, opt.param_groups) for _ in live["params"]]
    for idx, values in state.items():  # all of Adam's state or none (not stepped yet): never a part
        want = {"step", *adam_moments(amsgrad[idx])}
        if set(values) != want:
            raise ValueError(f"{prefix}.{idx} holds state {sorted(values)}, expected {sorted(want)}")
    opt.load_state_dict({"state": state, "param_groups": groups})
    check_adam_state(opt, prefix)


def adam_moments(amsgrad: bool) -> list[str]:
    return ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if amsgrad else [])


def check_adam_state(opt: torch.optim.Optimizer, prefix: str) -> None:
    """Every loaded Adam state (its keys checked before loading) is sound: moments of the
    parameter's shape and dtype (second moments non-negative) and a step count >= 0."""
    params = [(p, g.get("amsgrad", False)) for g in opt.param_groups for p in g["params"]]
    for i, (p, amsgrad) in enumerate(params):
        st = opt.state.get(p)
        if not st:
            continue
        for key in adam_moments(amsgrad):
            v = st[key]
            if not isinstance(v, torch.Tensor) or v.shape != p.shape or v.dtype != p.dtype:
                found = f"{v.dtype} {tuple(v.shape)}" if isinstance(v, torch.Tensor) else type(v).__name__
                raise ValueError(f"{prefix}.{i}.{key} is {found}, not {p.dtype} {tuple(p.shape)} like its parameter")
            if key != "exp_avg" and bool((v < 0).any()):
                raise ValueError(f"{prefix}.{i}.{key} holds negative values; a second moment cannot")
        step = st["step"]
        if not (isinstance(step, torch.Tensor) and step.shape == () and step.is_floating_point()
                and 0 <= float(step) <= MAX_STEP):
            raise ValueError(f"{prefix}.{i}.step is {step!r}, expected a float scalar tensor in [0, {MAX_STEP}]")


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
        step, elapsed_s = stored_step(meta), meta["elapsed_s"]
        if not _number(elapsed_s, 0, math.inf, False, True):
            raise ValueError(f"elapsed_s is {elapsed_s!r}, expected seconds >= 0")
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
        class_names, step = [str(c) for c in meta["class_names"]], stored_step(meta)
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise GanforgeError(f"{ckpt}: damaged checkpoint metadata ({e})") from None
    if meta.get("storage") == "float16":  # a slim asset (the pretrained model): computed in float32
        tensors = {k: v.float() if v.dtype == torch.float16 else v for k, v in tensors.items()}
    check_weights(cfg.model, tensors, ckpt)
    g_prefix = "G_ema" if has_ema(tensors) else "G"
    return StoredModel(cfg, class_names, step, unprefixed(g_prefix, tensors), unprefixed("D", tensors), ckpt)


def stored_step(meta: dict) -> int:
    """The checkpoint's step: an integer in [0, MAX_STEP], or ValueError."""
    step = meta["step"]
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step <= MAX_STEP:
        raise ValueError(f"step is {step!r}, expected an integer in [0, {MAX_STEP}]")
    return step


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
