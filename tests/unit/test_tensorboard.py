"""--tensorboard: the metrics records as scalars and the progress grids as images, read back from
the event files with TensorBoard's own reader."""

from __future__ import annotations

import sys

import pytest

from ganforge.errors import GanforgeError
from ganforge.rundir import RunDir
from ganforge.training import train
from ganforge.training.tensorboard import scalars

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def test_scalars_flatten_evaluations_and_skip_the_axis():
    record = {"step": 4, "epoch": 0.5, "loss_d": 1.5, "event": "diverged", "ok": True, "eval": {"fid": 3, "x": "y"}}
    assert scalars(record) == {"loss_d": 1.5, "eval/fid": 3.0}


@pytest.mark.slow
def test_event_files_hold_the_metrics_and_the_grids(tiny_config, tmp_path):
    run = RunDir(train(tiny_config.replace(tensorboard=True, eval_every=3), tmp_path / "run", progress=False))
    events = event_accumulator.EventAccumulator(str(run.tensorboard), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    assert {"loss_d", "loss_g", "d_real", "d_fake", "img_per_s", "time_s", "eval/fid", "eval/recall"} <= set(tags["scalars"])
    logged = {r["step"]: r for r in run.read_metrics() if "loss_d" in r}
    got = {e.step: e.value for e in events.Scalars("loss_d")}
    assert sorted(got) == sorted(logged) == [2, 4, 6]
    for step, value in got.items():
        assert value == pytest.approx(logged[step]["loss_d"], rel=1e-6)
    assert [e.step for e in events.Scalars("eval/fid")] == [3, 6]
    images = events.Images("samples")
    assert [e.step for e in images] == [3, 6, 6]  # the grids, and the one saved at the end
    assert images[0].width > 100 and images[0].encoded_image_string.startswith(b"\x89PNG")


def test_without_tensorboard_installed_the_flag_says_how_to_get_it(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    with pytest.raises(GanforgeError, match=r"pip install 'ganforge\[tensorboard\]'"):
        train(tiny_config.replace(tensorboard=True), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists()  # refused before anything was written
