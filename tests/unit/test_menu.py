"""The whole menu from the user's side: every option by its command-line name, every nonsense
combination a clear error, and every option trains on tiny data, round-trips through a
checkpoint and resumes to exactly where an uninterrupted run gets."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from torch.testing import assert_close

import ganforge
from ganforge.checkpoint import load_checkpoint, unprefixed
from ganforge.config import TrainConfig, preset, validate
from ganforge.errors import GanforgeError
from harness import cli as harness_cli
from harness.cli import refused
from ganforge.nets import build_generator
from ganforge.rundir import RunDir
from ganforge.training import train
from ganforge.training.state import ema_update

# Each row switches on several options at once, so that together they cover every loss,
# conditioning, net and stabiliser (and their interplay) in a handful of tiny runs.
OPTIONS = {
    "minimax-input-ema": dict(loss="minimax", conditioning="input", ema=0.9),
    "lsgan-acgan-ttur": dict(loss="lsgan", conditioning="acgan", lr_g=1e-3, lr_d=4e-4),
    "hinge-sn-dcgan-input-augment": dict(loss="hinge", spectral_norm=True, net="dcgan", conditioning="input",
                                         augment=0.3),
    "wgan-gp-ndis-resnet-acgan": dict(loss="wgan-gp", n_dis=2, net="resnet", conditioning="acgan"),
    "bce-r1-augment-resnet-projection": dict(r1=10.0, r1_every=2, augment=0.5, net="resnet"),
    "unconditional-dcgan-hinge-augment-ema": dict(num_classes=0, conditioning="input", net="dcgan",
                                                  loss="hinge", augment=1.0, ema=0.5),
}


def small(tiny_config, **changes):
    return tiny_config.replace(width=16, batch_size=16, steps=2, checkpoint_every=1, sample_every=2,
                               log_every=1, **changes)


@pytest.mark.parametrize("name", OPTIONS)
@pytest.mark.slow
def test_every_option_trains_round_trips_and_resumes(name, tiny_config, tmp_path):
    cfg = small(tiny_config, **OPTIONS[name])
    run = train(cfg, tmp_path / "whole", progress=False)
    records = [r for r in RunDir(run).read_metrics() if "loss_d" in r]
    assert [r["step"] for r in records] == [1, 2]
    assert all(math.isfinite(r[k]) for r in records for k in ("loss_d", "loss_g", "d_real", "d_fake"))

    # save -> load -> the same images for the same seed, from G_ema when the run kept one
    gan = ganforge.load(run)
    labels = 3 if gan.conditional else None
    a = gan.sample(6, labels=labels, seed=7)
    assert a.shape == (6, 1, 28, 28) and a.dtype == torch.uint8
    assert torch.equal(a, ganforge.load(run).sample(6, labels=labels, seed=7))
    assert not torch.equal(a, gan.sample(6, labels=labels, seed=8))
    tensors, _ = load_checkpoint(RunDir(run).checkpoint())
    kept = "G_ema" if cfg.ema > 0 else "G"
    for key, value in gan.generator.state_dict().items():
        assert torch.equal(value, unprefixed(kept, tensors)[key])

    # stop halfway, resume, and land exactly where the uninterrupted run did
    half = train(cfg.replace(steps=1), tmp_path / "resumed", progress=False)
    train(cfg, half, resume=True, progress=False)
    resumed, _ = load_checkpoint(RunDir(half).checkpoint())
    assert resumed.keys() == tensors.keys()
    for key in tensors:
        assert_close(resumed[key], tensors[key], rtol=0, atol=0, msg=key)


def test_ema_update_follows_the_documented_rule():
    # G_ema <- decay * G_ema + (1 - decay) * G for parameters; buffers copied
    torch.manual_seed(0)
    G, G_ema = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    nn.init.normal_(G.weight), nn.init.normal_(G_ema.weight)
    G.running_mean.normal_()
    before = G_ema.weight.detach().clone()
    ema_update(G_ema, G, 0.9)
    assert_close(G_ema.weight, 0.9 * before + 0.1 * G.weight.detach())
    assert torch.equal(G_ema.running_mean, G.running_mean)


def test_training_moves_G_ema_by_the_rule(tiny_config, tmp_path):
    # One step with decay 0.75: G_ema = 0.75 * G at initialisation + 0.25 * G after the step
    # (the fixed decay; the ramp-up's own rule is tested in test_train.py).
    cfg = tiny_config.replace(ema=0.75, ema_rampup=0.0, steps=1)
    run = train(cfg, tmp_path / "run", progress=False)
    tensors, meta = load_checkpoint(RunDir(run).checkpoint())
    torch.manual_seed(cfg.seed)  # the trainer's weight initialisation
    initial = build_generator(TrainConfig.from_dict(meta["config"]).model).state_dict()
    G_ema, G = unprefixed("G_ema", tensors), unprefixed("G", tensors)
    for key, value in initial.items():
        if value.is_floating_point() and "running" not in key:
            assert_close(G_ema[key], 0.75 * value + 0.25 * G[key], msg=key)
        else:
            assert torch.equal(G_ema[key], G[key]), key  # buffers are copied


# -- nonsense combinations ------------------------------------------------------------------
@pytest.mark.parametrize("changes,words", [
    (dict(num_classes=0, conditioning="projection"), ["conditioning 'projection'", "unconditional",
                                                          "--conditioning input"]),
    (dict(num_classes=0, conditioning="acgan"), ["conditioning 'acgan'", "unconditional"]),
    (dict(loss="wgan-gp", r1=10.0), ["r1", "wgan-gp", "--r1 0"]),
    (dict(net="resnet", width=7), ["width", "resnet", "at least 8"]),
    (dict(r1_every=0), ["r1_every", "positive integer"]),
    (dict(augment=1.5), ["augment", "[0, 1]"]),
    (dict(ema=1.0), ["ema", "below 1"]),
    (dict(n_dis=0), ["n_dis", "positive integer"]),
    (dict(loss="wgan"), ["loss must be one of", "wgan-gp"]),
    (dict(conditioning="film"), ["conditioning must be one of"]),
])
def test_nonsense_is_a_clear_error(changes, words):
    with pytest.raises(GanforgeError) as e:
        validate(preset("default").replace(**changes))
    for word in words:
        assert word in str(e.value)


def test_sensible_neighbours_of_the_rules_are_accepted():
    validate(preset("tutorial"))  # unconditional with "input"
    validate(preset("default").replace(loss="wgan-gp", spectral_norm=True))
    validate(preset("default").replace(loss="hinge", r1=10.0, r1_every=1, augment=1.0))
    validate(preset("default").replace(net="resnet", width=8, conditioning="acgan", loss="wgan-gp"))


# -- the command line ---------------------------------------------------------------------
def dry_run(*args: str) -> dict:
    return harness_cli.dry_run(*args)["config"]


def test_every_menu_flag_reaches_the_config(tiny_digits):
    cfg = dry_run("--data", str(tiny_digits), "--loss", "hinge", "--r1", "5", "--r1-every", "4",
                  "--conditioning", "acgan", "--spectral-norm", "--ema", "0.99", "--n-dis", "3",
                  "--augment", "0.25", "--net", "resnet", "--lr-g", "1e-4", "--lr-d", "4e-4")
    assert cfg["loss"] == "hinge" and cfg["r1"] == 5.0 and cfg["r1_every"] == 4
    assert cfg["model"]["conditioning"] == "acgan" and cfg["model"]["spectral_norm"] is True
    assert cfg["model"]["net"] == "resnet"
    assert cfg["ema"] == 0.99 and cfg["n_dis"] == 3 and cfg["augment"] == 0.25
    assert (cfg["lr_g"], cfg["lr_d"]) == (1e-4, 4e-4)
    assert dry_run("--data", str(tiny_digits), "--ema", "0")["ema"] == 0.0


@pytest.mark.parametrize("loss", ["minimax", "bce", "lsgan", "hinge", "wgan-gp"])
def test_every_loss_name(loss, tiny_digits):
    assert dry_run("--data", str(tiny_digits), "--loss", loss)["loss"] == loss


def test_unconditional_uses_input_conditioning_and_conflicts_are_refused(tiny_digits):
    data = ("--data", str(tiny_digits))
    cfg = dry_run(*data, "--unconditional")  # the default preset's projection needs labels
    assert cfg["model"]["conditioning"] == "input" and cfg["model"]["num_classes"] == 0
    assert "conditioning 'acgan' needs class labels" in refused(*data, "--unconditional", "--conditioning", "acgan")
    assert "conditioning 'projection'" in refused(*data, "--preset", "tutorial", "--conditioning", "projection")
    cfg = dry_run(*data, "--preset", "tutorial", "--conditional", "--conditioning", "projection")
    assert cfg["model"]["num_classes"] == 10


def test_flags_without_effect_are_refused(tiny_digits):
    data = ("--data", str(tiny_digits))
    assert "--r1-every" in refused(*data, "--r1-every", "4")
    assert "wgan-gp" in refused(*data, "--r1", "10", "--loss", "wgan-gp")
    assert "resnet" in refused(*data, "--net", "resnet", "--width", "4")


# -- the comparison script (benchmarks/compare_menu.py), without training -------------------
def load_compare_menu():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_menu.py"
    spec = importlib.util.spec_from_file_location("compare_menu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_menu_ranks_by_fid_and_says_whether_the_default_wins(tmp_path):
    cm = load_compare_menu()
    mine, other = preset("default").loss, "lsgan"
    args = cm.parse_args(["--minutes", "1", "--losses", f"{mine},{other}", "--conditionings", "projection"])
    assert args.losses == [mine, other] and args.conditionings == ["projection"]
    row = dict(conditioning="projection", settings={}, steps=10, img_per_s=100.0, precision=0.5,
               recall=0.5, class_accuracy=0.9)
    rows = [dict(row, loss=other, fid=12.0), dict(row, loss=mine, fid=10.0)]
    text = cm.report(rows, args, "python benchmarks/compare_menu.py --minutes 1", scored=True)
    table = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert table[0].startswith(f"| **1** | **{mine}**") and table[1].startswith(f"| 2 | {other}")
    assert "The default preset is the best row" in text
    text = cm.report([dict(row, loss=other, fid=9.0), rows[1]], args, "cmd", scored=True)
    assert f"the best row is {other} + projection" in text and "not the default preset" in text

    doc = tmp_path / "menu.md"
    doc.write_text(f"prose before\n{cm.BEGIN}\nold\n{cm.END}\nprose after\n")
    cm._common.write_block(doc, text, cm.BEGIN, cm.END)
    written = doc.read_text()
    assert written.startswith("prose before\n") and written.endswith("prose after\n")
    assert "\nold\n" not in written and written.count(cm.BEGIN) == 1
