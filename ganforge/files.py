"""Writing files so that a crash, a full disk or a kill never leaves half of one.

Every file ganforge writes goes through `atomic_write`: a temporary file in the same directory,
flushed, fsynced and renamed over the target. A reader sees the old file or the new one, never a
mix; on failure the old one is left as it was. The rename replaces whatever the name pointed to
(a planted symbolic link included) instead of writing through it.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ganforge.errors import GanforgeError

TEMP_SUFFIX = ".tmp"

# What to do about a failed write, by errno: the advice must fit the cause.
_NO_SPACE = "free some disk space (or raise the file-size limit)"
_NOT_WRITABLE = "permission denied or read-only: choose a writable --out or fix its permissions"
WRITE_HINTS = {errno.ENOSPC: _NO_SPACE, errno.EDQUOT: _NO_SPACE, errno.EFBIG: _NO_SPACE,
               errno.EACCES: _NOT_WRITABLE, errno.EPERM: _NOT_WRITABLE, errno.EROFS: _NOT_WRITABLE}


def write_hint(e: OSError) -> str:
    """The fix for a failed write, named after its real cause."""
    return WRITE_HINTS.get(e.errno, "choose another --out")


def umask() -> int:
    """The process umask, read without changing it (os.umask can only be read by setting it,
    which would race with other threads creating files)."""
    try:
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same directory, fsync and rename.

    The file gets mode 0666 & ~umask, like any file the user creates (mkstemp alone makes 0600).
    The directory must exist: only training creates directories (its run's own). On any failure
    (disk full, read-only directory) the temporary file is removed, the previous file at `path` is
    left untouched, and a GanforgeError names the cause.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise GanforgeError(f"cannot write {path}: the directory {path.parent} does not exist; "
                            "create it or choose another --out")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)
    except OSError as e:
        kept = "the previous file is intact" if path.exists() else "nothing was written"
        raise GanforgeError(f"cannot write {path}: {e.strerror or e}; {kept}. {write_hint(e).capitalize()}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())


def remove_stale_temps(directory: Path) -> None:
    """Delete the temporary files of atomic writes that a crash (SIGKILL, power loss) cut short.
    Only for a directory no other process is writing to (a run being resumed, under its lock)."""
    if Path(directory).is_dir():
        for tmp in Path(directory).glob(f".*{TEMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)
