"""Disk faults: failing writes (ENOSPC, EROFS, ...) and whether this machine can mount a tiny tmpfs."""

from __future__ import annotations
import errno
import os
import shutil
import subprocess
import tempfile


def raise_errno(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return fail


class FailingFile:
    """A file object whose write() fails like a full disk."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        self.f.write(data[:len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.f, name)


FAILURES = {
    "mkstemp EROFS": ("tempfile.mkstemp", raise_errno(errno.EROFS), "Read-only file system"),
    "write ENOSPC": ("os.fdopen", None, "No space left on device"),
    "fsync ENOSPC": ("os.fsync", raise_errno(errno.ENOSPC), "No space left on device"),
    "rename EIO": ("os.replace", raise_errno(errno.EIO), "Input/output error"),
}


def can_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    with tempfile.TemporaryDirectory() as d:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d], capture_output=True).returncode:
            return False
        subprocess.run(["umount", d], check=True)
    return True
