"""Crash safety: real training processes killed with SIGKILL at seeded random moments and at exact
points inside a checkpoint write, then stopped with SIGINT/SIGTERM; after each, the last checkpoint
loads and --resume continues from it, ending exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import random
import signal

import pytest
import torch

import ganforge
from ganforge.checkpoint import load_checkpoint, unprefixed
from ganforge.config import preset
from ganforge.training import train

from harness import faults

KILLS = 5  # random SIGKILLs (alternately while starting and while training); 3 more at exact points below


def check_checkpoint(run, previous_step: int | None) -> int:
    """The checkpoint loads as a run state and as a GAN, is finite, and did not go back in time."""
    tensors, meta = load_checkpoint(run / faults.CHECKPOINT)
    assert all(t.isfinite().all() for t in tensors.values() if t.is_floating_point())
    gan = ganforge.load(run)
    assert gan.step == meta["step"]
    assert gan.sample(2, labels=3, seed=0).shape == (2, 1, 28, 28)
    if previous_step is not None:
        assert meta["step"] >= previous_step
    return meta["step"]


def finish(run, steps: int) -> None:
    proc = faults.spawn(faults.train_args(None, run, resume=True, steps=steps))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


def test_killed_anywhere_resumes_to_the_same_result(tiny_digits, tmp_path):
    run, rng, step = tmp_path / "run", random.Random(8), None
    for i in range(KILLS):
        kill = faults.kill_once(tiny_digits, run, rng, "starting" if i % 2 == 0 else "training")
        if kill.step is not None:
            step = check_checkpoint(run, step)

    # Deterministic kills inside the 2nd checkpoint write of a resumed process.
    for point in faults.KILL_POINTS:
        before = step
        proc = faults.spawn(faults.train_args(tiny_digits, run, resume=True), point, nth=2)
        proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL
        step = check_checkpoint(run, step)
        # The first write of this process completed (step + 1); the second died at `point`.
        assert step == before + (2 if point == "after-rename" else 1), point
        assert bool(faults.temp_files(run)) == (point != "after-rename")

    # SIGINT and SIGTERM stop after the current step, save it, and exit with 128 + signum.
    for sig in (signal.SIGINT, signal.SIGTERM):
        before = faults.checkpoint_id(run)
        proc = faults.spawn(faults.train_args(tiny_digits, run, resume=True))
        faults.wait_for_new_checkpoint(proc, run, before)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 128 + sig, err
        step = check_checkpoint(run, step)
        assert f"stopped by {sig.name} at step {step}; checkpoint saved" in err

    final = step + 3
    finish(run, final)
    assert faults.temp_files(run) == []  # resuming cleared the leftovers of killed writes
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, final + 1))  # nothing lost, nothing twice

    # The same budget without interruptions gives the same generator.
    cfg = preset("default").replace(data=str(tiny_digits), width=16, z_dim=8, batch_size=32, steps=final,
                                    minutes=None, checkpoint_every=final, log_every=final,
                                    sample_every=final, device="cpu")
    torch.set_num_threads(1)  # as the subprocesses (OMP_NUM_THREADS=1)
    clean = train(cfg, tmp_path / "clean", progress=False)
    got, want = (load_checkpoint(r / faults.CHECKPOINT)[0] for r in (run, clean))
    for name, value in unprefixed("G", want).items():
        torch.testing.assert_close(unprefixed("G", got)[name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_resume_without_checkpoint_starts_afresh(tiny_digits, tmp_path):
    """A run killed before its first checkpoint holds nothing to resume: training into the same
    directory again is allowed, and --resume says clearly there is nothing there."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)  # what such a run leaves: its directories and lock,
    (run / "samples").mkdir()  # and the temporary file of its first checkpoint
    (run / ".lock").write_text("12345\n")
    (run / "checkpoints" / ".last.safetensors.x1y2.tmp").write_bytes(b"half")
    with pytest.raises(ganforge.errors.GanforgeError, match="no checkpoint"):
        train(preset("default").replace(data=str(tiny_digits), steps=1, device="cpu"), run, resume=True,
              progress=False)
    cfg = preset("default").replace(data=str(tiny_digits), width=16, z_dim=8, batch_size=32, steps=2,
                                    minutes=None, device="cpu")
    train(cfg, run, progress=False)
    assert load_checkpoint(run / faults.CHECKPOINT)[1]["step"] == 2
