"""The Python API behind `ganforge.train` and `ganforge.Trainer`: the train command's options as
keyword arguments (flags in snake_case: `lr_g=2e-4`, `conditional=False`), by the same rules
(`options.override`), so a notebook or script trains exactly what the command line would.

    run = ganforge.train(data="digits", minutes=2, out="runs/quick")    # a RunDir
    with ganforge.Trainer(data="digits", steps=600, out="runs/nb") as trainer:
        for stats in trainer.steps(100):                               # plot as it trains
            print(stats["step"], stats["loss_d"], stats["d_real"])
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Any, Iterator

from ganforge import dist
from ganforge.checkpoint import stored_config
from ganforge.config import TrainConfig, at_resolution, preset_for
from ganforge.data import is_points
from ganforge.errors import GanforgeError
from ganforge.options import changes_from_options, override
from ganforge.rundir import RunDir
from ganforge.training import loop
from ganforge.training.signals import StopRequest

DEFAULT_PRESET = "default"


def configure(options: dict[str, Any], out: str | Path | None = None, preset_name: str | None = None,
              resume: str | Path | None = None) -> tuple[TrainConfig, Path]:
    """(config, run directory) for a new run of `preset_name` with `options`, or for continuing the
    run `resume` (which keeps its own preset and model: only the budget and how it computes may
    change). The command line and the Python API both come through here."""
    path = (str, os.PathLike)
    for name, value, kinds in (("out", out, path), ("resume", resume, path), ("preset", preset_name, str)):
        if value is not None and not isinstance(value, kinds):
            raise GanforgeError(f"{name} must be {'a name' if kinds is str else 'a path'} (got {value!r})")
    changes = changes_from_options(options)
    if resume is None:
        name = preset_name or DEFAULT_PRESET
        points = is_points(changes.get("data"))  # 2-D points take the toy model (config.preset_for)
        shown = "toy" if points and name == DEFAULT_PRESET else name
        run = Path(out) if out is not None else Path("runs") / f"{shown}-{time.strftime('%Y%m%d-%H%M%S')}"
        cfg = preset_for(name, points)
        if name == DEFAULT_PRESET and not points:  # the default preset follows the side (config.RESOLUTION_DEFAULTS)
            cfg = at_resolution(cfg, changes)
        return override(cfg, changes), run
    if preset_name is not None:
        raise GanforgeError("--preset cannot change when resuming; give only --resume RUN and a budget")
    if out is not None and Path(out).resolve() != Path(resume).resolve():
        raise GanforgeError("--out and --resume name different directories; give only --resume RUN")
    return override(stored_config(resume), changes, resuming=True), Path(resume)


def _options(data: str | Path | None, options: dict[str, Any]) -> dict[str, Any]:
    return {**options, "data": str(data)} if data is not None else options


def train(data: str | Path | None = None, *, out: str | Path | None = None, preset: str | None = None,
          resume: str | Path | None = None, progress: bool = True, **options: Any) -> RunDir:
    """Train to the end of the budget (`steps`, `epochs` or `minutes`; the preset's otherwise) and
    return the run directory as a RunDir (a path-like: `ganforge.load(run)`, `run.read_metrics()`).
    `data`, `out`, `preset` and the options mean what the train command's flags mean; `resume`
    continues a run. Ctrl-C saves a checkpoint and raises `ganforge.training.Interrupted`."""
    cfg, run = configure(_options(data, options), out, preset, resume)
    return RunDir(loop.train(cfg, run, resume=resume is not None, progress=progress))


class Trainer(loop.Trainer):
    """Training a step at a time, for notebooks: `steps(n)` yields plain-float stats after each
    step while logs, sample grids, checkpoints and evaluation keep their cadence; `finish()` (or
    leaving a `with` block) writes the last checkpoint, the loss plot and the per-class sheet."""

    def __init__(self, data: str | Path | None = None, *, out: str | Path | None = None,
                 preset: str | None = None, resume: str | Path | None = None, progress: bool = True,
                 **options: Any):
        cfg, run = configure(_options(data, options), out, preset, resume)
        self._group = contextlib.ExitStack()  # the torchrun job, when launched by one; left in finish()
        self._group.enter_context(dist.process_group(dist.device_for(cfg.device), cfg.backend))
        try:
            super().__init__(cfg, run, resume=resume is not None, progress=progress)
            # Held until finish(), like train(): a second writer is refused while this one lives.
            self._group.enter_context(loop.writer_lock(self.run, self.device))
        except BaseException:
            self._group.close()
            raise
        self._released = False  # finish() or an error in a `with` block gave the lock up: no more writing
        self._finished: RunDir | None = None  # the run, once finish() has written it

    def steps(self, n: int | None = None) -> Iterator[dict[str, float]]:
        """Train n more steps (None: to the end of the budget), yielding after each one
        {"step", "loss_d", "loss_g", "d_real", "d_fake", ...} as Python numbers. Stops early at the
        end of the run's budget; Ctrl-C stops after the current step, saves a checkpoint and
        raises `ganforge.training.Interrupted`."""
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n <= 0):
            raise GanforgeError(f"steps(n) needs a positive whole number of steps (got {n!r})")
        if self._released:
            raise GanforgeError(self._released_message())
        self.begin()
        limit = self.state.step + n if n is not None else math.inf
        with StopRequest().installed() as stop:
            for stats in self.iterate(stop, limit):
                yield {"step": self.state.step, **{k: float(v) for k, v in stats.items()}}
        if stop.signal:
            self.interrupted(stop)

    def finish(self) -> RunDir:
        """Write the last checkpoint, a sample grid, loss.png and classes.png, and release the run;
        returns the run. Again, it only returns the run."""
        if self._released:
            if self._finished is None:
                raise GanforgeError(self._released_message())
            return self._finished
        try:
            self._finished = RunDir(super().finish())
            return self._finished
        finally:
            self._released = True
            self._group.close()

    def _released_message(self) -> str:
        return (f"this Trainer has released {self.run.path} (after finish() or an error); to train on, "
                f"make a new one: ganforge.Trainer(resume={str(self.run.path)!r})")

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # After an error the state may sit between a D and a G update: keep the last checkpoint
        # written at a step boundary rather than saving this one.
        if exc_type is None:
            self.finish()
        elif not self._released:
            self._released = True
            self.close_logs()
            self._group.close()
