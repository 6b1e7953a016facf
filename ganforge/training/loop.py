"""The training loop: backward passes, optimizer steps, G_ema, and the cadence of logs, sample
grids and checkpoints. `Trainer.train()` trains to the end of the budget (or to Ctrl-C / SIGTERM,
which save a checkpoint first)."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import signal
import time
from pathlib import Path
from typing import Iterator

import torch
from tqdm.auto import tqdm

from ganforge import __version__, dist
from ganforge.checkpoint import check_weights, checkpoint_config, load_checkpoint, save_checkpoint
from ganforge.config import TrainConfig
from ganforge.data.mnist import cache_dir
from ganforge.data.order import BatchOrder
from ganforge.errors import GanforgeError
from ganforge.files import atomic_write, write_json
from ganforge.game import Game
from ganforge.generator import GAN
from ganforge.outputs import grid, save_grid
from ganforge.plots import loss_figure, save_png
from ganforge.points import points_png
from ganforge.rundir import RunDir
from ganforge.training import init_from
from ganforge.training.evaluation import InTrainingEval
from ganforge.training.health import DIVERGENCE_LR_FACTOR, DIVERGENCE_RETRIES, nonfinite
from ganforge.training.signals import Interrupted, StopRequest
from ganforge.training.state import build_state, check_config_file, ema_decay, ema_update, resolve
from ganforge.training.tensorboard import TensorBoardLog

log = logging.getLogger("ganforge")

GRID_COLUMNS = 10
GRID_MAX_ROWS = 20  # the progress grid shows the first 20 classes of a data set with more
SHEET_COLUMNS = 16
# Seeds of the fixed noise, offsets from cfg.seed (cfg.seed itself initialises the weights and
# cfg.seed + 1 the training noise stream; in-training evaluation uses cfg.seed + 4).
GRID_SEED, SHEET_SEED = 2, 3


def total_steps(cfg: TrainConfig, per_epoch: int) -> float:
    """G steps allowed by --steps and --epochs (inf if neither is set; --minutes is checked live)."""
    limits = [math.inf]
    if cfg.steps is not None:
        limits.append(cfg.steps)
    if cfg.epochs is not None:
        limits.append(math.ceil(cfg.epochs * per_epoch / cfg.n_dis))
    return min(limits)


def compiler():
    """torch.compile, with its kernel caches under $GANFORGE_DATA/inductor (default
    ~/.cache/ganforge/inductor) unless TORCHINDUCTOR_CACHE_DIR names another place: torch's own
    default, /tmp/torchinductor_$USER, is emptied at reboot on many systems, and a cold compile
    of the default preset took 27-81 s against 3-5 s with the cache warm (benchmarks/THROUGHPUT.md),
    so the cost should be paid once per machine."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir() / "inductor"))
    return torch.compile


class Trainer:
    """One run: building it from the config only reads (data, the run directory, a checkpoint to
    resume); `train()` writes the run directory and trains to the end. `train` (below) holds the
    run's lock around `train()`, so a second writer is refused before it writes anything."""

    def __init__(self, cfg: TrainConfig, run: str | Path, *, resume: bool = False, progress: bool = True):
        # Data parallel (torchrun): each of `world` ranks takes [rank::world] of every global batch.
        self.rank, self.world = dist.world()
        self.is_main = self.rank == 0
        self.run, self.progress = RunDir(run), progress and self.is_main
        self.device = dist.device_for(cfg.device)
        self.cfg, data = resolve(cfg)
        if self.cfg.batch_size % self.world:
            raise GanforgeError(f"batch_size {self.cfg.batch_size} is the global batch, split over "
                                f"{self.world} processes: make it a multiple of {self.world}")
        self.class_names = data.class_names
        self.data = data.to(self.device)
        self.order = BatchOrder(len(data), self.cfg.batch_size, self.cfg.seed, self.device)
        stored = self._checked_run_dir(resume)
        self.resumed = stored is not None
        self.state = build_state(self.cfg, self.device)
        if stored is not None:
            self.state.restore(*stored, self.run.checkpoint())
        elif self.cfg.init_from is not None:
            init_from.initialise(self.state, self.cfg, self.class_names)
        self.rollbacks, self._begun = 0, False
        # The open log interval: summed stats, their count, and elapsed_s when it began.
        self._sums: dict[str, torch.Tensor] = {}
        self._n_sum, self._log_mark = 0, self.state.elapsed_s
        self._wrap_for_training()
        self.gan = GAN(self.state.sampler, self.state.D, self.cfg.model, self.class_names, device=self.device,
                       config=self.cfg)
        if Path(self.cfg.data).is_dir():  # named by the user who trains on it: the police may read it
            self.gan.rank_among(self.cfg.data)
        self.eval = InTrainingEval(self.cfg, self.run, len(self.class_names), self.rank, self.world)
        self.tensorboard = TensorBoardLog(self.run.tensorboard) if self.cfg.tensorboard and self.is_main else None
        dist.barrier()  # every rank has checked the run directory before rank 0 writes to it

    def _checked_run_dir(self, resume: bool) -> tuple[dict, dict] | None:
        """The stored checkpoint to resume from (checked against this config), or None for a new run."""
        ckpt = self.run.checkpoint()
        if not resume:
            self._check_new_run(name_writer=self.is_main)
            return None
        tensors, meta = load_checkpoint(ckpt)
        stored = checkpoint_config(meta, ckpt)
        check_weights(stored.model, tensors, ckpt)
        if stored.model != self.cfg.model:
            raise GanforgeError(f"{self.run.path} was trained with a different model or data "
                                f"({stored.model} vs {self.cfg.model}); resume it with its own settings")
        if self.is_main:
            check_config_file(self.run, stored)
        return tensors, meta

    def _check_new_run(self, name_writer: bool) -> None:
        """A new run goes into a missing, empty or never-started directory only."""
        if self.run.holds_run():
            if name_writer:
                with self.run.lock():  # a run still training: its lock names the process writing it
                    pass
            raise GanforgeError(f"{self.run.path} already holds a run; continue it with --resume "
                                f"{self.run.path} or choose another --out")
        self.run.refuse_foreign()

    def _wrap_for_training(self) -> None:
        # Steps run G and D through their compiled and DDP wrappers; RunState (checkpoints, G_ema)
        # keeps the originals. The noise stream is shared by all ranks (see Game), so the one
        # state a checkpoint stores resumes any number of ranks.
        cfg, s = self.cfg, self.state
        compiled = compiler() if cfg.compile else (lambda m: m)
        self.G_train, self.D_train = dist.wrap(compiled(s.G), self.device), dist.wrap(compiled(s.D), self.device)
        self.game = Game(self.G_train, self.D_train, cfg, s.noise_gen, self.rank, self.world)
        self.autocast = functools.partial(torch.autocast, self.device.type, dtype=torch.bfloat16,
                                          enabled=dist.uses_bf16(cfg.amp, self.device))
        self.no_autocast = functools.partial(torch.autocast, self.device.type, enabled=False)

    # -- files (rank 0 writes) -------------------------------------------------------------------
    def write_config(self) -> None:
        if self.is_main:
            write_json(self.run.config, {"ganforge_version": __version__, "config": self.cfg.to_dict(),
                                         "class_names": self.class_names})

    def save_checkpoint(self, name: str = "last", **extra) -> None:
        if not self.is_main:
            return
        tensors, meta = self.state.tensors_and_meta()
        meta.update(ganforge_version=__version__, config=self.cfg.to_dict(), class_names=self.class_names, **extra)
        save_checkpoint(self.run.checkpoint(name), tensors, meta)

    def save_samples(self) -> Path:
        """The progress grid: the same noise at every step, one row per class."""
        path = self.run.sample(self.state.step)
        if self.is_main and self.cfg.model.points:  # 2-D points: a scatter plot over the data
            atomic_write(path, points_png(self.gan, self.cfg.seed + GRID_SEED, self.data.points))
        elif self.is_main:
            images = self.gan.class_sheet(GRID_COLUMNS, self.cfg.seed + GRID_SEED, GRID_MAX_ROWS)
            save_grid(path, images, GRID_COLUMNS, scale=2)
            if self.tensorboard:
                self.tensorboard.grid(self.state.step, grid(images, GRID_COLUMNS))
        return path

    def save_final_plots(self) -> None:
        if self.is_main:
            save_png(loss_figure(self.run.read_metrics()), self.run.loss_plot)
            if self.cfg.model.points:
                atomic_write(self.run.class_sheet, points_png(self.gan, self.cfg.seed + SHEET_SEED, self.data.points))
                return
            images = self.gan.class_sheet(SHEET_COLUMNS, self.cfg.seed + SHEET_SEED)
            save_grid(self.run.class_sheet, images, SHEET_COLUMNS, scale=2)

    def evaluate(self) -> float:
        """In-training evaluation (see InTrainingEval); checkpoints/best is the checkpoint with the
        lowest FID. Returns the seconds it took."""
        seconds, best = self.eval(self.gan, self.state.step, self.device)
        if best:
            self.save_checkpoint("best", best_score={self.eval.key: self.eval.best})
        if self.tensorboard and self.eval.last_record:
            self.tensorboard.record(self.eval.last_record)
        return seconds

    # -- the loop --------------------------------------------------------------------------------
    def step(self) -> dict[str, torch.Tensor]:
        """One G update preceded by n_dis D updates; returns detached stats. One autocast context
        (off around backward passes and optimizer steps) spans the step: autocast keeps the bf16
        copy of a weight that requires grad until the context ends, so G's are cast once a step,
        not once per update (benchmarks/THROUGHPUT.md). D's go stale when D updates: a second D
        update clears them, and the G update does not use them (D's weights need no grad there)."""
        s, cfg = self.state, self.cfg
        with self.autocast():
            # (1) Update D: real batch toward "real", detached fakes toward "fake".
            s.D.requires_grad_(True)
            for i in range(cfg.n_dis):
                d_step = s.step * cfg.n_dis + i
                if i:
                    torch.clear_autocast_cache()
                self.sync_augment_p()
                real_img, real_labels = self.data.batch(self.order.indices(d_step, self.rank, self.world))
                loss_d, stats = self.game.d_loss(real_img, real_labels, d_step)
                with self.no_autocast():
                    s.opt_d.zero_grad(set_to_none=True)
                    loss_d.backward()
                    s.opt_d.step()
                if s.ada is not None:
                    s.ada.observe(stats["d_real_sign"], d_step)
            self.sync_augment_p()
            # (2) Update G: make D call fresh fakes real. D is frozen so no weight grads are
            # computed, and no_sync keeps D's DDP from waiting for them.
            s.D.requires_grad_(False)
            with dist.no_sync(self.D_train):
                loss_g, _ = self.game.g_loss(cfg.batch_size // self.world, self.device)
            with self.no_autocast():
                s.opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                s.opt_g.step()
        if s.G_ema is not None:
            ema_update(s.G_ema, s.G, ema_decay(cfg.ema, cfg.ema_rampup, s.step))
        s.step += 1
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), **stats}

    def sync_augment_p(self) -> None:
        """ADA tunes p between D steps (and a restore sets it): the game uses the current value."""
        if self.state.ada is not None:
            self.game.augment_p = self.state.ada.p

    def roll_back(self, what: str) -> None:
        """Divergence remedy (see ganforge.training.health): reload the last checkpoint, scale both
        learning rates by DIVERGENCE_LR_FACTOR; after DIVERGENCE_RETRIES roll-backs, stop."""
        s, ckpt = self.state, self.run.checkpoint()
        at, self.rollbacks = s.step, self.rollbacks + 1
        if self.rollbacks > DIVERGENCE_RETRIES:
            raise GanforgeError(f"training diverged (NaN or Inf in {what} at step {at}) again after "
                                f"{DIVERGENCE_RETRIES} roll-backs with lower learning rates; the last "
                                f"good checkpoint is kept in {ckpt}. Try lower --lr-g/--lr-d, "
                                "--spectral-norm or --loss hinge")
        lrs = [[g["lr"] * DIVERGENCE_LR_FACTOR for g in opt.param_groups] for opt in (s.opt_g, s.opt_d)]
        dist.barrier()  # rank 0's last checkpoint write has finished before anyone reads it
        s.restore(*load_checkpoint(ckpt), ckpt)
        for opt, opt_lrs in zip((s.opt_g, s.opt_d), lrs):
            for g, lr in zip(opt.param_groups, opt_lrs):
                g["lr"] = lr
        if self.is_main:
            self.run.drop_metrics_after(s.step)
            self.run.append_metrics({"step": s.step, "event": "diverged", "nonfinite": what,
                                     "detected_at": at, "lr_g": lrs[0][0], "lr_d": lrs[1][0]})
        log.warning("NaN or Inf in %s at step %d: rolled back to step %d, learning rates now %g (G) "
                    "and %g (D); roll-back %d of %d", what, at, s.step, lrs[0][0], lrs[1][0],
                    self.rollbacks, DIVERGENCE_RETRIES)

    def begin(self) -> None:
        """Before the first step: a run directory always holds a checkpoint (resume and roll-back
        need one) and its config. Idempotent, so `steps()` may be called again and again."""
        if self._begun:
            return
        if self.is_main:
            if not self.resumed:
                self._check_new_run(name_writer=False)  # again, under the lock: no run appeared since
            self.run.make_dirs()
            if self.resumed:  # under the lock, so no other writer's temporary file is removed
                self.run.remove_stale_temps()
                self.run.drop_metrics_after(self.state.step)
        if self.state.step == 0:
            self.save_checkpoint()
        self.write_config()
        self._begun = True

    def iterate(self, stop: StopRequest, limit: float = math.inf) -> Iterator[dict[str, torch.Tensor]]:
        """Train until step `limit` or the end of the budget, keeping the cadence of logs, grids,
        checkpoints and evaluation; yields each step's detached stats. The log interval carries over
        between calls; time spent outside, between yields (a notebook plotting), is not counted."""
        s, cfg = self.state, self.cfg
        limit = min(limit, total_steps(cfg, self.order.per_epoch))
        budget_s = cfg.minutes * 60 if cfg.minutes is not None else math.inf
        bar = tqdm(total=None if math.isinf(limit) else int(limit), initial=s.step, unit="step",
                   disable=not self.progress, dynamic_ncols=True)
        start = time.perf_counter() - s.elapsed_s
        with bar:
            while s.step < limit and not self.stop_agreed(stop, time.perf_counter() - start >= budget_s):
                stats = self.step()
                what = nonfinite({k: stats[k] for k in ("loss_d", "loss_g")}, {"G": s.G, "D": s.D})
                # Every rank must take the same branch, or the others wait in a collective forever.
                if dist.agree_max([float(what is not None)], self.device)[0]:
                    self.roll_back(what or "another rank's step")
                    s.elapsed_s = time.perf_counter() - start
                    self._sums, self._n_sum, self._log_mark, bar.n = {}, 0, s.elapsed_s, s.step
                    continue
                for k, v in stats.items():
                    self._sums[k] = self._sums[k] + v if k in self._sums else v
                self._n_sum += 1
                s.elapsed_s = time.perf_counter() - start
                bar.update(1)
                if s.step % cfg.log_every == 0:
                    record = self.log_record()
                    shown = {k: f"{record[k]:.3g}" for k in ("loss_d", "loss_g", "d_real", "d_fake", "img_per_s")}
                    bar.set_postfix({**shown, **({"p": f"{record['ada_p']:.3f}"} if "ada_p" in record else {}),
                                     **self.eval.postfix}, refresh=False)
                if s.step % cfg.sample_every == 0:
                    self.save_samples()
                if s.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
                if self.eval.due(s.step):
                    self._log_mark += self.evaluate()  # img_per_s measures training, not evaluation
                paused = time.perf_counter()
                yield stats
                start += time.perf_counter() - paused

    def log_record(self) -> dict:
        """The interval's means (over its steps and all ranks) as a metrics.jsonl record; starts
        the next interval."""
        s, cfg = self.state, self.cfg
        means = dist.average(torch.stack([v.float() for v in self._sums.values()])) / self._n_sum
        seconds = max(s.elapsed_s - self._log_mark, 1e-9)
        record = {"step": s.step, "epoch": round(s.step * cfg.n_dis / self.order.per_epoch, 4),
                  "time_s": round(s.elapsed_s, 2), **{k: round(float(v), 5) for k, v in zip(self._sums, means)},
                  "img_per_s": round(self._n_sum * cfg.batch_size * cfg.n_dis / seconds, 1),
                  **(s.ada.log() if s.ada is not None else {})}
        if self.is_main:
            self.run.append_metrics(record)
            if self.tensorboard:
                self.tensorboard.record(record)
        self._sums, self._n_sum, self._log_mark = {}, 0, s.elapsed_s
        return record

    def stop_agreed(self, stop: StopRequest, over_budget: bool) -> bool:
        """Whether to stop before the next step. All ranks agree (any rank's signal or budget
        counts), so they stop at the same step: a rank leaving alone would leave the others
        waiting in a collective."""
        signum, over = dist.agree_max([float(stop.signal or 0), float(over_budget)], self.device)
        if signum and stop.signal is None:
            stop.signal = signal.Signals(int(signum))
        return bool(signum or over)

    def interrupted(self, stop: StopRequest) -> None:
        """After a loop that a signal ended: save, then raise Interrupted saying how to go on."""
        self.save_checkpoint()
        self.close_logs()
        raise Interrupted(f"stopped by {stop.signal.name} at step {self.state.step}; checkpoint saved "
                          f"to {self.run.checkpoint()}; continue with --resume {self.run.path}",
                          stop.signal.value)

    def finish(self) -> Path:
        """The end of a run: the last checkpoint, a sample grid, the loss plot and the per-class
        sheet. Returns the run directory."""
        self.begin()
        self.save_checkpoint()
        self.save_samples()
        self.save_final_plots()
        self.close_logs()
        return self.run.path

    def close_logs(self) -> None:
        if self.tensorboard:
            self.tensorboard.close()

    def train(self) -> Path:
        """Train to the end of the budget; returns the run directory."""
        self.begin()
        with StopRequest().installed() as stop:
            for _ in self.iterate(stop):
                pass
        if stop.signal:
            self.interrupted(stop)
        return self.finish()


def train(cfg: TrainConfig, run: str | Path, *, resume: bool = False, progress: bool = True) -> Path:
    """Train a GAN as configured into the run directory `run`; returns it. Under torchrun, every
    process calls this: they join one data-parallel job and only rank 0 writes files, holding the
    run's lock (RunDir.lock) from before the run directory is checked until the last file is written."""
    device = dist.device_for(cfg.device)
    with dist.process_group(device, cfg.backend):
        trainer = Trainer(cfg, run, resume=resume, progress=progress)
        with writer_lock(RunDir(run), device):
            return trainer.train()


@contextlib.contextmanager
def writer_lock(run: RunDir, device: torch.device):
    """Rank 0 holds `run`'s lock for the life of the job. Every rank learns whether it got it, so
    all stop together: a rank going on alone would wait for the others for ever."""
    with contextlib.ExitStack() as held:
        error = None
        if dist.is_main():
            try:
                held.enter_context(run.lock())
            except GanforgeError as e:
                error = e
        if dist.agree_max([float(error is not None)], device)[0]:
            raise error or GanforgeError(f"rank 0 could not lock {run.path}; see its error")
        yield
