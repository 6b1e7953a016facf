"""Evaluation during training (`--eval-every`): quick metrics of the sampler's images into
metrics.jsonl, the best checkpoint by FID, and the mode-collapse warning."""

from __future__ import annotations

import logging
import math
import time

import torch

from ganforge import dist
from ganforge.config import TrainConfig
from ganforge.generator import GAN
from ganforge.rundir import RunDir
from ganforge.training.health import mode_collapse

log = logging.getLogger("ganforge")

EVAL_SAMPLES = 2000  # enough for FID to rank checkpoints, cheap enough to run every eval_every steps
NOT_DIGITS = ("fashion-mnist", "kmnist")  # 1x28x28 like digits, but the digit features do not fit


class InTrainingEval:
    """Decides once whether evaluation is on (it needs a reference of the training data's kind),
    then scores the sampler's images when asked. Every rank draws its share; rank 0 scores."""

    def __init__(self, cfg: TrainConfig, run: RunDir, num_classes_in_data: int, rank: int, world: int):
        from ganforge.metrics import load_reference

        self.cfg, self.run, self.num_classes_in_data = cfg, run, num_classes_in_data
        self.rank, self.world, self.reference, self.postfix = rank, world, None, {}
        self.last_record: dict | None = None  # the newest evaluation's metrics record (rank 0)
        self.best_fid = min((r["eval"]["fid"] for r in run.read_metrics()
                             if isinstance(r.get("eval"), dict) and "fid" in r["eval"]), default=math.inf)
        if not cfg.eval_every:
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
        best = result["fid"] < self.best_fid
        self.best_fid = min(self.best_fid, result["fid"])
        return time.perf_counter() - start, best
