"""Evaluation during training (`--eval-every`): quick metrics of the sampler's images into
metrics.jsonl, the best checkpoint by FID, and the mode-collapse warning. A model of 2-D points
is measured by the toy measures instead (modes, high-quality share, mode KL, sliced Wasserstein
distance; best checkpoint by SWD)."""

from __future__ import annotations

import logging
import math
import time

import torch

from ganforge import dist
from ganforge.checkpoint import load_checkpoint
from ganforge.config import TrainConfig
from ganforge.errors import GanforgeError
from ganforge.generator import GAN
from ganforge.rundir import RunDir
from ganforge.training.health import mode_collapse

log = logging.getLogger("ganforge")

EVAL_SAMPLES = 2000  # enough for FID to rank checkpoints, cheap enough to run every eval_every steps
NOT_DIGITS = ("fashion-mnist", "kmnist")  # 1x28x28 like digits, but the digit features do not fit


def best_score(run: RunDir, key: str) -> float:
    """The score of the run's checkpoints/best, which a new best must beat. It is read from the
    checkpoint's own metadata, because a roll-back or a resume drops the metrics records after its
    step (a best checkpoint from before that field: the best score in metrics.jsonl). A damaged
    best checkpoint, or none: inf, so the next evaluation writes one."""
    path = run.checkpoint("best")
    if not path.is_file():
        return math.inf
    try:
        stored = load_checkpoint(path)[1].get("best_score")
    except GanforgeError:
        return math.inf
    if isinstance(stored, dict) and _score(stored.get(key)):
        return float(stored[key])
    return min((float(r["eval"][key]) for r in run.read_metrics()
                if isinstance(r.get("eval"), dict) and _score(r["eval"].get(key))), default=math.inf)


def _score(value) -> bool:
    """FID and SWD are finite and never negative: anything else is damage, not a best score."""
    return RunDir.is_number(value) and math.isfinite(value) and value >= 0


class InTrainingEval:
    """Decides once whether evaluation is on (it needs a reference of the training data's kind),
    then scores the sampler's images when asked. Every rank draws its share; rank 0 scores."""

    def __init__(self, cfg: TrainConfig, run: RunDir, num_classes_in_data: int, rank: int, world: int):
        from ganforge.metrics import load_reference

        self.cfg, self.run, self.num_classes_in_data = cfg, run, num_classes_in_data
        self.rank, self.world, self.reference, self.postfix = rank, world, None, {}
        self.last_record: dict | None = None  # the newest evaluation's metrics record (rank 0)
        self.key = "swd" if cfg.model.points else "fid"  # what picks checkpoints/best (lower is better)
        self.best = math.inf
        if not cfg.eval_every:
            return
        if rank == 0:  # the rank that scores and writes checkpoints/best
            self.best = best_score(run, self.key)
        if cfg.model.points:
            from ganforge.data import load_dataset

            self.reference = load_dataset(cfg.data)  # the PointDataset itself: its points and modes
            return
        m = cfg.model
        digit_shaped = (m.img_channels, m.img_resolution) == (1, 28) and cfg.data not in NOT_DIGITS
        if cfg.eval_reference is None and not digit_shaped:
            log.warning("--eval-every: %s is not MNIST-like digits, so evaluation is off; give "
                        "--eval-reference DIR (images of the same kind) to turn it on", cfg.data)
            return
        self.reference = load_reference(cfg.eval_reference or "mnist-test")

    def due(self, step: int) -> bool:
        return self.reference is not None and step % self.cfg.eval_every == 0

    def __call__(self, gan: GAN, step: int, device: torch.device) -> tuple[float, bool]:
        """Score EVAL_SAMPLES images (fixed noise, classes spread evenly); returns the seconds it
        took and whether the FID is the best so far (rank 0 only; False elsewhere)."""
        from ganforge.metrics import quick_metrics

        if self.cfg.model.points:
            return self._points(gan, step)
        start = time.perf_counter()
        n = EVAL_SAMPLES - EVAL_SAMPLES % self.world
        z, labels = gan.noise(n, self.cfg.seed + 4), gan.labels_for(n, None)
        share = slice(self.rank, None, self.world)
        images = gan.images(z[share], None if labels is None else labels[share])
        images = dist.interleave_gather(images.to(device)).cpu()
        if self.rank != 0:
            return time.perf_counter() - start, False
        result = quick_metrics(images, labels, self.reference)
        result.pop("per_class_accuracy", None)
        if not self.reference.digits:  # class predictions of the digit classifier mean nothing here
            result.pop("classes_covered", None)
            result.pop("class_kl", None)
        self.last_record = {"step": step, "eval": {k: round(v, 5) for k, v in result.items()}}
        self.run.append_metrics(self.last_record)
        self.postfix = {"FID[digits]": f"{result['fid']:.3g}"}  # named for its features (docs/metrics.md)
        warning = mode_collapse({"step": step, **result}, self.num_classes_in_data)
        if warning:
            log.warning(warning)
        best = result["fid"] < self.best
        self.best = min(self.best, result["fid"])
        return time.perf_counter() - start, best

    def _points(self, gan: GAN, step: int) -> tuple[float, bool]:
        """The toy measures of EVAL_SAMPLES points (rank 0 draws them all: they are cheap)."""
        from ganforge.metrics.toy import toy_metrics
        from ganforge.points import sample_points

        start = time.perf_counter()
        if self.rank != 0:
            return time.perf_counter() - start, False
        result = toy_metrics(sample_points(gan, EVAL_SAMPLES, self.cfg.seed + 4), self.reference)
        result.pop("mode_counts", None)
        # Strict JSON has no NaN: a measure that is undefined (mode KL with no sample on a mode,
        # SWD of diverged samples) is written as null.
        self.run.append_metrics({"step": step, "eval": {k: round(v, 5) if math.isfinite(v) else None
                                                        for k, v in result.items()}})
        self.postfix = {k: f"{result[k]:.3g}" for k in ("swd", "modes_covered", "high_quality") if k in result}
        best = result["swd"] < self.best  # NaN is never best
        self.best = min(self.best, result["swd"]) if math.isfinite(result["swd"]) else self.best
        return time.perf_counter() - start, best
