"""The run directory's lock (RunDir.lock, issue 12): one writer at a time, named in the refusal;
readers need no lock; the kernel releases it when the holder dies, even by SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness import faults
from ganforge.errors import GanforgeError
from ganforge.rundir import RunDir
from test_hostile import assert_refused, copy_run, run_cli

HOLD = "import sys, time; from ganforge.rundir import RunDir\nwith RunDir(sys.argv[1]).lock():\n" \
       "    print('locked', flush=True); time.sleep(120)"


def hold_lock(run: Path) -> subprocess.Popen:
    """Another process holding the run's lock (a stand-in for a live training)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(faults.REPO)})
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_is_refused_naming_the_holder_and_sigkill_releases(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path)
    before = RunDir(run).checkpoint().read_bytes()
    holder = hold_lock(run)
    try:
        with pytest.raises(GanforgeError, match=f"being written by another ganforge process \\(PID {holder.pid}\\)"):
            with RunDir(run).lock():
                pass
        assert_refused(["train", "--resume", str(run), "--steps", "8", "--quiet"], f"PID {holder.pid}")
        # Readers take no lock and keep working on a live run.
        code, out = run_cli(["generate", str(run), "--n", "4", "--out", str(tmp_path / "x.png")])
        assert code == 0, out
        code, out = run_cli(["report", str(run), "--out", str(tmp_path / "r.png")])
        assert code == 0, out
        assert RunDir(run).checkpoint().read_bytes() == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with RunDir(run).lock():  # the kernel released the dead holder's lock
        assert RunDir(run).lock_file.read_text().strip() == str(os.getpid())


def test_lock_file_link_is_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to(victim)
    with pytest.raises(GanforgeError, match="cannot lock"):
        with RunDir(run).lock():
            pass
    assert victim.read_text() == "precious"


def test_released_lock_can_be_taken_again(tmp_path):
    run = RunDir(tmp_path / "new" / "run")
    with run.lock():
        pass
    with run.lock():
        pass
    assert run.lock_file.is_file()


@pytest.mark.slow
def test_two_trainings_into_one_out_and_resume_while_training(tiny_digits, tmp_path):
    run = tmp_path / "run"
    first = faults.spawn(faults.train_args(tiny_digits, run, resume=False))
    try:
        faults.wait_for_new_checkpoint(first, run, None, timeout_s=120)
        before_steps = len(RunDir(run).read_metrics())
        for args in (faults.train_args(tiny_digits, run, resume=False, steps=3),
                     faults.train_args(tiny_digits, run, resume=True, steps=3)):
            second = faults.spawn(args)
            _, err = second.communicate(timeout=120)
            assert second.returncode == 2, err
            assert err.startswith("error: ") and err.count("\n") == 1, err
            assert f"PID {first.pid}" in err, err
        assert first.poll() is None  # the first training goes on, undisturbed
        steps = [r["step"] for r in RunDir(run).read_metrics()]
        assert len(steps) >= before_steps and len(steps) == len(set(steps))  # no step logged twice
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    # SIGKILL released the lock: the run resumes.
    proc = faults.spawn(["train", "--resume", str(run), "--steps", str(_last_step(run) + 2), "--quiet"])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err


def _last_step(run: Path) -> int:
    from ganforge.checkpoint import load_checkpoint
    return load_checkpoint(RunDir(run).checkpoint())[1]["step"]
