"""Resolutions 32, 64 and 128 for the convolutional nets: every (net, resolution, channels) builds,
has the documented depth and shapes, passes gradients, trains and round-trips a checkpoint; the
28 px digit nets keep their exact layout (so existing checkpoints load); --resolution is checked
against the chosen net."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from click.testing import CliRunner
from PIL import Image

import ganforge
from ganforge.checkpoint import check_weights, load_checkpoint, unprefixed
from ganforge.cli import cli
from ganforge.config import CONV_RESOLUTIONS, PRESETS, ModelConfig, preset, validate
from ganforge.errors import GanforgeError
from ganforge.nets import build_discriminator, build_generator
from ganforge.nets.common import MAX_DOUBLINGS
from ganforge.rundir import RunDir
from ganforge.training import train

CONV_NETS = ("dcgan", "resnet")


def model(net: str, resolution: int, channels: int, **changes) -> ModelConfig:
    return ModelConfig(**{"net": net, "width": 16, "z_dim": 8, "num_classes": 3, "conditioning": "projection",
                          "img_channels": channels, "img_resolution": resolution, **changes})


@pytest.mark.parametrize("net", CONV_NETS)
@pytest.mark.parametrize("resolution", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_net_resolution_and_channel_count_builds_and_passes_gradients(net, resolution, channels):
    torch.manual_seed(0)
    cfg = model(net, resolution, channels, width=16 if net == "dcgan" else 64)  # 16 and 8 channels at full size
    G, D = build_generator(cfg), build_discriminator(cfg)
    labels = torch.tensor([0, 1, 2, 1])
    img = G(torch.randn(4, 8), labels)
    assert img.shape == (4, channels, resolution, resolution)
    assert -1 <= img.min() and img.max() <= 1 and img.std() > 0
    logits, class_logits = D(img, labels)
    assert logits.shape == (4,) and class_logits is None
    logits.sum().backward()
    for name, p in [*G.named_parameters(prefix="G"), *D.named_parameters(prefix="D")]:
        if name == "D.head.embed.weight":  # only the rows of the labels used get a gradient
            assert p.grad[:3].abs().sum() > 0, name
            continue
        assert p.grad is not None and bool(p.grad.isfinite().all() and p.grad.abs().sum() > 0), name


@pytest.mark.parametrize("resolution, base, octaves", [(8, 4, 1), (16, 4, 2), (28, 7, 2), (32, 4, 3),
                                                       (64, 4, 4), (128, 4, 5)])
def test_depth_follows_the_resolution_and_channels_are_capped(resolution, base, octaves):
    dcgan = model("dcgan", resolution, 3)
    G, D = build_generator(dcgan), build_discriminator(dcgan)
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in G.modules()) == octaves
    assert sum(isinstance(m, nn.Conv2d) and m.stride == (2, 2) for m in D.modules()) == octaves
    assert (G.base, G.c_base) == (base, 16 << min(octaves, MAX_DOUBLINGS))
    widest = max(m.out_channels for m in D.modules() if isinstance(m, nn.Conv2d))
    assert widest == 16 << min(octaves - 1, MAX_DOUBLINGS)

    resnet = model("resnet", resolution, 3, width=64)  # 8 channels at full resolution
    G, D = build_generator(resnet), build_discriminator(resnet)
    assert len(G.blocks) == octaves and len(D.blocks) == octaves + 2  # + the unpooled block and ReLU
    assert (G.base, G.c_base) == (base, 8 << min(octaves, MAX_DOUBLINGS))
    with torch.no_grad():
        features = D.blocks(torch.zeros(1, 3, resolution, resolution))
    assert features.shape == (1, 8 << min(octaves, MAX_DOUBLINGS), base, base)


# The parameter shapes of the 28 px digit nets before resolutions 32-128 existed (dcgan width 8,
# resnet width 16, 10 classes, projection, the classic D): a checkpoint holds exactly these names and
# shapes (its stored configuration, written before d_depth existed, reads as d_depth 0: test_config).
DIGIT_LAYOUT = {
    "dcgan": {
        "G": {"join.embed.weight": (10, 8), "fc.0.weight": (1568, 16), "fc.1.weight": (1568,),
              "fc.1.bias": (1568,), "convs.0.weight": (32, 16, 4, 4), "convs.1.weight": (16,),
              "convs.1.bias": (16,), "convs.3.weight": (16, 1, 4, 4), "convs.3.bias": (1,)},
        "D": {"convs.0.weight": (8, 1, 4, 4), "convs.0.bias": (8,), "convs.2.weight": (16, 8, 4, 4),
              "convs.2.bias": (16,), "head.linear.weight": (1, 784), "head.linear.bias": (1,),
              "head.embed.weight": (10, 784)},
    },
    "resnet": {
        "G": {"join.embed.weight": (10, 8), "fc.weight": (392, 16), "fc.bias": (392,),
              "blocks.0.main.0.weight": (8,), "blocks.0.main.0.bias": (8,), "blocks.0.main.3.weight": (4, 8, 3, 3),
              "blocks.0.main.4.weight": (4,), "blocks.0.main.4.bias": (4,), "blocks.0.main.6.weight": (4, 4, 3, 3),
              "blocks.0.main.6.bias": (4,), "blocks.0.skip.1.weight": (4, 8, 1, 1), "blocks.0.skip.1.bias": (4,),
              "blocks.1.main.0.weight": (4,), "blocks.1.main.0.bias": (4,), "blocks.1.main.3.weight": (2, 4, 3, 3),
              "blocks.1.main.4.weight": (2,), "blocks.1.main.4.bias": (2,), "blocks.1.main.6.weight": (2, 2, 3, 3),
              "blocks.1.main.6.bias": (2,), "blocks.1.skip.1.weight": (2, 4, 1, 1), "blocks.1.skip.1.bias": (2,),
              "out.0.weight": (2,), "out.0.bias": (2,), "out.2.weight": (1, 2, 3, 3), "out.2.bias": (1,)},
        "D": {"blocks.0.main.0.weight": (2, 1, 3, 3), "blocks.0.main.0.bias": (2,),
              "blocks.0.main.2.weight": (2, 2, 3, 3), "blocks.0.main.2.bias": (2,),
              "blocks.0.skip.1.weight": (2, 1, 1, 1), "blocks.0.skip.1.bias": (2,),
              "blocks.1.main.1.weight": (4, 2, 3, 3), "blocks.1.main.1.bias": (4,),
              "blocks.1.main.3.weight": (4, 4, 3, 3), "blocks.1.main.3.bias": (4,),
              "blocks.1.skip.1.weight": (4, 2, 1, 1), "blocks.1.skip.1.bias": (4,),
              "blocks.2.main.1.weight": (8, 4, 3, 3), "blocks.2.main.1.bias": (8,),
              "blocks.2.main.3.weight": (8, 8, 3, 3), "blocks.2.main.3.bias": (8,),
              "blocks.2.skip.0.weight": (8, 4, 1, 1), "blocks.2.skip.0.bias": (8,),
              "head.linear.weight": (1, 8), "head.linear.bias": (1,), "head.embed.weight": (10, 8)},
    },
}


@pytest.mark.parametrize("net, width", [("dcgan", 8), ("resnet", 16)])
def test_the_digit_nets_keep_their_checkpoint_layout(net, width):
    cfg = ModelConfig(net=net, width=width, z_dim=8, num_classes=10, conditioning="projection",
                      d_depth=0 if net == "dcgan" else None, g_depth=0 if net == "dcgan" else None)
    for name, module in (("G", build_generator(cfg)), ("D", build_discriminator(cfg))):
        shapes = {k: tuple(p.shape) for k, p in module.named_parameters()}
        assert shapes == DIGIT_LAYOUT[net][name]


@pytest.mark.parametrize("net", CONV_NETS)
@pytest.mark.parametrize("resolution", [12, 48, 96, 256, 30])
def test_a_resolution_the_conv_nets_cannot_take_names_the_allowed_ones(net, resolution):
    with pytest.raises(GanforgeError) as e:
        validate(preset("default").replace(net=net, img_resolution=resolution))
    assert f"img_resolution for net {net!r}" in str(e.value)
    assert "8, 16, 28, 32, 64, 128" in str(e.value) and str(resolution) in str(e.value)


def test_every_allowed_resolution_validates_and_the_mlp_takes_multiples_of_4_up_to_128():
    for net in CONV_NETS:
        for resolution in CONV_RESOLUTIONS:
            validate(preset("default").replace(net=net, img_resolution=resolution))
    validate(preset("default").replace(net="mlp", img_resolution=48))
    validate(preset("default").replace(net="mlp", img_resolution=128))
    for bad in (132, 30, 28.0):
        with pytest.raises(GanforgeError, match=r"img_resolution for net 'mlp' must be a multiple of 4 in \[8, 128\]"):
            validate(preset("default").replace(net="mlp", img_resolution=bad))
    with pytest.raises(GanforgeError, match="img_resolution"):
        validate(preset("default").replace(net="dcgan", img_resolution=32.0))


@pytest.fixture(scope="module")
def colour_folder(tmp_path_factory):
    """Two classes of 12 RGB pictures, 40x40 (resized to the model's side at load time): red-ish
    squares on blue and blue-ish discs on red."""
    folder = tmp_path_factory.mktemp("colour")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:40, :40]
    for name, fg, bg, shape in (("squares", (220, 40, 40), (30, 30, 200), (abs(yy - 20) < 10) & (abs(xx - 20) < 10)),
                                ("discs", (40, 40, 220), (200, 30, 30), (yy - 20) ** 2 + (xx - 20) ** 2 < 120)):
        (folder / name).mkdir()
        for i in range(12):
            img = np.where(shape[..., None], fg, bg) + rng.integers(-20, 20, (40, 40, 3))
            Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / name / f"{i}.png")
    return folder


@pytest.mark.parametrize("net, width", [("dcgan", 8), ("resnet", 16)])
def test_a_32px_rgb_run_trains_and_round_trips_its_checkpoint(net, width, colour_folder, tiny_config, tmp_path):
    cfg = tiny_config.replace(data=str(colour_folder), net=net, width=width, img_resolution=32, batch_size=8,
                              steps=2, log_every=1, sample_every=2, checkpoint_every=2, ema=0.9)
    run = train(cfg, tmp_path / "run", progress=False)
    tensors, meta = load_checkpoint(RunDir(run).checkpoint())
    stored = validate(ganforge.config.TrainConfig.from_dict(meta["config"]))
    assert (stored.model.img_channels, stored.model.img_resolution, stored.model.num_classes) == (3, 32, 2)
    check_weights(stored.model, tensors, RunDir(run).checkpoint())
    gan = ganforge.load(run)
    for key, value in gan.generator.state_dict().items():
        assert torch.equal(value, unprefixed("G_ema", tensors)[key]), key
    a = gan.sample(4, labels=1, seed=5)
    assert a.shape == (4, 3, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, ganforge.load(run).sample(4, labels=1, seed=5))


def test_the_command_line_refuses_a_resolution_the_net_cannot_take(colour_folder):
    result = CliRunner().invoke(cli, ["train", "--data", str(colour_folder), "--net", "dcgan",
                                      "--resolution", "48", "--steps", "1", "--dry-run"])
    assert result.exit_code == 2, result.output
    line, = result.output.strip().splitlines()
    assert line.startswith("error: ") and "8, 16, 28, 32, 64, 128" in line and "--resolution" in line
    result = CliRunner().invoke(cli, ["train", "--data", str(colour_folder), "--net", "resnet", "--width", "64",
                                      "--resolution", "128", "--batch-size", "8", "--steps", "1", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert '"img_resolution": 128' in result.output and '"img_channels": 3' in result.output


def test_a_checkpoint_of_the_old_64px_layout_is_refused_naming_the_layout_change(tmp_path):
    # Before depth followed the resolution, dcgan at 64 px went Linear -> (4c, 16, 16) -> two ConvT.
    cfg = ModelConfig(net="dcgan", width=8, z_dim=8, num_classes=0, conditioning="input", img_resolution=64)
    old = {"G.fc.0.weight": torch.zeros(4 * 8 * 16 * 16, 8), "D.convs.0.weight": torch.zeros(8, 1, 4, 4)}
    with pytest.raises(GanforgeError, match="had another layout"):
        check_weights(cfg, old, tmp_path / "old.safetensors")
    digits = ModelConfig(net="dcgan", width=8, z_dim=8, num_classes=0, conditioning="input")
    with pytest.raises(GanforgeError, match="damaged or was edited$"):
        check_weights(digits, {}, tmp_path / "damaged.safetensors")


def test_the_default_preset_follows_the_side_unless_told_otherwise():
    """At 64 px the width-32 DCGAN draws no digit in minutes on a CPU, at 128 px faint, mostly wrong ones
    (docs/tuning.md, "64 px", "128 px")."""
    from ganforge.training.api import configure

    def width(options: dict, preset_name: str | None = None) -> int:
        return configure(options, "unused", preset_name)[0].model.width

    def diversity(options: dict) -> float:
        return configure(options, "unused", None)[0].diversity

    assert diversity({"resolution": 64}) == 0.5 and diversity({"resolution": 64, "diversity": 0}) == 0

    def d_width(options: dict) -> int | None:
        return configure(options, "unused", None)[0].model.d_width

    assert d_width({"resolution": 32}) == 64 and d_width({"resolution": 32, "d_width": 32}) == 32
    assert d_width({}) is None and d_width({"resolution": 32, "net": "resnet"}) is None

    def bits(options: dict) -> int:
        return configure(options, "unused", None)[0].model.latent_bits

    assert bits({"resolution": 32}) == 1 and bits({"resolution": 32, "latent_bits": 0}) == 0
    assert bits({}) == bits({"resolution": 64}) == bits({"resolution": 32, "net": "resnet"}) == 0

    def depth(options: dict) -> int:
        return configure(options, "unused", None)[0].model.discriminator_depth

    # The deeper D was measured at 28 px only: the other sides keep the D they were measured with.
    assert depth({}) == 1 and all(depth({"resolution": side}) == 0 for side in (8, 16, 32, 64, 128))
    assert configure({"net": "dcgan"}, "unused", "tutorial")[0].model.discriminator_depth == 1  # the net's, at 28 px
    assert depth({"resolution": 64, "d_depth": 2}) == 2

    def g_depth(options: dict) -> int:
        return configure(options, "unused", None)[0].model.generator_depth

    # So was the deeper G.
    assert g_depth({}) == 1 and all(g_depth({"resolution": side}) == 0 for side in (8, 16, 32, 64, 128))
    assert g_depth({"resolution": 64, "g_depth": 2}) == 2
    assert diversity({}) == diversity({"resolution": 64, "net": "resnet"}) == preset("default").diversity == 0.1
    assert diversity({"resolution": 32}) == 0  # measured without it

    assert width({"resolution": 64}) == 16
    assert width({"resolution": 128}) == 8 and diversity({"resolution": 128}) == 0.5
    assert width({"resolution": 128, "width": 16}) == 16
    assert width({"resolution": 64, "net": "dcgan"}) == 16
    assert width({"resolution": 64, "width": 32}) == 32  # the user's own value wins
    assert width({"resolution": 64, "net": "resnet"}) == preset("default").model.width  # another net: untouched
    assert width({"resolution": 32}) == width({}) == preset("default").model.width  # other sides: untouched
    assert width({"resolution": 64}, "tutorial") == PRESETS["tutorial"]["width"]  # other presets: untouched
