"""Fault injection shared by the reliability tests and `scripts/reliability_record.py`.

Training runs in real subprocesses (`python -m ganforge train`) that are killed from outside at
seeded random moments, or that kill themselves at an exact point of a checkpoint write: run this
file as `python tests/harness/faults.py POINT N -- TRAIN ARGS...` and the N-th checkpoint write dies with
SIGKILL at POINT (see `KILL_POINTS`).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECKPOINT = Path("checkpoints") / "last.safetensors"

# Where a self-inflicted SIGKILL lands inside atomic_write of the checkpoint.
KILL_POINTS = {
    "half-written": "half the temporary file is on disk, nothing synced or renamed",
    "before-rename": "the temporary file is complete and synced, not yet renamed",
    "after-rename": "renamed over the old checkpoint, directory not yet synced",
}


def train_args(data: Path, run: Path, resume: bool, steps: int = 100_000, width: int = 16) -> list[str]:
    """`ganforge train` flags for a tiny run that checkpoints every step (so kills often land in
    a checkpoint write)."""
    budget = ["--steps", str(steps), "--quiet"]
    if resume:
        return ["train", "--resume", str(run), *budget]
    return ["train", "--data", str(data), "--out", str(run), "--width", str(width), "--z-dim", "8",
            "--batch-size", "32", "--checkpoint-every", "1", "--log-every", "1", "--sample-every", "5",
            "--device", "cpu", *budget]


def spawn(args: list[str], kill_point: str | None = None, nth: int = 1) -> subprocess.Popen:
    prefix = [str(Path(__file__).resolve()), kill_point, str(nth), "--"] if kill_point else ["-m", "ganforge"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, *prefix, *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def checkpoint_id(run: Path) -> tuple[int, int] | None:
    """(inode, mtime) of the run's checkpoint: a new write replaces the inode."""
    try:
        st = (run / CHECKPOINT).stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def wait_for_new_checkpoint(proc: subprocess.Popen, run: Path, before, timeout_s: float = 300) -> None:
    """Block until `proc` has replaced the checkpoint `before` (i.e. is training)."""
    deadline = time.monotonic() + timeout_s
    while checkpoint_id(run) in (before, None):
        if proc.poll() is not None:
            raise RuntimeError(f"training exited early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise TimeoutError("training wrote no checkpoint")
        time.sleep(0.005)


def temp_files(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob(".*.tmp")) if (run / "checkpoints").is_dir() else []


@dataclass
class Kill:
    """One SIGKILL and what was found afterwards."""

    phase: str  # "starting" (any moment after spawn) or "training" (after its first new checkpoint)
    delay_s: float
    in_write: bool  # a checkpoint temporary file was left: the kill landed inside a write
    step: int | None  # the step of the checkpoint found afterwards (None: no checkpoint yet)


def kill_once(data: Path, run: Path, rng: random.Random, phase: str, width: int = 16) -> Kill:
    """Start (or resume) training, SIGKILL it at a random moment, report what is on disk.

    The checkpoint is checked by the caller; this only kills and inspects file names.
    """
    from ganforge.checkpoint import load_checkpoint

    for tmp in temp_files(run):  # leftovers of an earlier kill would hide this one's
        tmp.unlink()
    before = checkpoint_id(run)
    proc = spawn(train_args(data, run, resume=before is not None, width=width))
    try:
        if phase == "training":
            wait_for_new_checkpoint(proc, run, before)
            delay = rng.uniform(0, 0.5)
        else:
            delay = rng.uniform(0, 2.5)  # from spawn: imports, data loading, first checkpoint
        time.sleep(delay)
        if proc.poll() is not None:
            raise RuntimeError(f"training exited before the kill ({proc.returncode}): {proc.stderr.read()}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    step = int(load_checkpoint(run / CHECKPOINT)[1]["step"]) if checkpoint_id(run) else None
    return Kill(phase, round(delay, 3), bool(temp_files(run)), step)


def _die_inside_checkpoint_write(point: str, nth: int) -> None:
    """Patch the calls atomic_write makes so that the nth checkpoint write SIGKILLs us at `point`."""
    import tempfile

    real_mkstemp, real_fsync, real_replace = tempfile.mkstemp, os.fsync, os.replace
    state = {"n": 0, "fd": None}

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def mkstemp(*args, prefix=None, **kwargs):
        fd, name = real_mkstemp(*args, prefix=prefix, **kwargs)
        if prefix == ".last.safetensors.":
            state["n"], state["fd"] = state["n"] + 1, fd
        return fd, name

    def fsync(fd):
        if fd == state["fd"] and state["n"] == nth and point == "half-written":
            os.ftruncate(fd, os.fstat(fd).st_size // 2)
            die()
        real_fsync(fd)
        if fd == state["fd"] and state["n"] == nth and point == "before-rename":
            die()

    def replace(src, dst):
        real_replace(src, dst)
        if str(dst).endswith("last.safetensors") and state["n"] == nth and point == "after-rename":
            die()

    tempfile.mkstemp, os.fsync, os.replace = mkstemp, fsync, replace


if __name__ == "__main__":
    point, nth, sep, *train = sys.argv[1:]
    assert point in KILL_POINTS and sep == "--", sys.argv
    _die_inside_checkpoint_write(point, int(nth))
    from ganforge.cli import cli

    cli(train, prog_name="ganforge")
