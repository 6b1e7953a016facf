"""Fine-tuning (`--init-from RUN|CHECKPOINT`): a new run starts from another run's networks.

G and G_ema both start from the source's generator as `read_model` gives it (its G_ema when it
kept one, else G: the average is the better generator, the one its samples and FID came from,
and what a shared model ships), D from its D; the optimizers start fresh, as does the step count,
because the new data makes the old moments wrong. The new run records `init_from` in its
config.json, and a resume restores its own checkpoint, never the source again.

The data may differ, and so may its classes. Every tensor whose shape follows the number of
classes (G's label embedding, D's projection embedding, ACGAN classifier or label plane) is a
class embedding: it is copied when the class names are the same, in the same order, and keeps
the new run's fresh initialisation otherwise (a learned row belongs to its class), with one
warning line saying so. Everything else must fit exactly, so the architecture (net, width, D's
width, z_dim, latent bits, resolution, channels, conditioning, spectral norm, conditional or not)
must match: a one-line error names the fields that differ and the flags that set them. The one
exception is D's classifier beside a projection (`projection` <-> `projection+classifier`): the
head is added fresh, or left behind, and the rest of D is copied.
"""

from __future__ import annotations

import dataclasses
import logging

import torch
import torch.nn as nn

from ganforge.checkpoint import StoredModel, load_state, read_model
from ganforge.config import PROJECTING, ModelConfig, TrainConfig
from ganforge.errors import GanforgeError
from ganforge.nets import build_discriminator, build_generator
from ganforge.options import flag
from ganforge.training.state import RunState

log = logging.getLogger("ganforge")

# The fields that decide every tensor's shape, besides the number of classes.
ARCHITECTURE = ("net", "width", "d_width", "d_depth", "g_depth", "z_dim", "latent_bits", "img_resolution",
                "img_channels", "conditioning", "spectral_norm")
CLASSES_SHOWN = 6
CLASSIFIER = ("head.classifier.weight", "head.classifier.bias")  # D's classifier head (nets.common)


def class_tensors(model: ModelConfig) -> dict[str, set[str]]:
    """Names of G's and D's state entries whose shape follows the number of classes (found by
    building both nets, on the meta device, with one class more): {"G": {...}, "D": {...}}."""
    if not model.conditional:
        return {"G": set(), "D": set()}
    more = dataclasses.replace(model, num_classes=model.num_classes + 1)
    found = {}
    with torch.device("meta"):
        for name, build in (("G", build_generator), ("D", build_discriminator)):
            a, b = build(model).state_dict(), build(more).state_dict()
            found[name] = {k for k in a if a[k].shape != b[k].shape}
    return found


def read_source(cfg: TrainConfig) -> StoredModel:
    """The run or checkpoint `cfg.init_from` names, checked against `cfg` (resolved: the data has
    set its classes, channels and resolution)."""
    source = read_model(cfg.init_from)
    old, new = source.config.model, cfg.model
    differ = [f for f in ARCHITECTURE if _differs(old, new, f)]
    if old.conditional != new.conditional:
        differ.append("num_classes")
    if differ:
        have = ", ".join(f"{_NAMES.get(f, f)} {_value(old, f)}" for f in differ)
        want = ", ".join(f"{_NAMES.get(f, f)} {_value(new, f)}" for f in differ)
        raise GanforgeError(f"--init-from {cfg.init_from}: its model has {have}, but this run has {want}; "
                            f"fine-tuning keeps the architecture, so give {' '.join(_fix(old, f) for f in differ)}")
    return source


def _differs(old: ModelConfig, new: ModelConfig, field: str) -> bool:
    if field == "conditioning" and {old.conditioning, new.conditioning} <= set(PROJECTING):
        # the projecting conditionings differ only by D's classifier head
        return False
    if field == "d_width":
        # Judged as the run will be once the other fields are fixed (width = the source's): an
        # unset D width follows --width, so it differs only if it would still differ then.
        new = dataclasses.replace(new, width=old.width)
    return _value(old, field) != _value(new, field)


_NAMES = {"img_resolution": "resolution", "img_channels": "channels", "num_classes": "classes"}
# Fields that may be unset (None: the net's own), compared as built.
_BUILT = {"d_width": "discriminator_width", "d_depth": "discriminator_depth", "g_depth": "generator_depth"}


def _value(model: ModelConfig, field: str):
    if field == "num_classes":
        return "conditional" if model.conditional else "unconditional"
    return getattr(model, _BUILT.get(field, field))


def _fix(model: ModelConfig, field: str) -> str:
    """What to type (or which data to use) to get the source's value of `field`."""
    if field == "img_channels":
        return f"data with {model.img_channels} channel{'s' if model.img_channels > 1 else ''}"
    if field == "num_classes":
        return "--conditional" if model.conditional else "--unconditional"
    if field == "spectral_norm":
        return "--spectral-norm" if model.spectral_norm else "--no-spectral-norm"
    return f"{flag(field)} {_value(model, field)}"


def initialise(state: RunState, cfg: TrainConfig, class_names: list[str]) -> None:
    """Load the source's weights (see the module docstring) into the fresh `state` of a new run."""
    source = read_source(cfg)
    empty: dict[str, set[str]] = {"G": set(), "D": set()}
    fresh = empty if source.class_names == list(class_names) else class_tensors(cfg.model)
    if fresh["G"] or fresh["D"]:
        log.warning("--init-from %s: class embeddings re-initialised, because this data's %d classes (%s) "
                    "are not the source's %d (%s); the rest of G and D is copied", cfg.init_from,
                    len(class_names), _shown(class_names), len(source.class_names), _shown(source.class_names))
    g_weights = _merged(state.G, source.generator, fresh["G"])
    own_d = state.D.state_dict()
    d_source = {k: v for k, v in source.discriminator.items() if k in own_d or k not in CLASSIFIER}
    added = {k for k in CLASSIFIER if k in own_d and k not in d_source}
    if added or len(d_source) < len(source.discriminator):
        log.warning("--init-from %s: D's classifier head %s; the rest of D is copied", cfg.init_from,
                    "starts fresh" if added else "is left behind")
    d_weights = _merged(state.D, d_source, fresh["D"] | added)
    for what, net, weights in (("G", state.G, g_weights), ("G_ema", state.G_ema, g_weights), ("D", state.D, d_weights)):
        if net is not None:
            load_state(net, weights, what, source.path)


def _merged(net: nn.Module, source: dict[str, torch.Tensor], fresh: set[str]) -> dict[str, torch.Tensor]:
    """The source's tensors, except the names in `fresh`, which keep `net`'s own values (also
    where the source has none)."""
    own = net.state_dict()
    merged = {k: (own[k] if k in fresh else v) for k, v in source.items()}
    return {**merged, **{k: own[k] for k in fresh if k in own}}


def _shown(names: list[str]) -> str:
    more = f", ... ({len(names) - CLASSES_SHOWN} more)" if len(names) > CLASSES_SHOWN else ""
    return ", ".join(names[:CLASSES_SHOWN]) + more
