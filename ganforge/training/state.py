"""What training carries from step to step — networks, optimizers, the noise stream, the step —
how it is built from a configuration and data, and how it goes into and out of a checkpoint."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ganforge import dist
from ganforge.checkpoint import restore_training, training_tensors
from ganforge.config import TrainConfig, validate
from ganforge.data import ImageDataset, PointDataset, load_dataset
from ganforge.data.order import BatchOrder
from ganforge.errors import GanforgeError
from ganforge.nets import build_discriminator, build_generator
from ganforge.optim import make_optimizer
from ganforge.rundir import RunDir

log = logging.getLogger("ganforge")
from ganforge.training.ada import AdaptiveAugment


def resolve(cfg: TrainConfig) -> tuple[TrainConfig, ImageDataset | PointDataset]:
    """Load `cfg`'s data and fill in what the data decides (classes, channels, resolution);
    returns the validated result and the data. Checks what can be checked without training."""
    data = load_dataset(validate(cfg).data, resolution=cfg.model.img_resolution)
    if isinstance(data, PointDataset) or cfg.model.points:
        return _resolve_points(cfg, data)
    if cfg.model.conditional and data.num_classes < 2:
        raise GanforgeError(f"{data.source} has {data.num_classes} classes, so a conditional model "
                            "cannot be trained on it; add --unconditional, or put the images in one "
                            "sub-folder per class")
    given = cfg.model.num_classes
    if given not in (None, 0) and given != data.num_classes:
        raise GanforgeError(f"num_classes is {given}, but {data.source} has {data.num_classes} classes; a "
                            "new run: leave num_classes out (it follows the data); a resumed run: give it "
                            "the data it was trained on")
    cfg = cfg.replace(num_classes=data.num_classes if cfg.model.conditional else 0,
                      img_channels=data.img_channels, img_resolution=data.img_resolution)
    # Stored as built, so that a later default cannot change the nets a checkpoint was trained with.
    cfg = cfg.replace(d_depth=cfg.model.discriminator_depth, g_depth=cfg.model.generator_depth)
    data = dataclasses.replace(data, mirror=cfg.mirror)
    BatchOrder(len(data), cfg.batch_size, cfg.seed)  # refuses a batch larger than the data
    return validate(cfg), data


def flat(d: dict, prefix: str = "") -> dict:
    """{"model": {"width": 16}} -> {"model.width": 16}."""
    return {k: v for key, value in d.items()
            for k, v in (flat(value, f"{prefix}{key}.").items() if isinstance(value, dict)
                         else [(f"{prefix}{key}", value)])}


def check_config_file(run: RunDir, stored: TrainConfig) -> None:
    """Compare a resumed run's config.json with the configuration in its checkpoint, which is
    what resuming uses (config.json is an output, rewritten from it). An edited model setting
    contradicts the weights: refused. Any other edit is reported in one warning, as it is undone."""
    try:
        written = json.loads(run.config.read_text())["config"]
        edited = flat(written) if isinstance(written, dict) else None
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        edited = None
    if edited is None:
        if run.config.exists():
            log.warning("%s is not a config.json ganforge wrote; it is rewritten from the checkpoint", run.config)
        return
    truth = flat(stored.to_dict())
    differ = sorted(k for k in set(truth) | set(edited) if edited.get(k, truth.get(k)) != truth.get(k)
                    and not (isinstance(truth.get(k), tuple) and list(truth[k]) == edited.get(k)))
    model = [k for k in differ if k.startswith("model.")]
    if model:
        k = model[0]
        raise GanforgeError(f"{run.config} says {k} is {edited.get(k)!r}, but the checkpoint's weights were "
                            f"trained with {truth.get(k)!r}; undo the edit (or delete config.json) to resume")
    if differ:
        log.warning("%s was edited (%s); the checkpoint's stored configuration wins and config.json is "
                    "rewritten from it: change a resumed run's budget or device with flags",
                    run.config, ", ".join(differ))


def _resolve_points(cfg: TrainConfig, data: ImageDataset | PointDataset) -> tuple[TrainConfig, PointDataset]:
    """2-D points go with the toy net and nothing else; they have no classes, so "follow the
    data" (num_classes None) means unconditional."""
    if not isinstance(data, PointDataset):
        raise GanforgeError(f"net 'toy' makes 2-D points, but {data.source} holds images; give "
                            "--data ring8, grid25, spiral, moons or a CSV of x,y points, or another --net")
    if not cfg.model.points:
        raise GanforgeError(f"{data.source} holds 2-D points, which need net 'toy' (not "
                            f"{cfg.model.net!r}); leave out --net, or give --net toy")
    cfg = cfg.replace(num_classes=0, conditioning="input")
    BatchOrder(len(data), cfg.batch_size, cfg.seed)  # refuses a batch larger than the data
    return validate(cfg), data


def ema_decay(decay: float, rampup: float, step: int) -> float:
    """G_ema's decay at `step`: `decay`, or with rampup > 0 less while the run is young, so that
    the average's half-life is at most `rampup` times the steps so far (StyleGAN2-ADA's
    ema_rampup): early G_ema then follows G instead of remembering the first, bad, generators."""
    if rampup <= 0:
        return decay
    return min(decay, 0.5 ** (1 / max(rampup * step, 1e-8)))


@torch.no_grad()
def ema_update(G_ema: nn.Module, G: nn.Module, decay: float) -> None:
    """G_ema <- decay * G_ema + (1 - decay) * G for parameters; buffers (BN statistics) copied."""
    torch._foreach_lerp_(list(G_ema.parameters()), list(G.parameters()), 1 - decay)
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
    ada: AdaptiveAugment | None = None  # with --augment ada

    @property
    def nets(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D, **({"G_ema": self.G_ema} if self.G_ema is not None else {})}

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    @property
    def sampler(self) -> nn.Module:
        """The generator that makes pictures: G_ema when kept, else G."""
        return self.G_ema if self.G_ema is not None else self.G

    def tensors_and_meta(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors, meta = training_tensors(self.nets, self.optimizers, self.noise_gen)
        ada = {"ada": self.ada.state()} if self.ada is not None else {}
        return tensors, {"step": self.step, "elapsed_s": self.elapsed_s, **meta, **ada}

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict, path: Path) -> None:
        self.step, self.elapsed_s = restore_training(tensors, meta, path, self.nets, self.optimizers,
                                                     self.noise_gen)
        if self.ada is not None:
            self.ada.load_state(meta.get("ada"), path)


def build_state(cfg: TrainConfig, device: torch.device) -> RunState:
    """Fresh networks (initialised from cfg.seed), optimizers and noise stream for a resolved cfg."""
    torch.manual_seed(cfg.seed)  # weight initialisation
    G, D = build_generator(cfg.model), build_discriminator(cfg.model)
    if cfg.sync_bn:
        G, D = dist.convert_sync_batchnorm(G), dist.convert_sync_batchnorm(D)
    G, D = G.to(device), D.to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False) if cfg.ema > 0 else None
    return RunState(G, D, G_ema, make_optimizer(G.parameters(), cfg.lr_g, cfg.betas),
                    make_optimizer(D.parameters(), cfg.lr_d, cfg.betas),
                    torch.Generator(device).manual_seed(cfg.seed + 1),
                    ada=AdaptiveAugment(cfg, device) if cfg.ada_target is not None else None)
