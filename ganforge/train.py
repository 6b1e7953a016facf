"""The training loop: backward passes, optimizer steps, G_ema, and the cadence of logs, sample
grids and checkpoints. `train()` trains to the end of the budget (or to Ctrl-C / SIGTERM, which
save a checkpoint first)."""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from tqdm import tqdm

from ganforge import __version__, dist, rundir
from ganforge.checkpoint import (atomic_write, load_checkpoint, optimizer_from_flat, optimizer_to_flat, prefixed,
                                 remove_stale_temps, save_checkpoint, unprefixed, write_json)
from ganforge.config import TrainConfig, validate
from ganforge.data import ImageDataset, load_dataset, to_uint8
from ganforge.errors import GanforgeError
from ganforge.game import Game
from ganforge.health import DIVERGENCE_LR_FACTOR, DIVERGENCE_RETRIES, mode_collapse, nonfinite
from ganforge.images import line_plot, png_bytes, save_grid
from ganforge.nets import build_discriminator, build_generator
from ganforge.sample import check_weights, checkpoint_config, load_state, spread

log = logging.getLogger("ganforge")

log = logging.getLogger("ganforge")

GRID_COLUMNS = 10
SHEET_COLUMNS = 16
EVAL_SAMPLES = 2000  # enough for FID to rank checkpoints, cheap enough to run every eval_every steps


class Interrupted(Exception):
    """Training stopped by Ctrl-C or SIGTERM after saving a checkpoint."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """The device to train on; under torchrun each process of a node takes GPU LOCAL_RANK."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise GanforgeError("--device cuda asked for, but PyTorch sees no CUDA GPU; use --device cpu")
    if name == "cuda" and local_rank >= torch.cuda.device_count():
        raise GanforgeError(f"LOCAL_RANK {local_rank} but this node has {torch.cuda.device_count()} GPU(s); "
                            "start at most one process per GPU (torchrun --nproc_per_node)")
    return torch.device(name, local_rank) if name == "cuda" else torch.device(name)


def resolve_for_data(cfg: TrainConfig, data: ImageDataset) -> TrainConfig:
    """Fill in what the data decides: number of classes, channels, resolution."""
    if cfg.conditional and data.num_classes < 2:
        raise GanforgeError(f"{data.source} has {data.num_classes} classes, so a conditional model "
                            "cannot be trained on it; add --unconditional, or put the images in one "
                            "sub-folder per class")
    return cfg.replace(num_classes=data.num_classes if cfg.conditional else 0,
                       img_channels=data.img_channels, img_resolution=data.img_resolution)


def resolve(cfg: TrainConfig) -> tuple[TrainConfig, ImageDataset]:
    """Validate `cfg`, load its data and fill in what the data decides."""
    validate(cfg)
    data = load_dataset(cfg.data, resolution=cfg.model.img_resolution)
    return validate(resolve_for_data(cfg, data)), data


class BatchOrder:
    """Which images form real batch number b.

    Epoch e's permutation depends only on (seed, e), so any batch can be found without carried
    state: a resumed run, or any number of data-parallel ranks, see exactly the same order.
    The last incomplete batch of each epoch is dropped.
    """

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device):
        if batch_size > n:
            raise GanforgeError(f"batch_size {batch_size} is larger than the data set ({n} images); "
                                f"use --batch-size {n} or less")
        self.n, self.batch_size, self.seed, self.device = n, batch_size, seed, device
        self.per_epoch = n // batch_size
        self._epoch, self._perm = -1, None

    def indices(self, b: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        epoch, pos = divmod(b, self.per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=gen).to(self.device)
        return self._perm[pos * self.batch_size:(pos + 1) * self.batch_size][rank::world]


def total_steps(cfg: TrainConfig, per_epoch: int) -> float:
    """G steps allowed by --steps and --epochs (inf if neither is set; --minutes is checked live)."""
    limits = [math.inf]
    if cfg.steps is not None:
        limits.append(cfg.steps)
    if cfg.epochs is not None:
        limits.append(math.ceil(cfg.epochs * per_epoch / cfg.n_dis))
    return min(limits)


def make_optimizer(params, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    # The fused kernel updates all tensors in one pass (faster on CPU and GPU); fall back to
    # foreach where a build lacks it (params listed first: a failed try must not use them up).
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)


@torch.no_grad()
def ema_update(G_ema: nn.Module, G: nn.Module, decay: float) -> None:
    """G_ema <- decay * G_ema + (1 - decay) * G for parameters; buffers (BN statistics) copied."""
    ema_params, params = list(G_ema.parameters()), list(G.parameters())
    torch._foreach_lerp_(ema_params, params, 1 - decay)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


@dataclass
class RunState:
    """Everything a checkpoint holds besides the config."""

    G: nn.Module
    D: nn.Module
    G_ema: nn.Module | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    noise_gen: torch.Generator
    step: int = 0
    elapsed_s: float = 0.0

    def tensors_and_meta(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {**prefixed("G", self.G.state_dict()), **prefixed("D", self.D.state_dict())}
        if self.G_ema is not None:
            tensors.update(prefixed("G_ema", self.G_ema.state_dict()))
        opt_g_t, opt_g_json = optimizer_to_flat("opt_g", self.opt_g)
        opt_d_t, opt_d_json = optimizer_to_flat("opt_d", self.opt_d)
        tensors.update(opt_g_t)
        tensors.update(opt_d_t)
        tensors["rng.noise"] = self.noise_gen.get_state()
        return tensors, {"step": self.step, "elapsed_s": self.elapsed_s, "opt_g": opt_g_json, "opt_d": opt_d_json}

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict, path: Path) -> None:
        load_state(self.G, unprefixed("G", tensors), "generator", path)
        load_state(self.D, unprefixed("D", tensors), "discriminator", path)
        if self.G_ema is not None:
            load_state(self.G_ema, unprefixed("G_ema", tensors), "G_ema", path)
        try:
            optimizer_from_flat(self.opt_g, "opt_g", tensors, meta["opt_g"])
            optimizer_from_flat(self.opt_d, "opt_d", tensors, meta["opt_d"])
            self.noise_gen.set_state(tensors["rng.noise"])
            self.step, self.elapsed_s = int(meta["step"]), float(meta["elapsed_s"])
        except (KeyError, ValueError, TypeError, AttributeError, RuntimeError, OverflowError) as e:
            raise GanforgeError(f"{path}: damaged training state ({e}); it cannot be resumed") from None


class Trainer:
    """One run: builds everything from the config, then `train()` trains to the end."""

    def __init__(self, cfg: TrainConfig, run: Path, *, resume: bool = False, progress: bool = True):
        # Data parallel (torchrun): each of `world` ranks takes [rank::world] of every global batch.
        self.rank, self.world = dist.world()
        self.is_main = self.rank == 0
        self.run, self.progress = Path(run), progress and self.is_main
        self.device = resolve_device(cfg.device, dist.env().local_rank)
        self.cfg, data = resolve(cfg)
        cfg = self.cfg
        if cfg.batch_size % self.world:
            raise GanforgeError(f"batch_size {cfg.batch_size} is the global batch, split over {self.world} "
                                f"processes: make it a multiple of {self.world}")
        self.class_names = data.class_names
        self.data = data.to(self.device)
        self.order = BatchOrder(len(data), cfg.batch_size, cfg.seed, self.device)

        ckpt = rundir.checkpoint_path(self.run)
        if resume:
            tensors, meta = load_checkpoint(ckpt)
            stored = checkpoint_config(meta, ckpt)
            check_weights(stored.model, tensors, ckpt)
            if stored.model != cfg.model:
                raise GanforgeError(f"{self.run} was trained with a different model or data "
                                    f"({stored.model} vs {cfg.model}); resume it with its own settings")
        elif rundir.holds_run(self.run):
            raise GanforgeError(f"{self.run} already holds a run; continue it with --resume {self.run} "
                                "or choose another --out")

        torch.manual_seed(cfg.seed)  # weight initialisation
        G, D = build_generator(cfg.model), build_discriminator(cfg.model)
        if cfg.sync_bn:
            G, D = dist.convert_sync_batchnorm(G), dist.convert_sync_batchnorm(D)
        G, D = G.to(self.device), D.to(self.device)
        G_ema = copy.deepcopy(G).eval().requires_grad_(False) if cfg.ema > 0 else None
        self.state = RunState(
            G, D, G_ema,
            make_optimizer(G.parameters(), cfg.lr_g, cfg.betas),
            make_optimizer(D.parameters(), cfg.lr_d, cfg.betas),
            torch.Generator(self.device).manual_seed(cfg.seed + 1))
        if resume:
            self.state.restore(tensors, meta, ckpt)
            if self.is_main:
                for d in (self.run, ckpt.parent, self.run / rundir.SAMPLES):
                    remove_stale_temps(d)
                drop_metrics_after(self.run, self.state.step)
        self.rollbacks = 0
        # Steps run G and D through their compiled and DDP wrappers; RunState (checkpoints, G_ema)
        # keeps the originals. The noise stream is shared by all ranks (see Game), so the one
        # state a checkpoint stores resumes any number of ranks.
        compiled = torch.compile if cfg.compile else (lambda m: m)
        self.G_train, self.D_train = dist.wrap(compiled(G), self.device), dist.wrap(compiled(D), self.device)
        self.game = Game(self.G_train, self.D_train, cfg, self.state.noise_gen, self.rank, self.world)
        self.autocast = functools.partial(torch.autocast, self.device.type, dtype=torch.bfloat16,
                                          enabled=cfg.amp == "bf16")

        # A fixed noise batch shows the same "people" at every step: one row per class.
        fixed_gen = torch.Generator().manual_seed(cfg.seed + 2)
        rows = min(cfg.model.num_classes, 20) if cfg.model.conditional else 8
        n = rows * GRID_COLUMNS
        self.fixed_z = torch.randn(n, cfg.model.z_dim, generator=fixed_gen).to(self.device)
        self.fixed_labels = (spread(n, list(range(rows))).to(self.device) if cfg.model.conditional else None)
        self.setup_eval()
        dist.barrier()  # every rank has checked the run directory before rank 0 writes to it

    # -- files -------------------------------------------------------------------------------
    def write_config(self) -> None:
        if not self.is_main:
            return
        write_json(self.run / rundir.CONFIG, {"ganforge_version": __version__, "config": self.cfg.to_dict(),
                                               "class_names": self.class_names})

    def save_checkpoint(self, name: str = "last") -> None:
        if not self.is_main:
            return
        tensors, meta = self.state.tensors_and_meta()
        meta.update(ganforge_version=__version__, config=self.cfg.to_dict(), class_names=self.class_names)
        save_checkpoint(rundir.checkpoint_path(self.run, name), tensors, meta)

    @property
    def sampler(self) -> nn.Module:
        return self.state.G_ema if self.state.G_ema is not None else self.state.G

    @torch.no_grad()
    def _generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        G = self.sampler
        was_training = G.training
        G.eval()  # BatchNorm uses running statistics and leaves them untouched
        try:
            return to_uint8(G(z, labels))
        finally:
            G.train(was_training)

    def save_samples(self) -> Path:
        path = rundir.sample_path(self.run, self.state.step)
        if not self.is_main:
            return path
        save_grid(path, self._generate(self.fixed_z, self.fixed_labels), GRID_COLUMNS, scale=2)
        return path

    def save_final_plots(self) -> None:
        if not self.is_main:
            return
        atomic_write(self.run / rundir.LOSS_PLOT, png_bytes(loss_plot(read_metrics(self.run))))
        m = self.cfg.model
        gen = torch.Generator().manual_seed(self.cfg.seed + 3)
        rows = m.num_classes if m.conditional else 8
        z = torch.randn(rows * SHEET_COLUMNS, m.z_dim, generator=gen).to(self.device)
        labels = spread(len(z), list(range(rows))).to(self.device) if m.conditional else None
        save_grid(self.run / rundir.CLASS_SHEET, self._generate(z, labels), SHEET_COLUMNS, scale=2)

    # -- evaluation during training ------------------------------------------------------------
    def setup_eval(self) -> None:
        """Pick the reference (the MNIST test digits for 1x28x28 data unless one is given), or warn
        once that evaluation is off; the best FID so far comes from metrics.jsonl (resume)."""
        from ganforge.metrics import load_reference

        m, self.eval_reference, self.eval_postfix = self.cfg.model, None, {}
        self.best_fid = min((r["eval"]["fid"] for r in read_metrics(self.run) if "fid" in r.get("eval", {})),
                            default=math.inf)
        if not self.cfg.eval_every:
            return
        digit_shaped = (m.img_channels, m.img_resolution) == (1, 28) and self.cfg.data not in ("fashion-mnist", "kmnist")
        if self.cfg.eval_reference is None and not digit_shaped:
            log.warning("--eval-every: %s is not MNIST-like digits, so evaluation is off; give "
                        "--eval-reference DIR (images of the same kind) to turn it on", self.cfg.data)
            return
        self.eval_reference = load_reference(self.cfg.eval_reference or "mnist-test")

    def evaluate(self) -> float:
        """Quick metrics of EVAL_SAMPLES images from the sampler (fixed noise, classes spread
        evenly) into metrics.jsonl; checkpoints/best is the checkpoint with the lowest FID.
        Returns the seconds it took."""
        from ganforge.metrics import quick_metrics

        start, m = time.perf_counter(), self.cfg.model
        gen = torch.Generator().manual_seed(self.cfg.seed + 4)
        n = EVAL_SAMPLES - EVAL_SAMPLES % self.world
        z = torch.randn(n, m.z_dim, generator=gen)
        labels = spread(n, list(range(m.num_classes))) if m.conditional else None
        share = slice(self.rank, None, self.world)  # each rank draws its share; rank 0 scores all
        images = self._generate(z[share].to(self.device), None if labels is None else labels[share].to(self.device))
        images = dist.interleave_gather(images).cpu()
        if not self.is_main:
            return time.perf_counter() - start
        result = quick_metrics(images, labels, self.eval_reference)
        result.pop("per_class_accuracy", None)
        append_metrics(self.run, {"step": self.state.step, "eval": {k: round(v, 5) for k, v in result.items()}})
        self.eval_postfix = {"fid": f"{result['fid']:.3g}"}
        warning = mode_collapse({"step": self.state.step, **result}, len(self.class_names))
        if warning:
            log.warning(warning)
        if result["fid"] < self.best_fid:
            self.best_fid = result["fid"]
            self.save_checkpoint("best")
        return time.perf_counter() - start

    # -- the loop ----------------------------------------------------------------------------
    def step(self) -> dict[str, torch.Tensor]:
        """One G update preceded by n_dis D updates; returns detached stats."""
        s, cfg = self.state, self.cfg
        # (1) Update D: real batch toward "real", detached fakes toward "fake".
        s.D.requires_grad_(True)
        for i in range(cfg.n_dis):
            d_step = s.step * cfg.n_dis + i
            real_img, real_labels = self.data.batch(self.order.indices(d_step, self.rank, self.world))
            with self.autocast():
                loss_d, stats = self.game.d_loss(real_img, real_labels, d_step)
            s.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            s.opt_d.step()
        # (2) Update G: make D call fresh fakes real. D is frozen so no weight grads are computed,
        # and no_sync keeps D's DDP from waiting for them.
        s.D.requires_grad_(False)
        with self.autocast(), dist.no_sync(self.D_train):
            loss_g, _ = self.game.g_loss(cfg.batch_size // self.world, self.device)
        s.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        s.opt_g.step()
        if s.G_ema is not None:
            ema_update(s.G_ema, s.G, cfg.ema)
        s.step += 1
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), **stats}

    def roll_back(self, what: str) -> None:
        """Divergence remedy (see ganforge.health): reload the last checkpoint, scale both
        learning rates by DIVERGENCE_LR_FACTOR; after DIVERGENCE_RETRIES roll-backs, stop."""
        s, ckpt = self.state, rundir.checkpoint_path(self.run)
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
        event = {"step": s.step, "event": "diverged", "nonfinite": what, "detected_at": at,
                 "lr_g": lrs[0][0], "lr_d": lrs[1][0]}
        if self.is_main:
            drop_metrics_after(self.run, s.step)
            append_metrics(self.run, event)
        log.warning("NaN or Inf in %s at step %d: rolled back to step %d, learning rates now %g (G) "
                    "and %g (D); roll-back %d of %d", what, at, s.step, lrs[0][0], lrs[1][0],
                    self.rollbacks, DIVERGENCE_RETRIES)

    def run_loop(self, stop: StopRequest) -> None:
        s, cfg = self.state, self.cfg
        limit = total_steps(cfg, self.order.per_epoch)
        budget_s = cfg.minutes * 60 if cfg.minutes is not None else math.inf
        bar = tqdm(total=None if math.isinf(limit) else int(limit), initial=s.step, unit="step",
                   disable=not self.progress, dynamic_ncols=True)
        sums: dict[str, torch.Tensor] = {}
        n_sum, t_last, start = 0, time.perf_counter(), time.perf_counter() - s.elapsed_s
        with bar:
            while s.step < limit and not self.stop_agreed(stop, time.perf_counter() - start >= budget_s):
                stats = self.step()
                what = nonfinite({k: stats[k] for k in ("loss_d", "loss_g")}, {"G": s.G, "D": s.D})
                # Every rank must take the same branch, or the others wait in a collective forever.
                if dist.agree_max([float(what is not None)], self.device)[0]:
                    self.roll_back(what or "another rank's step")
                    sums, n_sum, t_last, bar.n = {}, 0, time.perf_counter(), s.step
                    continue
                for k, v in stats.items():
                    sums[k] = sums[k] + v if k in sums else v
                n_sum += 1
                s.elapsed_s = time.perf_counter() - start
                bar.update(1)
                if s.step % cfg.log_every == 0:
                    now = time.perf_counter()
                    # means over the interval's steps and over all ranks
                    means = dist.average(torch.stack([v.float() for v in sums.values()])) / n_sum
                    record = {"step": s.step, "epoch": round(s.step * cfg.n_dis / self.order.per_epoch, 4),
                              "time_s": round(s.elapsed_s, 2),
                              **{k: round(float(v), 5) for k, v in zip(sums, means)},
                              "img_per_s": round(n_sum * cfg.batch_size * cfg.n_dis / (now - t_last), 1)}
                    if self.is_main:
                        append_metrics(self.run, record)
                    bar.set_postfix({**{k: f"{record[k]:.3g}" for k in ("loss_d", "loss_g", "d_real", "d_fake", "img_per_s")},
                                     **self.eval_postfix}, refresh=False)
                    sums, n_sum, t_last = {}, 0, now
                if s.step % cfg.sample_every == 0:
                    self.save_samples()
                if s.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
                if self.eval_reference is not None and s.step % cfg.eval_every == 0:
                    t_last += self.evaluate()  # img_per_s measures training, not evaluation

    def stop_agreed(self, stop: StopRequest, over_budget: bool) -> bool:
        """Whether to stop before the next step. All ranks agree (any rank's signal or budget
        counts), so they stop at the same step: a rank leaving alone would leave the others
        waiting in a collective."""
        signum, over = dist.agree_max([float(stop.signal or 0), float(over_budget)], self.device)
        if signum and stop.signal is None:
            stop.signal = signal.Signals(int(signum))
        return bool(signum or over)

    def train(self) -> Path:
        if self.state.step == 0:  # a run directory always holds a checkpoint: resume and roll-back need one
            self.save_checkpoint()
        self.write_config()
        with StopRequest().installed() as stop:
            self.run_loop(stop)
        self.save_checkpoint()
        if stop.signal:
            raise Interrupted(f"stopped by {stop.signal.name} at step {self.state.step}; checkpoint saved "
                              f"to {rundir.checkpoint_path(self.run)}; continue with --resume {self.run}",
                              stop.signal.value)
        self.save_samples()
        self.save_final_plots()
        return self.run


class StopRequest:
    """Ctrl-C or SIGTERM ask the loop to stop after the current step (so the checkpoint it then
    writes is a consistent step boundary); a second signal stops at once."""

    def __init__(self):
        self.signal: signal.Signals | None = None

    def _handle(self, signum, frame):
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum)

    @contextlib.contextmanager
    def installed(self):
        try:
            old = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread: leave signals alone
            old = {}
        try:
            yield self
        finally:
            for sig, h in old.items():
                signal.signal(sig, h)


def append_metrics(run: Path, record: dict) -> None:
    path = Path(run) / rundir.METRICS
    try:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as e:  # a full disk or read-only directory: stop with a message, not a traceback
        raise GanforgeError(f"cannot write {path}: {e.strerror or e}; the last checkpoint is intact. "
                            "Free some disk space or make the run directory writable, then --resume") from None


def drop_metrics_after(run: Path, step: int) -> None:
    """Steps logged after `step` will be trained again (resume, roll-back): drop their records."""
    logged = ((r, r.get("step", 0)) for r in read_metrics(run))
    kept = [r for r, s in logged if isinstance(s, (int, float)) and s <= step]
    atomic_write(Path(run) / rundir.METRICS, "".join(json.dumps(r) + "\n" for r in kept).encode())


def loss_plot(records: list[dict]):
    """loss_d and loss_g against step, from metrics.jsonl records (a PIL image)."""
    logs = [r for r in records if "loss_d" in r]
    steps = [r["step"] for r in logs]
    return line_plot({k: (steps, [r[k] for r in logs]) for k in ("loss_d", "loss_g")}, "losses by step")


def read_metrics(run: Path) -> list[dict]:
    """The records of metrics.jsonl; a torn last line (from a crash) or any other line that is
    not a JSON object is ignored."""
    path = Path(run) / rundir.METRICS
    if not path.exists():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def train(cfg: TrainConfig, run: str | Path, *, resume: bool = False, progress: bool = True) -> Path:
    """Train a GAN as configured into the run directory `run`; returns it. Under torchrun, every
    process calls this: they join one data-parallel job and only rank 0 writes files."""
    validate(cfg)
    with dist.process_group(resolve_device(cfg.device, dist.env().local_rank), cfg.backend):
        return Trainer(cfg, Path(run), resume=resume, progress=progress).train()


def stored_config(run: str | Path) -> TrainConfig:
    """The configuration a run directory was trained with (from its last checkpoint)."""
    ckpt = rundir.checkpoint_path(Path(run))
    return checkpoint_config(load_checkpoint(ckpt)[1], ckpt)
