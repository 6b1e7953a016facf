"""A user's settings -> a TrainConfig: the rules that hold however they are given (command-line
flags or `ganforge.train(**options)`), apart from what the configuration is (config.py): option
names and their aliases, a budget replacing the preset's, what may change when resuming."""

from __future__ import annotations

import difflib
from dataclasses import fields
from typing import Any

from ganforge.config import ADA_TARGET, ModelConfig, TrainConfig
from ganforge.errors import GanforgeError

BUDGET = ("steps", "epochs", "minutes")
# What may change when continuing a run: the budget, and how (not what) it computes.
RESUMABLE = frozenset({"device", "backend", "sync_bn", "amp", "compile", "tensorboard", *BUDGET})
# Option names (command-line flags in snake_case) whose config field has another name or meaning.
ALIASES = {"resolution": "img_resolution", "conditional": "num_classes"}


def flag(field_name: str) -> str:
    """The command-line flag that sets a config field (messages name what the user typed)."""
    option = next((alias for alias, name in ALIASES.items() if name == field_name), field_name)
    spelled = "--" + option.replace("_", "-")
    return spelled + "/--unconditional" if option == "conditional" else spelled


def changes_from_options(options: dict[str, Any]) -> dict[str, Any]:
    """Options named like the command-line flags (`lr_g`, `resolution`, `conditional`) -> config
    field changes, so the CLI and `ganforge.train(**options)` speak one language. Field names are
    accepted too; anything else is an error that names the closest option."""
    known = {f.name for cls in (TrainConfig, ModelConfig) for f in fields(cls)} - {"model"}
    changes = {}
    for name, value in options.items():
        field_name = ALIASES.get(name, name)
        if field_name not in known:
            close = difflib.get_close_matches(name, sorted(known | set(ALIASES)), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise GanforgeError(f"unknown option {name!r}; {hint}options are the train command's flags "
                                "in snake_case (lr_g, batch_size, ...)")
        if name == "conditional":  # True: as many classes as the data has; False: unconditional
            if not isinstance(value, bool):
                raise GanforgeError(f"conditional must be True or False (got {value!r})")
            value = None if value else 0
        changes[field_name] = value
    return changes


def override(cfg: TrainConfig, changes: dict[str, Any], *, resuming: bool = False) -> TrainConfig:
    """`cfg` with the settings a user gave (flags or keyword arguments), by the rules that hold
    however they are given: a budget replaces the preset's whole budget; an unconditional model
    takes input conditioning unless told otherwise; lazy R1 needs R1; a resumed run may change
    only RESUMABLE fields."""
    changes = dict(changes)
    if resuming:
        fixed = sorted(set(changes) - RESUMABLE)
        if fixed:
            raise GanforgeError(f"{flag(fixed[0])} cannot change when resuming; only "
                                f"{', '.join(flag(f) for f in sorted(RESUMABLE))} can")
    if changes.get("num_classes") == 0 and "conditioning" not in changes:
        # Projection and ACGAN need labels; an unconditional model's D sees the image alone.
        changes["conditioning"] = "input"
    if any(k in changes for k in BUDGET):
        changes = {**dict.fromkeys(BUDGET), **changes}
    if changes.get("augment") == "ada":
        # --augment ada: p starts at 0 and ADA tunes it toward a target
        changes["augment"] = 0.0
        changes.setdefault("ada_target", ADA_TARGET)
    elif "augment" in changes and "ada_target" not in changes:
        changes["ada_target"] = None  # a fixed probability replaces ADA
    cfg = cfg.replace(**changes)
    if "r1_every" in changes and cfg.r1 == 0:
        raise GanforgeError("--r1-every has no effect without R1; give --r1 GAMMA (e.g. --r1 10) too")
    if "ada_kimg" in changes and cfg.ada_target is None:
        raise GanforgeError("--ada-kimg has no effect without adaptive augmentation; give --augment ada too")
    if "augment_ops" in changes and cfg.augment == 0 and cfg.ada_target is None:
        raise GanforgeError("--augment-ops has no effect without augmentation; give --augment P "
                            "(e.g. --augment 0.2) or --augment ada too")
    return cfg
