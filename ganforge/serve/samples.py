"""Sample grids for the training view, read so that nothing but a grid training wrote can leave.

RUN/samples/ is a folder anyone who can write the run can plant files in. A symlink there can lead
anywhere; so can a hard link, which looks like a regular file. So a grid is found by its step number
alone (the name training gives it), opened without following symlinks (the folder too), and sent
only if it is a regular file with a single link that starts as a PNG.
"""

from __future__ import annotations

import os
import stat

from ganforge.errors import GanforgeError
from ganforge.rundir import RunDir

MAX_SAMPLE_BYTES = 64 << 20  # a 10x10 grid of 256x256 RGB images is ~10 MB as PNG
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_grid(run: RunDir, step: int) -> bytes | None:
    """The PNG bytes of the sample grid of `step`, or None if the run has none. Raises
    GanforgeError for a file there that is not one training wrote."""
    flags = os.O_RDONLY | os.O_NOFOLLOW
    name = run.sample(step).name
    try:
        folder = os.open(run.samples, flags | os.O_DIRECTORY)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise GanforgeError(f"{run.samples} cannot be read ({e.strerror}); it must be a "
                            "directory written by training, not a link") from None
    try:
        fd = os.open(name, flags | os.O_NONBLOCK, dir_fd=folder)  # NONBLOCK: a FIFO must not hang
    except FileNotFoundError:
        return None
    except OSError as e:
        raise GanforgeError(f"samples/{name} cannot be read ({e.strerror}); a link is not served") from None
    finally:
        os.close(folder)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_size > MAX_SAMPLE_BYTES:
            raise GanforgeError(f"samples/{name} is not a sample grid written by training (a link, a "
                                "special file or too large); it is not served")
        data = f.read(MAX_SAMPLE_BYTES + 1)
    if not data.startswith(PNG_SIGNATURE) or len(data) > MAX_SAMPLE_BYTES:
        raise GanforgeError(f"samples/{name} is not a PNG image; it is not served")
    return data
