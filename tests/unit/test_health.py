"""Divergence (NaN/Inf) detection, roll-back and retry; the NaN guard on checkpoints; the
mode-collapse check."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.rundir import RunDir
from ganforge.checkpoint import load_checkpoint, save_checkpoint
from ganforge.errors import GanforgeError
from ganforge.training.health import DIVERGENCE_RETRIES, mode_collapse, nonfinite
from ganforge.training import Trainer
from harness.health import poisoned




@pytest.mark.parametrize("where", ["G", "loss_d"])
@pytest.mark.slow
def test_divergence_rolls_back_and_halves_learning_rates(tiny_config, tmp_path, where):
    cfg = tiny_config.replace(steps=9, log_every=1)
    run = poisoned(Trainer(cfg, tmp_path / "run", progress=False), {5}, where).train()
    tensors, meta = load_checkpoint(RunDir(run).checkpoint())
    assert meta["step"] == 9
    assert all(t.isfinite().all() for t in tensors.values() if t.is_floating_point())
    assert [g["lr"] for g in meta["opt_g"]["param_groups"]] == [cfg.lr_g / 2]
    assert [g["lr"] for g in meta["opt_d"]["param_groups"]] == [cfg.lr_d / 2]
    records = RunDir(run).read_metrics()
    events = [r for r in records if "event" in r]
    assert events == [{"step": 3, "event": "diverged", "nonfinite": where, "detected_at": 5,
                       "lr_g": cfg.lr_g / 2, "lr_d": cfg.lr_d / 2}]
    # Steps 4 and 5 of the diverged branch were dropped and trained again.
    assert [r["step"] for r in records if "loss_d" in r] == list(range(1, 10))
    assert all(math.isfinite(r["loss_d"]) for r in records if "loss_d" in r)


def test_divergence_gives_up_after_bounded_retries_keeping_the_good_checkpoint(tiny_config, tmp_path):
    trainer = poisoned(Trainer(tiny_config.replace(steps=30), tmp_path / "run", progress=False),
                       {5}, "G", once=False)
    with pytest.raises(GanforgeError, match=f"again after {DIVERGENCE_RETRIES} roll-backs"):
        trainer.train()
    tensors, meta = load_checkpoint(RunDir(tmp_path / "run").checkpoint())
    assert meta["step"] == 3
    assert all(t.isfinite().all() for t in tensors.values() if t.is_floating_point())
    assert [g["lr"] for g in meta["opt_g"]["param_groups"]] == [tiny_config.lr_g]
    assert len([r for r in RunDir(tmp_path / "run").read_metrics() if "event" in r]) == DIVERGENCE_RETRIES


def test_save_checkpoint_refuses_nan_and_keeps_the_previous_file(tmp_path):
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, {"w": torch.ones(3)}, {"step": 1})
    good = path.read_bytes()
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(GanforgeError, match="w holds NaN or Inf.*previous checkpoint there is kept"):
            save_checkpoint(path, {"w": torch.tensor([1.0, bad]), "n": torch.zeros(2, dtype=torch.uint8)},
                            {"step": 2})
        assert path.read_bytes() == good
    assert list(tmp_path.iterdir()) == [path]


def test_nonfinite_names_the_first_bad_loss_or_network():
    G, D = torch.nn.Linear(3, 3), torch.nn.Linear(3, 1)
    losses = {"loss_d": torch.tensor(0.7), "loss_g": torch.tensor(1.2)}
    assert nonfinite(losses, {"G": G, "D": D}) is None
    assert nonfinite({**losses, "loss_g": torch.tensor(-math.inf)}, {"G": G, "D": D}) == "loss_g"
    with torch.no_grad():
        D.bias.fill_(math.nan)
    assert nonfinite(losses, {"G": G, "D": D}) == "D"
    with torch.no_grad():
        G.weight[1, 2] = math.inf
    assert nonfinite(losses, {"G": G, "D": D}) == "G"


def test_mode_collapse_warns_only_when_the_evaluation_shows_it():
    assert mode_collapse({"step": 500, "classes_covered": 10, "recall": 0.55}, 10) is None
    assert mode_collapse({"step": 500, "fid": 12.0}, 10) is None  # nothing to judge by
    msg = mode_collapse({"step": 500, "classes_covered": 3, "recall": 0.6}, 10)
    assert msg.startswith("possible mode collapse at step 500: samples cover 3 of 10 classes")
    msg = mode_collapse({"classes_covered": 10, "recall": 0.05}, 10)
    assert "recall 0.05 is below 0.2" in msg and "cover" not in msg
    assert "cover 9 of 10" in mode_collapse({"classes_covered": 9, "recall": 0.01}, 10)
    assert mode_collapse({"classes_covered": 1, "recall": 0.2}, 0) is None  # no classes to cover
