"""Fine-tuning with --init-from (ganforge.training.init_from)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from ganforge.checkpoint import read_model
from ganforge.cli import cli
from ganforge.config import ModelConfig
from ganforge.errors import GanforgeError
from ganforge.rundir import RunDir
from ganforge.training import Trainer, train
from ganforge.training.init_from import class_tensors
from harness.data import write_idx


@pytest.fixture
def five_digits(tmp_path, bundled_arrays):
    """IDX files of 20 digits of each of the classes 0-4 (so 5 classes, not the source's 10)."""
    images, labels = bundled_arrays
    keep = np.concatenate([np.flatnonzero(labels == c)[:20] for c in range(5)])
    d = tmp_path / "five"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte.gz", images[keep])
    write_idx(d / "train-labels-idx1-ubyte.gz", labels[keep])
    return d


def _assert_state_equal(module, weights):
    own = module.state_dict()
    assert own.keys() == weights.keys()
    for k, v in weights.items():
        torch.testing.assert_close(own[k], v, rtol=0, atol=0, msg=k)


@pytest.mark.slow
def test_same_classes_start_from_the_source_weights(tiny_config, tiny_run, tmp_path, caplog):
    source = read_model(tiny_run)
    cfg = tiny_config.replace(init_from=str(tiny_run), lr_g=1e-3)
    with caplog.at_level("WARNING", logger="ganforge"):
        t = Trainer(cfg, tmp_path / "ft", progress=False)
    assert "re-initialised" not in caplog.text
    _assert_state_equal(t.state.G, source.generator)
    _assert_state_equal(t.state.G_ema, source.generator)
    _assert_state_equal(t.state.D, source.discriminator)
    assert t.state.step == 0 and t.state.opt_g.state_dict()["state"] == {}  # fresh optimizers
    assert t.state.opt_g.param_groups[0]["lr"] == 1e-3  # the new run's own settings
    t.train()
    assert json.loads((tmp_path / "ft" / "config.json").read_text())["config"]["init_from"] == str(tiny_run)


def test_a_classifier_beside_the_projection_is_added_fresh_or_left_behind(tiny_config, tiny_run, tmp_path, caplog):
    source = read_model(tiny_run)  # the default projection
    cfg = tiny_config.replace(init_from=str(tiny_run), conditioning="projection+classifier")
    with caplog.at_level("WARNING", logger="ganforge"):
        t = Trainer(cfg, tmp_path / "with", progress=False)
    assert "D's classifier head starts fresh" in caplog.text
    d = t.state.D.state_dict()
    _assert_state_equal(t.state.G, source.generator)
    assert {k for k in d if k not in source.discriminator} == {"head.classifier.weight", "head.classifier.bias"}
    for k, v in source.discriminator.items():
        torch.testing.assert_close(d[k], v, rtol=0, atol=0, msg=k)
    t.train()
    caplog.clear()
    back = tiny_config.replace(init_from=str(tmp_path / "with"))  # and back to the projection alone
    with caplog.at_level("WARNING", logger="ganforge"):
        t = Trainer(back, tmp_path / "without", progress=False)
    assert "D's classifier head is left behind" in caplog.text
    assert not any("classifier" in k for k in t.state.D.state_dict())
    t.finish()


def test_other_classes_reinitialise_the_class_embeddings_only(tiny_config, tiny_run, five_digits, tmp_path, caplog):
    source = read_model(tiny_run)
    cfg = tiny_config.replace(data=str(five_digits), init_from=str(tiny_run))
    scratch = Trainer(cfg.replace(init_from=None), tmp_path / "scratch", progress=False)
    with caplog.at_level("WARNING", logger="ganforge"):
        t = Trainer(cfg, tmp_path / "ft", progress=False)
    warnings = [r.getMessage() for r in caplog.records if "re-initialised" in r.getMessage()]
    assert len(warnings) == 1 and "5 classes (0, 1, 2, 3, 4)" in warnings[0] and "source's 10" in warnings[0]
    fresh = class_tensors(t.cfg.model)
    assert fresh == {"G": {"join.embed.weight"}, "D": {"head.embed.weight"}}
    for net, weights, own_fresh in ((t.state.G, source.generator, scratch.state.G),
                                    (t.state.G_ema, source.generator, scratch.state.G),
                                    (t.state.D, source.discriminator, scratch.state.D)):
        got, initial = net.state_dict(), own_fresh.state_dict()
        name = "D" if net is t.state.D else "G"
        for k in got:
            want = initial[k] if k in fresh[name] else weights[k]
            torch.testing.assert_close(got[k], want, rtol=0, atol=0, msg=k)
    assert t.state.G.join.embed.weight.shape == (5, 8)
    t.train()  # and it trains
    assert RunDir(tmp_path / "ft").checkpoint().is_file()


@pytest.mark.parametrize("net,conditioning,want_g,want_d", [
    ("mlp", "input", {"join.embed.weight"}, {"label_embed.weight"}),
    ("dcgan", "input", {"join.embed.weight"}, {"label_plane.weight"}),
    ("dcgan", "acgan", {"join.embed.weight"}, {"head.classifier.weight", "head.classifier.bias"}),
    ("resnet", "projection", {"join.embed.weight"}, {"head.embed.weight"}),
    ("dcgan", "projection+classifier", {"join.embed.weight"},
     {"head.embed.weight", "head.classifier.weight", "head.classifier.bias"}),
])
def test_class_tensors_of_every_net(net, conditioning, want_g, want_d):
    model = ModelConfig(net=net, conditioning=conditioning, num_classes=7, width=16)
    assert class_tensors(model) == {"G": want_g, "D": want_d}
    assert class_tensors(ModelConfig(net=net, conditioning="input", num_classes=0, width=16)) == {"G": set(), "D": set()}


def test_mismatched_architecture_is_one_line_naming_the_fields(tiny_run, tiny_digits, tmp_path):
    args = ["train", "--data", tiny_digits, "--init-from", tiny_run, "--net", "mlp", "--z-dim", 8,
            "--width", 32, "--resolution", 32, "--dry-run"]
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and line.startswith("error: --init-from")
    assert "width 16, resolution 28" in line and "width 32, resolution 32" in line
    assert "--width 16 --resolution 28" in line
    # The same check guards the library path, before the run directory is touched.
    cfg_args = dict(data=str(tiny_digits), net="mlp", z_dim=8, width=16, num_classes=0, conditioning="input",
                    init_from=str(tiny_run), steps=2, minutes=None, device="cpu")
    from ganforge.config import preset
    with pytest.raises(GanforgeError, match="classes conditional.*--conditional"):
        train(preset("default").replace(**cfg_args), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_fields_that_size_D_or_G_input_must_match_too(tiny_run, tiny_digits):
    # D's width and G's latent bits change tensor shapes as the width does; D as wide as G
    # (d_width unset) is the same D as one given G's width.
    def dry(*extra):
        args = ["train", "--data", tiny_digits, "--init-from", tiny_run, "--net", "mlp", "--z-dim", 8,
                "--width", 16, "--dry-run", *extra]
        return CliRunner().invoke(cli, [str(a) for a in args])

    result = dry("--d-width", 32, "--latent-bits", 2)
    assert result.exit_code == 2, result.output
    assert "d_width 16, latent_bits 0" in result.output and "--d-width 16 --latent-bits 0" in result.output
    same = dry("--d-width", 16)
    assert same.exit_code == 0, same.output


def test_the_fix_for_a_wider_source_D_is_complete(monkeypatch):
    # Source G 16 wide, D 32; this run G 32 wide, D unset (so also 32): giving only --width 16
    # would make D 16, so the message must ask for --d-width 32 too.
    from types import SimpleNamespace

    from ganforge.config import ModelConfig
    from ganforge.training import init_from
    old = ModelConfig(net="mlp", width=16, d_width=32, z_dim=8, num_classes=10)
    new = ModelConfig(net="mlp", width=32, z_dim=8, num_classes=10)
    monkeypatch.setattr(init_from, "read_model", lambda path: SimpleNamespace(config=SimpleNamespace(model=old)))
    with pytest.raises(GanforgeError, match="give --width 16 --d-width 32$"):
        init_from.read_source(SimpleNamespace(init_from="src", model=new))


def test_missing_source_is_an_error(tiny_config, tmp_path):
    with pytest.raises(GanforgeError, match="does not exist"):
        Trainer(tiny_config.replace(init_from=str(tmp_path / "nope")), tmp_path / "ft", progress=False)


@pytest.mark.slow
def test_resume_of_a_fine_tuned_run_equals_uninterrupted(tiny_config, tiny_run, five_digits, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(tiny_run, source)
    cfg = tiny_config.replace(data=str(five_digits), init_from=str(source), ema=0.9)
    train(cfg.replace(steps=6), tmp_path / "straight", progress=False)
    train(cfg.replace(steps=3), tmp_path / "split", progress=False)
    shutil.rmtree(source)  # a resume restores its own checkpoint and never reads the source again
    result = CliRunner().invoke(cli, ["train", "--resume", str(tmp_path / "split"), "--steps", "6", "--quiet"])
    assert result.exit_code == 0, result.output
    a, b = load_file(RunDir(tmp_path / "straight").checkpoint()), load_file(RunDir(tmp_path / "split").checkpoint())
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    result = CliRunner().invoke(cli, ["train", "--resume", str(tmp_path / "split"), "--init-from", str(tiny_run),
                                      "--steps", "8"])
    assert result.exit_code == 2 and "--init-from cannot change when resuming" in result.output


def test_a_source_D_of_another_depth_is_named_with_its_fix(monkeypatch):
    # A dcgan run from before d_depth and g_depth existed (stored without them, so depth 0)
    # against the default's deeper pair: the one-line error asks for --d-depth 0 --g-depth 0; an
    # unset depth that comes out the same is no difference.
    from types import SimpleNamespace

    from ganforge.config import ModelConfig, TrainConfig
    from ganforge.training import init_from
    stored = TrainConfig(model=ModelConfig(num_classes=10)).to_dict()
    del stored["model"]["d_depth"], stored["model"]["g_depth"]
    old = TrainConfig.from_dict(stored).model
    assert old.discriminator_depth == old.generator_depth == 0
    monkeypatch.setattr(init_from, "read_model", lambda path: SimpleNamespace(config=SimpleNamespace(model=old)))
    with pytest.raises(GanforgeError, match="give --d-depth 0 --g-depth 0$"):
        init_from.read_source(SimpleNamespace(init_from="src", model=ModelConfig(num_classes=10)))
    with pytest.raises(GanforgeError, match="but this run has g_depth 1; .*, so give --g-depth 0$"):
        init_from.read_source(SimpleNamespace(init_from="src", model=ModelConfig(num_classes=10, d_depth=0)))
    init_from.read_source(SimpleNamespace(init_from="src", model=ModelConfig(num_classes=10, d_depth=0, g_depth=0)))
