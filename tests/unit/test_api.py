"""The Python API: `ganforge.train` and the step-wise `ganforge.Trainer` take the train command's
options as keywords and leave the same run directory as the command line."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ganforge
from ganforge.errors import GanforgeError
from ganforge.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(net="mlp", width=16, z_dim=8, batch_size=32, log_every=2, sample_every=3, checkpoint_every=3,
            eval_every=0, device="cpu", progress=False)


def test_import_ganforge_is_light():
    out = subprocess.run([sys.executable, "-c", "import sys, ganforge; print('torch' in sys.modules)"],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_train_returns_the_run_and_matches_the_cli(tiny_digits, tmp_path):
    run = ganforge.train(data=tiny_digits, steps=6, out=tmp_path / "api", seed=3, **TINY)
    assert isinstance(run, RunDir) and Path(run) == tmp_path / "api"
    assert [s for s, _ in run.sample_grids()] == [3, 6] and run.loss_plot.is_file()
    gan = ganforge.load(run)
    assert gan.step == 6 and gan.model.net == "mlp" and gan.model.z_dim == 8
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if k != "progress"]
    cli = subprocess.run([sys.executable, "-m", "ganforge", "train", "--data", str(tiny_digits), "--steps", "6",
                          "--seed", "3", "--dry-run", *flags], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert cli.returncode == 0, cli.stderr
    cli_cfg = json.loads(cli.stdout)["config"]
    api_cfg = json.loads(run.config.read_text())["config"]
    assert api_cfg == cli_cfg


def test_unknown_option_names_the_closest(tiny_digits):
    with pytest.raises(GanforgeError, match="unknown option 'lr_gen'; did you mean 'lr_g'"):
        ganforge.train(data=tiny_digits, lr_gen=1e-3)


@pytest.mark.parametrize("kwargs, says", [
    ({"resolution": [28]}, "img_resolution"), ({"net": ["dcgan"]}, "net must be one of"),
    ({"out": 123}, "out must be a path"), ({"resume": 123}, "resume must be a path"),
    ({"preset": ["default"]}, "preset must be a name"), ({"seed": True}, "seed must be an integer"),
    ({"eval_every": True}, "eval_every must be a non-negative integer"),
    ({"conditional": "no"}, "conditional must be True or False"),
    ({"num_classes": 5}, "num_classes is 5, but .* has 10 classes"),
])
def test_bad_api_arguments_are_one_clear_error(tiny_digits, tmp_path, kwargs, says):
    with pytest.raises(GanforgeError, match=says):
        ganforge.Trainer(data=tiny_digits, **{"out": tmp_path / "r", **TINY, **kwargs})
    assert not (tmp_path / "r").exists()


def test_conditional_false_means_unconditional(tiny_digits, tmp_path):
    trainer = ganforge.Trainer(data=tiny_digits, steps=2, out=tmp_path / "r", conditional=False, **TINY)
    assert trainer.cfg.model.num_classes == 0 and trainer.cfg.model.conditioning == "input"
    trainer.finish()


@pytest.mark.slow
def test_steps_yield_floats_and_keep_the_cadence(tiny_digits, tmp_path):
    with ganforge.Trainer(data=tiny_digits, steps=100, out=tmp_path / "r", **TINY) as trainer:
        first = list(trainer.steps(4))
        second = list(trainer.steps(3))
    stats = first + second
    assert [s["step"] for s in stats] == list(range(1, 8))
    for s in stats:
        assert {"step", "loss_d", "loss_g", "d_real", "d_fake"} <= set(s)
        assert all(type(v) in (int, float) and math.isfinite(v) for v in s.values())
        assert 0 <= s["d_real"] <= 1 and 0 <= s["d_fake"] <= 1
    run = RunDir(tmp_path / "r")
    # Logs every 2 steps across the two calls, grids every 3, and the final grid and plots.
    assert [r["step"] for r in run.read_metrics()] == [2, 4, 6]
    assert [s for s, _ in run.sample_grids()] == [3, 6, 7]
    assert run.loss_plot.is_file() and run.class_sheet.is_file()
    assert ganforge.load(run).step == 7


def test_steps_stop_at_the_budget(tiny_digits, tmp_path):
    trainer = ganforge.Trainer(data=tiny_digits, steps=5, out=tmp_path / "r", **TINY)
    assert len(list(trainer.steps(50))) == 5
    assert list(trainer.steps()) == []
    with pytest.raises(GanforgeError, match="positive whole number"):
        next(trainer.steps(0))
    run = trainer.finish()
    assert Path(trainer.finish()) == Path(run)  # again: it only returns the run
    # finish() released the run's lock: this object may not write to it any more
    with pytest.raises(GanforgeError, match="has released .* ganforge.Trainer\\(resume="):
        next(trainer.steps(1))
    assert ganforge.load(run).step == 5


def test_an_error_in_a_with_block_releases_the_run_for_good(tiny_digits, tmp_path):
    with pytest.raises(RuntimeError, match="plotting failed"):
        with ganforge.Trainer(data=tiny_digits, steps=5, out=tmp_path / "r", **TINY) as trainer:
            next(trainer.steps(1))
            raise RuntimeError("plotting failed")
    for call in (lambda: next(trainer.steps(1)), trainer.finish):  # the lock is gone: no more writes
        with pytest.raises(GanforgeError, match="has released .* ganforge.Trainer\\(resume="):
            call()
    ganforge.train(resume=tmp_path / "r", progress=False)  # the run itself goes on
    assert ganforge.load(tmp_path / "r").step == 5


def test_time_spent_between_steps_is_not_training_time(tiny_digits, tmp_path):
    trainer = ganforge.Trainer(data=tiny_digits, steps=5, out=tmp_path / "r", **TINY)
    for _ in trainer.steps(3):
        time.sleep(1.0)  # a notebook plotting: 2 s of it lies between the three steps
    assert trainer.state.elapsed_s < 1.0  # the budget and img_per_s count the steps alone
    trainer.finish()


@pytest.mark.slow
def test_resume_through_the_api(tiny_digits, tmp_path):
    run = ganforge.train(data=tiny_digits, steps=3, out=tmp_path / "r", **TINY)
    progress = TINY["progress"]
    ganforge.train(resume=run, steps=5, progress=progress)
    assert ganforge.load(run).step == 5
    with pytest.raises(GanforgeError, match="--preset cannot change when resuming"):
        ganforge.train(resume=run, steps=6, preset="tutorial")


@pytest.mark.slow
def test_readme_example_runs(tmp_path, monkeypatch):
    """The README's Python example, with its budget cut to a few steps."""
    text = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text[text.index("## Python API"):], re.S).group(1)
    code = code.replace('minutes=2', 'steps=4, log_every=2, sample_every=2, eval_every=0, progress=False')
    code = code.replace('trainer.steps(300)', 'trainer.steps(4)').replace('steps=600', 'steps=8')
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "runs" / "quick" / "loss.png").is_file()
