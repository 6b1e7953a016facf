"""Typed, frozen run configuration, validated in one place, and the named presets.

A run is described by a `TrainConfig` holding a `ModelConfig`. The model config is everything
needed to rebuild the networks from a checkpoint alone; the train config adds the game and the
loop. Both serialise to plain JSON (`to_dict` / `from_dict`) for `config.json` and checkpoints.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any

from ganforge.errors import GanforgeError

IMAGE_NETS = ("mlp", "dcgan", "resnet")
NETS = (*IMAGE_NETS, "toy")  # toy: the pair for 2-D points (nets/toy.py)
LOSSES = ("minimax", "bce", "lsgan", "hinge", "wgan-gp")
CONDITIONINGS = ("input", "projection", "acgan", "projection+classifier")
# The conditionings whose D head has a projection term, and those whose D head has a classifier.
PROJECTING, CLASSIFYING = ("projection", "projection+classifier"), ("acgan", "projection+classifier")
DEVICES = ("auto", "cpu", "cuda", "mps")  # mps: Apple GPUs
BACKENDS = ("auto", "gloo", "nccl")  # torch.distributed backend under torchrun; auto: nccl on CUDA
AMPS = ("auto", "off", "bf16")  # auto: bf16 where the device computes it natively (dist.native_bf16)
# Sides the convolutional nets take: one up/down block per octave from a 4x4 map, or from 7x7 for
# the 28 px digit nets. The MLP takes any multiple of 4 up to MAX_RESOLUTION.
CONV_RESOLUTIONS = (8, 16, 28, 32, 64, 128)
MAX_RESOLUTION = 128
# DiffAugment's ops, in the order they are applied (colour, then geometry).
AUGMENT_OPS = ("brightness", "saturation", "contrast", "translation", "cutout")
DEFAULT_AUGMENT_OPS = ("translation", "cutout")
# One 3x3 convolution after each of the 28 px dcgan D's strided ones and after each of its G's inner
# transposed ones: each lifted precision and recall together, at equal steps and at equal minutes
# (docs/tuning.md, "a deeper D", "a deeper G"). The other sides keep the classic pair they were
# measured with (ModelConfig.discriminator_depth, generator_depth).
DCGAN_D_DEPTH = DCGAN_G_DEPTH = 1
MAX_DEPTH = 4  # stride-1 convolutions per stage, in G or D
ADA_TARGET = 0.6  # --augment ada's target for r_t = E[sign(D(real))] (Karras et al. 2020)


@dataclass(frozen=True)
class ModelConfig:
    """The pair of networks; enough to rebuild G and D from a checkpoint."""

    net: str = "dcgan"
    z_dim: int = 64
    # N > 0: G also sees the signs of z's first N entries, a step it can use to split its images
    # into 2^N separate groups (data in separate pieces, see nets.common.LabelJoin).
    latent_bits: int = 0
    width: int = 32  # mlp, toy: hidden unit h; conv nets: base channel count
    d_width: int | None = None  # D's width when it differs from G's (None: `width`)
    # Stride-1 3x3 convolutions after each of the dcgan D's strided ones and G's inner transposed ones
    # (None: the DCGAN_*_DEPTH for the 28 px dcgan, 0 elsewhere; the other nets have no such layers).
    d_depth: int | None = None
    g_depth: int | None = None
    # None: conditional, with as many classes as the data has (filled in when it is loaded);
    # 0: unconditional. A stored (resolved) configuration always holds a number.
    num_classes: int | None = None
    img_channels: int = 1  # images only: the toy net makes 2-D points and keeps these defaults
    img_resolution: int = 28
    # How y enters D (G always joins an embedding of y to z). Unconditional models take "input":
    # with no label to join, D's input is the image alone.
    conditioning: str = "projection"
    spectral_norm: bool = False

    @property
    def conditional(self) -> bool:
        return self.num_classes != 0

    @property
    def discriminator_width(self) -> int:
        """D's width: d_width when given, else G's."""
        return self.width if self.d_width is None else self.d_width

    @property
    def discriminator_depth(self) -> int:
        """The dcgan D's stride-1 convolutions per stage: d_depth when given, else DCGAN_D_DEPTH for
        the 28 px digit net, where it was measured, and 0 elsewhere."""
        return self._depth(self.d_depth, DCGAN_D_DEPTH)

    @property
    def generator_depth(self) -> int:
        """The same for the dcgan G's inner stages (g_depth, DCGAN_G_DEPTH)."""
        return self._depth(self.g_depth, DCGAN_G_DEPTH)

    def _depth(self, given: int | None, digit_default: int) -> int:
        digits = self.net == "dcgan" and self.img_resolution == 28
        return given if given is not None else digit_default if digits else 0

    @property
    def points(self) -> bool:
        """Whether the model makes 2-D points (the toy net) rather than images."""
        return self.net == "toy"


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run: data, model, game and loop cadence. The defaults are the `default`
    preset (see PRESETS)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: str = "digits"  # bundled digits, a named MNIST-family set, or a directory
    # Fine-tuning: start from this run's (or checkpoint file's) G, D and G_ema, with fresh
    # optimizers (ganforge.training.init_from); None trains from a random initialisation.
    init_from: str | None = None
    loss: str = "hinge"
    batch_size: int = 32
    lr_g: float = 4e-4
    lr_d: float = 4e-4
    betas: tuple[float, float] = (0.5, 0.999)
    n_dis: int = 1  # D updates per G update
    ema: float = 0.995  # decay of G_ema; 0 turns it off
    ema_rampup: float = 0.05  # > 0: G_ema's half-life at most this share of the steps so far
    r1: float = 0.0  # R1 penalty weight gamma; 0 turns it off
    r1_every: int = 16  # lazy regularisation: R1 on every r1_every-th D step (StyleGAN2)
    diversity: float = 0.1  # weight of MSGAN's mode-seeking term in G's loss (losses.mode_seeking)
    augment: float = 0.0  # probability of each DiffAugment op on real and fake images
    seed: int = 0
    device: str = "auto"
    # Scaling (see docs/scaling.md): data-parallel under torchrun, mixed precision, compilation.
    backend: str = "auto"
    sync_bn: bool = False  # BatchNorm statistics over the global batch rather than each rank's
    # bf16 autocast of the forward passes: "auto" turns it on where the device has bf16 arithmetic
    # (recent x86 CPUs, Ampere+ GPUs): the default took 1.5x more steps per second on such a CPU with
    # the same quality per step (docs/tuning.md, round two).
    amp: str = "auto"
    compile: bool = False  # torch.compile G and D for training (checkpoints hold the originals)
    # Budget: training stops at whichever is reached first; at least one must be set.
    steps: int | None = None
    epochs: float | None = None
    minutes: float | None = 10.0
    log_every: int = 100
    sample_every: int = 500
    checkpoint_every: int = 1000
    eval_every: int = 2000  # 0 = no evaluation during training
    eval_reference: str | None = None  # None: the bundled MNIST test features for 1x28x28 data
    tensorboard: bool = False  # also log scalars and sample grids to RUN/tensorboard (rank 0)
    # Small data: x-flipped copies double the data (data.ImageDataset.mirror); which DiffAugment ops
    # `augment` applies; adaptive augmentation (training.ada): with ada_target set, p starts at 0
    # and moves by up to 1 per ada_kimg thousand images, every ada_interval D steps, toward
    # E[sign(D(real))] = ada_target.
    mirror: bool = False
    augment_ops: tuple[str, ...] = DEFAULT_AUGMENT_OPS
    ada_target: float | None = None  # None: off
    ada_interval: int = 4
    ada_kimg: float = 500.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Rebuild from JSON; unknown keys are an error so typos and foreign files fail early."""
        d = dict(d)
        # Files from ganforge 0.1.0 also stored "conditional"; num_classes says the same.
        d.pop("conditional", None)
        # Files from before ema_rampup existed ran without it; its default is no longer 0.
        d.setdefault("ema_rampup", 0.0)
        # Files from before d_depth and g_depth existed hold a dcgan pair without stride-1 convolutions.
        model = _dataclass_from_dict(ModelConfig, {"d_depth": 0, "g_depth": 0, **d.pop("model", {})})
        if "betas" in d and d["betas"] is not None:
            d["betas"] = tuple(d["betas"])
        if isinstance(d.get("augment_ops"), list):
            d["augment_ops"] = tuple(d["augment_ops"])
        return _dataclass_from_dict(cls, {**d, "model": model})

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes`; keys of ModelConfig go to the model."""
        model_keys = {f.name for f in fields(ModelConfig)}
        model_changes = {k: changes.pop(k) for k in list(changes) if k in model_keys}
        model = dataclasses.replace(self.model, **model_changes)
        return dataclasses.replace(self, model=model, **changes)


def _dataclass_from_dict(cls, d: dict[str, Any]):
    if not isinstance(d, dict):
        raise GanforgeError(f"{cls.__name__} must be a JSON object, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise GanforgeError(f"unknown {cls.__name__} field(s) {', '.join(unknown)}; "
                            f"known fields are {', '.join(sorted(known))}")
    return cls(**d)


# Presets are data: a preset is a set of overrides of the defaults above.
PRESETS: dict[str, dict[str, Any]] = {
    # The classic notebook set-up (MLP GAN on MNIST, e.g. the GAN specialisation's week 1):
    # unconditional MLP with h = 128, z_dim 64, batch 128, Adam lr 1e-5 with default betas, BCE.
    "tutorial": dict(net="mlp", width=128, z_dim=64, num_classes=0, conditioning="input",
                     loss="bce", batch_size=128, lr_g=1e-5, lr_d=1e-5, betas=(0.9, 0.999), ema=0.0,
                     diversity=0.0, minutes=5.0, log_every=100, sample_every=500, checkpoint_every=2000, eval_every=0),
    # The default (the dataclass defaults): a conditional model tuned for the best digits per
    # CPU-minute. Each choice won a measured comparison at equal wall clock on full MNIST
    # (docs/tuning.md): the conv pair over the MLP (smooth strokes, no pixel speckle), hinge over
    # BCE, projection over input and ACGAN conditioning (ACGAN loses diversity), no spectral norm,
    # betas (0.5, 0.999) over (0, 0.9), lr 4e-4 over 2e-4, batch 32 over 64 and 128, width 32 over
    # 48, EMA 0.995 over 0.999 (a 0.999 average lags too far behind in a run of a few thousand steps);
    # round two: bf16 where native (amp auto); ema_rampup 0.05, so early G_ema follows G (issue 15);
    # a deeper D (DCGAN_D_DEPTH) with mode-seeking 0.1, then a deeper G (DCGAN_G_DEPTH): each lifted
    # precision and recall together.
    "default": {},
    # Two-dimensional points (--data ring8, grid25, spiral, moons or a points CSV pick it by
    # themselves, see `preset_for`): the small MLP pair of nets/toy.py, 10000 steps in under a minute
    # on one CPU thread at a load of about 2 (39-57 s on a shared 2-core machine). Chosen by measurement (docs/lab.md, "How
    # the preset was chosen"): lazy R1 settles the oscillation between modes; G_ema 0.9995 with
    # ema_rampup 0.05 puts the samples on the modes without lagging early on; 10000 steps, not 8000,
    # because grid25's share still rises after 8000 (worst of 5 seeds: 73% at 8000, 85% at 10000).
    # Float32: the lab's figures were measured in float32.
    "toy": dict(net="toy", width=96, z_dim=16, num_classes=0, conditioning="input", spectral_norm=False,
                loss="bce", batch_size=256, lr_g=2e-3, lr_d=2e-3, betas=(0.5, 0.999), ema=0.9995,
                ema_rampup=0.05, r1=0.2, r1_every=4, diversity=0.0, amp="off", steps=10000, minutes=None, log_every=100,
                sample_every=1000, checkpoint_every=2000, eval_every=1000),
}
# The default preset at sides where its 28 px choices lose: (net, resolution) -> fields, applied
# under the user's own settings by `at_resolution`. Measured (docs/tuning.md, "64 px" and "32 px"):
# at 64 px width 32 draws no digit in 2.5 minutes on one thread, width 16 does, and mode-seeking 0.5
# lifts 10-minute recall; at 128 px width 8 (the 64 px default's cost) beats 16 and 32 in 4 minutes;
# at 32 px a D of width 64 draws better coloured digits than one of 32, and one latent bit lets G
# keep light-on-dark and dark-on-light digits apart instead of fading one into the other.
# 32 px was measured without mode-seeking (0.1 became the default at 28 px later).
RESOLUTION_DEFAULTS: dict[tuple[str, int], dict[str, Any]] = {
    ("dcgan", 32): {"d_width": 64, "latent_bits": 1, "diversity": 0.0},
    ("dcgan", 64): {"width": 16, "diversity": 0.5},
    ("dcgan", 128): {"width": 8, "diversity": 0.5},
}
# The model half of the toy preset: 2-D data takes it whatever preset supplies the game.
TOY_MODEL = ("net", "width", "z_dim", "num_classes", "conditioning", "spectral_norm")


def preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise GanforgeError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return TrainConfig().replace(**PRESETS[name])


def preset_for(name: str, points: bool) -> TrainConfig:
    """Preset `name` for the kind of data: for 2-D points, 'default' means the toy preset, and any
    other preset keeps its game (loss, learning rates, batch, budget) but takes the toy model,
    so that `--preset tutorial --data ring8` is the tutorial's game on points."""
    if not points:
        return preset(name)
    toy = PRESETS["toy"]
    if name == "default":
        return preset("toy")
    return preset(name).replace(**{k: toy[k] for k in TOY_MODEL})


def at_resolution(cfg: TrainConfig, changes: dict[str, Any]) -> TrainConfig:
    """`cfg` (the default preset) with RESOLUTION_DEFAULTS for the net and side that `changes` (the
    user's settings, config field names) pick; `options.override` then puts the user's own values on top."""
    net = changes.get("net", cfg.model.net)
    side = changes.get("img_resolution", cfg.model.img_resolution)
    if not (isinstance(net, str) and isinstance(side, int)):  # not a known pair: validate() names the field
        return cfg
    return cfg.replace(**RESOLUTION_DEFAULTS.get((net, side), {}))


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise GanforgeError(message)


def _positive_int(name: str, value: Any) -> None:
    _require(isinstance(value, int) and not isinstance(value, bool) and value > 0,
             f"{name} must be a positive integer (got {value!r})")


def _finite(name: str, value: Any, low: float, high: float, *, low_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    bracket = "(" if low_open else "["
    _require(ok, f"{name} must be a number in {bracket}{low:g}, {high:g}] (got {value!r})")


def validate(cfg: TrainConfig) -> TrainConfig:
    """Check every field; raise GanforgeError naming the first bad field and its allowed range."""
    m = cfg.model
    _require(m.net in NETS, f"net must be one of {', '.join(NETS)} (got {m.net!r})")
    _positive_int("z_dim", m.z_dim)
    _require(m.z_dim <= 4096, f"z_dim must be at most 4096 (got {m.z_dim})")
    _require(type(m.latent_bits) is int and 0 <= m.latent_bits <= min(m.z_dim, 16),
             f"latent_bits must be an integer in [0, {min(m.z_dim, 16)}] (at most z_dim and 16; "
             f"got {m.latent_bits!r})")
    _require(m.net != "toy" or m.latent_bits == 0, f"latent_bits is for the image nets "
             f"({', '.join(IMAGE_NETS)}), not net 'toy'; use 0")
    for name, side in (("d_depth", "D"), ("g_depth", "G")):
        depth = getattr(m, name)
        _require(depth is None or (type(depth) is int and 0 <= depth <= MAX_DEPTH),
                 f"{name} must be an integer in [0, {MAX_DEPTH}], or unset for the net's own (got {depth!r})")
        _require(m.net == "dcgan" or not depth, f"{name} deepens the dcgan {side}; net {m.net!r} has no "
                 "such layers: leave it unset")
    widths = {"width": m.width, **({"d_width": m.d_width} if m.d_width is not None else {})}
    for name, value in widths.items():
        _positive_int(name, value)
        _require(value <= 4096, f"{name} must be at most 4096 (got {value})")
    _require(m.num_classes is None or (isinstance(m.num_classes, int) and not isinstance(m.num_classes, bool)
                                       and 0 <= m.num_classes <= 10_000),
             f"num_classes must be an integer in [0, 10000], or unset to follow the data "
             f"(got {m.num_classes!r})")
    _require(type(m.img_channels) is int and m.img_channels in (1, 3),
             f"img_channels must be 1 or 3 (got {m.img_channels!r})")
    if m.net == "mlp":
        _require(isinstance(m.img_resolution, int) and 8 <= m.img_resolution <= MAX_RESOLUTION
                 and m.img_resolution % 4 == 0,
                 f"img_resolution for net 'mlp' must be a multiple of 4 in [8, {MAX_RESOLUTION}] "
                 f"(got {m.img_resolution!r})")
    else:
        _require(type(m.img_resolution) is int and m.img_resolution in CONV_RESOLUTIONS,
                 f"img_resolution for net {m.net!r} must be one of "
                 f"{', '.join(map(str, CONV_RESOLUTIONS))} (got {m.img_resolution!r}); "
                 "give one with --resolution")
    _require(m.conditioning in CONDITIONINGS,
             f"conditioning must be one of {', '.join(CONDITIONINGS)} (got {m.conditioning!r})")
    _require(cfg.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)} (got {cfg.loss!r})")
    # Every conditioning but "input" puts label terms in D's head (PROJECTING, CLASSIFYING), which
    # cannot exist without labels: a contradiction to refuse, not to ignore. The tutorial stores "input".
    _require(m.conditional or m.conditioning == "input",
             f"conditioning {m.conditioning!r} needs class labels, but the model is unconditional "
             "(num_classes=0, --unconditional or the tutorial preset); use --conditioning input "
             "or train a conditional model (--conditional)")
    # Points carry no labels; the residual pair has width/2, /4 and /8 channels at its three
    # resolutions (cheap on a CPU), so a width below 8 would leave its last stage with none.
    _require(m.net != "toy" or m.num_classes in (None, 0),
             f"net 'toy' (2-D points) is unconditional: points have no classes (got num_classes "
             f"{m.num_classes}); use --unconditional")
    for name, value in widths.items():
        _require(m.net != "resnet" or value >= 8,
                 f"{name} must be at least 8 for net 'resnet' (its stages have {name}/2, /4 and /8 "
                 f"channels; got {value})")
    _positive_int("batch_size", cfg.batch_size)
    _require(cfg.batch_size <= 65_536, f"batch_size must be at most 65536 (got {cfg.batch_size})")
    _finite("lr_g", cfg.lr_g, 0, 1, low_open=True)
    _finite("lr_d", cfg.lr_d, 0, 1, low_open=True)
    _require(isinstance(cfg.betas, tuple) and len(cfg.betas) == 2,
             f"betas must be two numbers BETA1,BETA2 (got {cfg.betas!r})")
    for i, b in enumerate(cfg.betas):
        _finite(f"betas[{i}]", b, 0, 1)
        _require(b < 1, f"betas[{i}] must be below 1 (got {b!r})")
    _positive_int("n_dis", cfg.n_dis)
    _finite("ema", cfg.ema, 0, 1)
    _require(cfg.ema < 1, f"ema must be below 1; 0 turns it off (got {cfg.ema!r})")
    _finite("ema_rampup", cfg.ema_rampup, 0, 1)
    _finite("r1", cfg.r1, 0, 1e6)
    _positive_int("r1_every", cfg.r1_every)
    _finite("diversity", cfg.diversity, 0, 1e3)
    _finite("augment", cfg.augment, 0, 1)
    ops = cfg.augment_ops
    _require(isinstance(ops, tuple) and len(ops) > 0 and all(op in AUGMENT_OPS for op in ops)
             and len(set(ops)) == len(ops),
             f"augment_ops must be a comma list of distinct ops from {', '.join(AUGMENT_OPS)} "
             f"(got {','.join(map(str, ops)) if isinstance(ops, tuple) else ops!r})")
    _require(isinstance(cfg.mirror, bool), f"mirror must be true or false (got {cfg.mirror!r})")
    if cfg.ada_target is not None:
        _finite("ada_target", cfg.ada_target, 0, 1, low_open=True)
        _require(cfg.ada_target < 1, f"ada_target must be below 1: r_t never exceeds 1, so p would "
                                     f"never rise (got {cfg.ada_target!r})")
        _require(cfg.augment == 0, f"augment ({cfg.augment:g}) cannot be combined with adaptive "
                                   "augmentation, which starts p at 0 and tunes it; give --augment P "
                                   "or --augment ada, not both")
    _positive_int("ada_interval", cfg.ada_interval)
    _finite("ada_kimg", cfg.ada_kimg, 0, 1e6, low_open=True)
    # R1 pulls D's input gradient on real data towards 0, WGAN-GP pulls it towards norm 1 between
    # real and fake: two penalties with opposite targets, and WGAN-GP already has its own.
    _require(not (cfg.r1 > 0 and cfg.loss == "wgan-gp"),
             f"r1 ({cfg.r1:g}) cannot be combined with loss 'wgan-gp', which has its own gradient "
             "penalty; use --r1 0 with wgan-gp, or R1 with bce, minimax, lsgan or hinge")
    # Deliberately allowed: spectral norm with any loss (a Lipschitz bound on D suits every
    # objective, and with WGAN-GP it is the SN+GP combination of Kurach et al. 2019); DiffAugment
    # with any net (it acts on images, before D); ACGAN with any loss (its class term is separate
    # from the realness loss). No D has BatchNorm, so gradient penalties (per-sample gradients)
    # are always well defined; tests/test_nets.py keeps it so.
    _require(type(cfg.seed) is int and 0 <= cfg.seed < 2**31,
             f"seed must be an integer in [0, 2^31) (got {cfg.seed!r})")
    _require(cfg.device in DEVICES, f"device must be one of {', '.join(DEVICES)} (got {cfg.device!r})")
    _require(cfg.backend in BACKENDS, f"backend must be one of {', '.join(BACKENDS)} (got {cfg.backend!r})")
    _require(isinstance(cfg.sync_bn, bool), f"sync_bn must be true or false (got {cfg.sync_bn!r})")
    _require(cfg.amp in AMPS, f"amp must be one of {', '.join(AMPS)} (got {cfg.amp!r})")
    _require(isinstance(cfg.compile, bool), f"compile must be true or false (got {cfg.compile!r})")
    _require(isinstance(cfg.tensorboard, bool), f"tensorboard must be true or false (got {cfg.tensorboard!r})")
    _require(any(b is not None for b in (cfg.steps, cfg.epochs, cfg.minutes)),
             "no training budget: give --steps, --epochs or --minutes")
    if cfg.steps is not None:
        _positive_int("steps", cfg.steps)
    if cfg.epochs is not None:
        _finite("epochs", cfg.epochs, 0, 1e6, low_open=True)
    if cfg.minutes is not None:
        _finite("minutes", cfg.minutes, 0, 1e6, low_open=True)
    for name in ("log_every", "sample_every", "checkpoint_every"):
        _positive_int(name, getattr(cfg, name))
    _require(type(cfg.eval_every) is int and cfg.eval_every >= 0,
             f"eval_every must be a non-negative integer; 0 turns it off (got {cfg.eval_every!r})")
    _require(isinstance(cfg.data, str) and 0 < len(cfg.data) <= 4096,
             f"data must be a data set name or a path (got {str(cfg.data)[:80]!r})")
    _require(cfg.init_from is None or (isinstance(cfg.init_from, str) and cfg.init_from != ""),
             f"init_from must be a run directory or checkpoint file (got {cfg.init_from!r})")
    _require(cfg.eval_reference is None or (isinstance(cfg.eval_reference, str) and cfg.eval_reference != ""),
             f"eval_reference must be 'mnist-test' or a directory (got {cfg.eval_reference!r})")
    return cfg
