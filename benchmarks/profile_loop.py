"""Where a training loop's time goes: ganforge's `tutorial` preset through `train()` and the classic
notebook's loop (`notebook_baseline`), the same phases timed the same way, side by side.

    python benchmarks/profile_loop.py [--threads 2] [--seconds 6] [--ops 3] [--data DIR]

Both leave out their first 20 steps (the warm-up), as throughput.py does. Each phase is timed
by wrapping the function that does it (a perf_counter pair per call, a few microseconds against
steps of tens of milliseconds); nothing in ganforge is changed:

    data            ganforge: BatchOrder.indices + ImageDataset.batch; notebook: DataLoader's next()
    D forward       Game.d_loss / the notebook's disc_loss (fakes from G, D on real and fake, loss)
    D backward      Tensor.backward after a D forward;  D optimizer: the optimizer step after it
    G forward, G backward, G optimizer   the same for the G update
    EMA, health check, stop/divergence votes, logging, samples and checkpoints (ganforge only)
    rest of step    what the step does besides the above (zero_grad, requires_grad_, stats)
    rest of loop    the loop around the step (progress bar, loss sums / .item(), clocks)

With --ops S, torch.profiler records S more seconds of ganforge's loop and prints the operators
that took the most CPU time.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.utils.data.dataloader import _BaseDataLoaderIter

sys.path.insert(0, str(Path(__file__).resolve().parent))  # find _common however we are loaded
import _common  # noqa: E402  (puts the repository root first on sys.path)
import notebook_baseline  # noqa: E402

import ganforge.dist  # noqa: E402
import ganforge.training.loop  # noqa: E402
from ganforge.config import preset  # noqa: E402
from ganforge.data import ImageDataset  # noqa: E402
from ganforge.game import Game  # noqa: E402
from ganforge.data.order import BatchOrder  # noqa: E402
from ganforge.rundir import RunDir  # noqa: E402
from ganforge.training import Trainer, train  # noqa: E402

# (owner, attribute, phase): the functions timed. Phase None: "D backward" or "G backward",
# after the forward that came last. "step" and "loop" contain the others.
PATCHES = [
    (BatchOrder, "indices", "data"),
    (ImageDataset, "batch", "data"),
    (_BaseDataLoaderIter, "__next__", "data"),
    (Game, "d_loss", "D forward"),
    (Game, "g_loss", "G forward"),
    (notebook_baseline, "disc_loss", "D forward"),
    (notebook_baseline, "gen_loss", "G forward"),
    (torch.Tensor, "backward", None),
    (ganforge.training.loop, "ema_update", "EMA"),
    (ganforge.training.loop, "nonfinite", "health check"),
    (ganforge.dist, "agree_max", "stop/divergence votes"),
    (RunDir, "append_metrics", "logging"),
    (ganforge.dist, "average", "logging"),
    (Trainer, "save_samples", "samples and checkpoints"),
    (Trainer, "save_checkpoint", "samples and checkpoints"),
    (Trainer, "step", "step"),
    (notebook_baseline, "train_step", "step"),
    (Trainer, "iterate", "loop"),  # the loop alone: not the saves before it and the end-of-run files after
]
SKIP_STEPS = 20  # warm-up steps left out, as in throughput.py
PHASES = ["data", "D forward", "D backward", "D optimizer", "G forward", "G backward", "G optimizer", "EMA",
          "health check", "stop/divergence votes", "logging", "samples and checkpoints"]


class PhaseClock:
    """Seconds per phase, split into time inside a training step and time in the loop around it.
    Only calls while the loop runs count (`in_loop`): ganforge's saves before and after its loop
    are start-up and shut-down, as they are outside `elapsed_s`. The first `skip_steps` steps
    (the warm-up) are left out."""

    def __init__(self, in_loop: bool = False, skip_steps: int = SKIP_STEPS):
        self.inside: dict[str, float] = defaultdict(float)  # phase -> seconds within a step
        self.outside: dict[str, float] = defaultdict(float)  # phase -> seconds in the loop, outside steps
        self.step_s = self.loop_s = 0.0
        self.steps = self.images = 0
        self.in_loop, self.in_step = in_loop, False
        self.update = "D"  # which update the next backward and optimizer step belong to
        self._opt_start = 0.0
        self.skip_steps, self.skipped, self.loop_t0 = skip_steps, 0, None

    def _end_warmup(self) -> None:
        """After `skip_steps` steps: forget everything so far (the warm-up), start the loop clock."""
        self.inside.clear()
        self.outside.clear()
        self.step_s, self.steps, self.images = 0.0, 0, 0
        self.loop_t0 = time.perf_counter()

    def add(self, phase: str, seconds: float) -> None:
        if self.in_loop:
            (self.inside if self.in_step else self.outside)[phase] += seconds

    def wrap(self, fn, phase: str | None):
        if phase == "loop":  # Trainer.iterate is a generator: the loop runs while it is iterated
            @functools.wraps(fn)
            def looped(*args, **kwargs):
                self.in_loop = True
                t = time.perf_counter()
                try:
                    yield from fn(*args, **kwargs)
                finally:
                    self.in_loop = False
                    self.loop_s = time.perf_counter() - (t if self.loop_t0 is None else self.loop_t0)
            return looped

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if phase == "step":
                self.in_step = True
            elif phase in ("D forward", "G forward"):
                self.update = phase[0]
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t
                if phase == "step":
                    self.step_s, self.in_step, self.steps = self.step_s + dt, False, self.steps + 1
                    self.skipped += 1
                    if self.skipped == self.skip_steps:
                        self._end_warmup()
                else:
                    self.add(phase or f"{self.update} backward", dt)
        return timed

    def _opt_pre(self, optimizer, args, kwargs):
        self._opt_start = time.perf_counter()

    def _opt_post(self, optimizer, args, kwargs):
        self.add(f"{self.update} optimizer", time.perf_counter() - self._opt_start)

    @contextlib.contextmanager
    def installed(self):
        saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in PATCHES]
        for owner, attr, phase in PATCHES:
            setattr(owner, attr, self.wrap(getattr(owner, attr), phase))
        hooks = [register_optimizer_step_pre_hook(self._opt_pre), register_optimizer_step_post_hook(self._opt_post)]
        try:
            yield self
        finally:
            for h in hooks:
                h.remove()
            for owner, attr, original in saved:
                setattr(owner, attr, original)

    def row(self) -> dict[str, float]:
        """Seconds per phase, with what the step and the loop spent outside any timed phase."""
        seconds = {p: self.inside.get(p, 0.0) + self.outside.get(p, 0.0) for p in PHASES}
        seconds["rest of step"] = self.step_s - sum(self.inside.values())
        seconds["rest of loop"] = self.loop_s - self.step_s - sum(self.outside.values())
        return seconds


def profile_ganforge(seconds: float, data: str) -> PhaseClock:
    """The tutorial preset through `train()` for `seconds` of loop time, its phases timed."""
    cfg = preset("tutorial").replace(data=data, device="cpu", minutes=seconds / 60, steps=None, epochs=None)
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as devnull:
        with PhaseClock().installed() as clock, contextlib.redirect_stderr(devnull):
            train(cfg, Path(tmp) / "run", progress=True)
    clock.images = clock.steps * cfg.batch_size * cfg.n_dis
    return clock


def profile_notebook(seconds: float, data: str) -> PhaseClock:
    """The notebook's loop for `seconds`, its phases timed; loop time from its images/s (both
    counted from the end of step SKIP_STEPS)."""
    with PhaseClock(in_loop=True).installed() as clock:
        original = notebook_baseline.train_step

        def counted(gen, disc, gen_opt, disc_opt, criterion, real):
            clock.images += len(real)
            return original(gen, disc, gen_opt, disc_opt, criterion, real)

        notebook_baseline.train_step = counted
        rate = notebook_baseline.run_notebook(seconds=seconds, data=data, skip_steps=SKIP_STEPS)
    clock.loop_s = clock.images / rate
    return clock


def table(clocks: dict[str, PhaseClock]) -> list[str]:
    names = list(clocks)
    lines = ["| phase | " + " | ".join(f"{n} ms/step | share" for n in names) + " |",
             "|---|" + "---:|---:|" * len(names)]
    rows = {n: c.row() for n, c in clocks.items()}
    for phase in [*PHASES[:8], "rest of step", *PHASES[8:], "rest of loop"]:
        cells = []
        for n, c in clocks.items():
            v = rows[n][phase]
            cells += ["—", "—"] if v == 0 else [f"{1e3 * v / c.steps:.2f}", f"{100 * v / c.loop_s:.0f}%"]
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    cells = []
    for c in clocks.values():
        cells += [f"**{1e3 * c.loop_s / c.steps:.2f}**", f"{c.images / c.loop_s:,.0f} img/s"]
    lines.append("| **whole loop** | " + " | ".join(cells) + " |")
    return lines


def top_ops(seconds: float, data: str, n: int = 12) -> str:
    """torch.profiler's operators by self CPU time over `seconds` of the tutorial loop."""
    cfg = preset("tutorial").replace(data=data, device="cpu", minutes=seconds / 60, steps=None, epochs=None)
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as devnull:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof, \
                contextlib.redirect_stderr(devnull):
            train(cfg, Path(tmp) / "run", progress=True)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_threads_arg(ap)
    _common.add_data_arg(ap)
    ap.add_argument("--seconds", type=float, default=6.0, help="loop time of each profiled run [default: 6]")
    ap.add_argument("--ops", type=float, default=0.0, help="seconds of torch.profiler operator profile [default: off]")
    args = ap.parse_args()
    threads = _common.set_threads(args.threads)
    print(_common.header_line(_common.machine_header(threads)), flush=True)
    with _common.PressureMeter() as pressure:
        clocks = {"ganforge tutorial": profile_ganforge(args.seconds, args.data),
                  "notebook": profile_notebook(args.seconds, args.data)}
    print(f"CPU pressure during the runs: {pressure.percent:.1f}%" if pressure.percent is not None else "")
    print(f"matmul yardstick after the runs: {_common.row_yardstick(threads):.0f} GFLOP/s")
    print("\n".join(table(clocks)))
    if args.ops:
        print(top_ops(args.ops, args.data))


if __name__ == "__main__":
    main()
