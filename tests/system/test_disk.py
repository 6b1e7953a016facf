"""Disk problems during a checkpoint write: a full disk or a read-only directory leaves the
previous checkpoint intact, and the user is told so in one line.

Where the test may mount (root in a container that allows it), the full disk is a real 3 MB tmpfs
and the read-only directory a read-only bind mount; otherwise the full disk is a file-size limit
(RLIMIT_FSIZE, the same failing write() a full disk gives) and the read-only directory a chmod (as
a non-root user) or an injected EROFS (root that may not mount, who ignores permissions).
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganforge.rundir import RunDir
from ganforge.checkpoint import load_checkpoint
from ganforge.files import atomic_write
from ganforge.cli import cli
from ganforge.errors import GanforgeError
from ganforge.training import Trainer
from harness.disk import FAILURES, FailingFile, can_mount, raise_errno

from harness import faults








@pytest.mark.parametrize("failure", FAILURES)
def test_atomic_write_failure_keeps_the_previous_file(tmp_path, monkeypatch, failure):
    target, fake, reason = FAILURES[failure]
    path = tmp_path / "last.safetensors"
    atomic_write(path, b"old checkpoint")
    if failure == "write ENOSPC":
        real = os.fdopen
        fake = lambda fd, mode: FailingFile(real(fd, mode))  # noqa: E731
    monkeypatch.setattr(target, fake)
    with pytest.raises(GanforgeError, match=f"cannot write {path}: {reason}; the previous file is intact"):
        atomic_write(path, b"new checkpoint" * 1000)
    with pytest.raises(GanforgeError, match="nothing was written"):
        atomic_write(tmp_path / "new.json", b"{}")
    monkeypatch.undo()
    assert path.read_bytes() == b"old checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors"]  # no temporary file left


def test_training_stops_when_the_disk_fills_keeping_the_last_checkpoint(tiny_config, tmp_path, monkeypatch):
    real_fsync, calls = os.fsync, []

    def fsync(fd):  # the 2nd checkpoint (step 3) is written; from the 3rd on the disk is full
        if os.fstat(fd).st_size > 100_000:
            calls.append(fd)
            if len(calls) > 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    trainer = Trainer(tiny_config.replace(steps=9), tmp_path / "run", progress=False)
    with pytest.raises(GanforgeError, match="No space left on device; the previous file is intact"):
        trainer.train()
    assert load_checkpoint(RunDir(tmp_path / "run").checkpoint())[1]["step"] == 3
    assert faults.temp_files(tmp_path / "run") == []




MOUNT = can_mount()


def resume(run: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["train", "--resume", str(run), "--steps", "50", "--quiet"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def assert_refused_and_intact(code: int, out: str, run: Path, reason: str, before: bytes) -> None:
    assert code == 2, out
    assert out.startswith(f"error: cannot write {RunDir(run).checkpoint()}: {reason}; the previous "
                          "file is intact") and out.count("\n") == 1, out
    assert RunDir(run).checkpoint().read_bytes() == before
    assert load_checkpoint(RunDir(run).checkpoint())[1]["step"] == 6


def test_cli_full_disk(tiny_run, tmp_path):
    if MOUNT:  # a real full disk: the old checkpoint (2 MB) fits in 3 MB, a second copy does not
        mnt = tmp_path / "mnt"
        mnt.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], check=True)
        try:
            run = Path(shutil.copytree(tiny_run, mnt / "run"))
            before = RunDir(run).checkpoint().read_bytes()
            assert_refused_and_intact(*resume(run), run, "No space left on device", before)
            assert faults.temp_files(run) == []
        finally:
            subprocess.run(["umount", str(mnt)], check=True)
    # Anywhere: a file-size limit makes the checkpoint write fail part-way, as a full disk does.
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    before = RunDir(run).checkpoint().read_bytes()
    limit = len(before) // 2
    proc = subprocess.run([sys.executable, "-m", "ganforge", "train", "--resume", str(run), "--steps", "50",
                           "--quiet"], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(faults.REPO)},
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    assert_refused_and_intact(proc.returncode, proc.stderr, run, "File too large", before)
    assert faults.temp_files(run) == []


def test_cli_read_only_checkpoint_directory(tiny_run, tmp_path, monkeypatch):
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    ckpts = RunDir(run).checkpoint().parent
    before = RunDir(run).checkpoint().read_bytes()
    if os.geteuid() != 0:
        ckpts.chmod(0o555)
        reason = "Permission denied"
    elif MOUNT:
        subprocess.run(["mount", "--bind", str(ckpts), str(ckpts)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ckpts)], check=True)
        reason = "Read-only file system"
    else:  # root ignores permissions and may not mount: inject what a read-only mount returns
        monkeypatch.setattr("tempfile.mkstemp", raise_errno(errno.EROFS))
        reason = "Read-only file system"
    try:
        assert_refused_and_intact(*resume(run), run, reason, before)
    finally:
        if os.geteuid() != 0:
            ckpts.chmod(0o755)
        elif MOUNT:
            subprocess.run(["umount", str(ckpts)], check=True)
