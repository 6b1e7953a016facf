"""Writing files so that a crash, a full disk or a kill never leaves half of one.

Every file ganforge writes goes through `atomic_write`: a temporary file in the same directory,
flushed, fsynced and renamed over the target. A reader sees the old file or the new one, never a
mix; on failure the old one is left as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ganforge.errors import GanforgeError

TEMP_SUFFIX = ".tmp"


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same directory, fsync and rename.

    On any failure (disk full, read-only directory) the temporary file is removed, the previous
    file at `path` is left untouched, and a GanforgeError says so.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
        with os.fdopen(fd, "wb") as f:
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
        raise GanforgeError(f"cannot write {path}: {e.strerror or e}; {kept}. "
                            "Free some disk space or choose a writable --out") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())


def remove_stale_temps(directory: Path) -> None:
    """Delete the temporary files of atomic writes that a crash (SIGKILL, power loss) cut short.
    Only for a directory no other process is writing to (a run being resumed)."""
    if Path(directory).is_dir():
        for tmp in Path(directory).glob(f".*{TEMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)
