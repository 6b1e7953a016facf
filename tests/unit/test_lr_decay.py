"""--lr-decay: both learning rates fall linearly to 0 over the last share of the steps budget, as
a pure function of the step, so checkpoints, roll-backs and resume see the undecayed rates."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from ganforge.checkpoint import load_checkpoint
from ganforge.cli import cli
from ganforge.config import validate
from ganforge.errors import GanforgeError
from ganforge.options import override
from ganforge.rundir import RunDir
from ganforge.training import train
from ganforge.training.api import Trainer
from ganforge.training.state import lr_scale, scaled_step


def test_lr_scale_is_flat_then_falls_linearly_to_the_last_step():
    scales = [lr_scale(0.5, step, 8) for step in range(8)]
    torch.testing.assert_close(scales, [1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25], rtol=0, atol=1e-12)
    assert lr_scale(0.0, 7, 8) == 1.0
    assert lr_scale(0.5, 10, float("inf")) == 1.0  # no steps budget (minutes only): nothing to decay over


def test_scaled_step_uses_the_scaled_rate_and_keeps_the_stored_one():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    opt_a = torch.optim.Adam(a.parameters(), lr=1e-2)
    opt_b = torch.optim.Adam(b.parameters(), lr=2.5e-3)
    for opt, net in ((opt_a, a), (opt_b, b)):
        net(torch.ones(4, 3)).square().sum().backward()
    scaled_step(opt_a, 0.25)
    opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)
    assert opt_a.param_groups[0]["lr"] == 1e-2


def _weights(run):
    return load_file(RunDir(run).checkpoint())


def test_the_loop_decays_and_checkpoints_keep_the_undecayed_rate(tiny_config, tmp_path):
    cfg = tiny_config.replace(checkpoint_every=3, log_every=3, sample_every=10**6)
    train(cfg.replace(steps=6, lr_decay=0.5), tmp_path / "decay", progress=False)
    train(cfg.replace(steps=6), tmp_path / "flat", progress=False)
    decayed, flat = _weights(tmp_path / "decay"), _weights(tmp_path / "flat")
    assert any(not torch.equal(decayed[k], flat[k]) for k in decayed if k.startswith("G."))
    meta = load_checkpoint(RunDir(tmp_path / "decay").checkpoint())[1]
    assert [g["lr"] for g in meta["opt_g"]["param_groups"]] == [cfg.lr_g]
    assert [g["lr"] for g in meta["opt_d"]["param_groups"]] == [cfg.lr_d]


def test_the_decay_starts_where_the_budget_says(tiny_config, tmp_path):
    cfg = tiny_config.replace(sample_every=10**6)
    with Trainer(data=cfg.data, out=tmp_path / "decay", net="mlp", width=16, z_dim=8, batch_size=32, steps=6,
                 lr_decay=0.5, device="cpu", log_every=3, sample_every=10**6, progress=False) as trainer:
        list(trainer.steps(3))
        at_three = {k: v.clone() for k, v in trainer.state.G.state_dict().items()}
    train(cfg.replace(steps=3, log_every=3), tmp_path / "flat3", progress=False)
    flat = _weights(tmp_path / "flat3")
    for k, v in at_three.items():
        torch.testing.assert_close(v, flat[f"G.{k}"], rtol=0, atol=0)


def test_resume_decays_on_exactly_as_an_uninterrupted_run(tiny_config, tmp_path):
    cfg = tiny_config.replace(lr_decay=0.75, ema=0.9, log_every=2)
    train(cfg, tmp_path / "straight", progress=False)
    with Trainer(data=cfg.data, out=tmp_path / "split", net="mlp", width=16, z_dim=8, batch_size=32, steps=6,
                 lr_decay=0.75, ema=0.9, device="cpu", log_every=2, sample_every=3, checkpoint_every=3,
                 progress=False) as trainer:
        list(trainer.steps(4))  # stopped inside the decay (it starts at step 1.5 of 6)
    train(cfg, tmp_path / "split", resume=True, progress=False)
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("change, message", [
    ({"lr_decay": 1.5}, r"lr_decay must be a number in \[0, 1\]"),
    ({"lr_decay": -0.1}, r"lr_decay must be a number in \[0, 1\]"),
    ({"lr_decay": 0.5, "steps": None, "epochs": None, "minutes": 1.0}, "give --steps or --epochs too"),
])
def test_bad_decays_are_refused(tiny_config, change, message):
    with pytest.raises(GanforgeError, match=message):
        validate(tiny_config.replace(**change))


def test_a_budget_in_minutes_alone_drops_a_presets_decay(tiny_config):
    cfg = tiny_config.replace(lr_decay=0.25)
    assert override(cfg, {"minutes": 2.0}).lr_decay == 0.0
    assert override(cfg, {"steps": 100}).lr_decay == 0.25
    with pytest.raises(GanforgeError, match="give --steps or --epochs too"):
        validate(override(cfg, {"minutes": 2.0, "lr_decay": 0.25}))


def test_the_flag_reaches_the_config_and_bad_values_end_in_one_line(tiny_config, tmp_path):
    ok = CliRunner().invoke(cli, ["train", "--data", str(tiny_config.data), "--steps", "10", "--lr-decay", "0.3",
                                  "--out", str(tmp_path / "r"), "--dry-run"])
    assert ok.exit_code == 0, ok.output
    assert '"lr_decay": 0.3' in ok.output
    bad = CliRunner().invoke(cli, ["train", "--data", str(tiny_config.data), "--minutes", "1", "--lr-decay", "0.3",
                                   "--out", str(tmp_path / "r2"), "--dry-run"])
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines() == [bad.output.strip()] and bad.output.startswith("error: lr_decay")
