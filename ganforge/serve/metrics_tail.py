"""metrics.jsonl, read the way `tail -f` reads it: the training view polls every 3 seconds, and a
long run logs 200,000 lines (20 MB), so each poll reads only the bytes appended since the last one.

Training only appends; a resume or a NaN roll-back rewrites the file through an atomic rename
(`RunDir.drop_metrics_after`), which gives it a new inode. So: the same inode grown means "read the
new tail"; a new inode, a shorter file or the same size with a new mtime means "read it again".

Lines are judged as `RunDir.read_metrics` judges them: anything that is not a JSON object is skipped
(a torn last line is kept back until its newline arrives). The records themselves are not kept: only
each metric's finite values by step, in compact arrays, which is all the training view draws.
"""

from __future__ import annotations

import json
import math
import os
import threading
from array import array
from pathlib import Path

from ganforge.rundir import RunDir

CHUNK = 1 << 20  # bytes read at a time: a first read of a large file never holds it whole
MAX_LINE = 1 << 16  # a metrics line is ~200 bytes; a longer one is junk, and is skipped unbuffered
MAX_SERIES = 64  # metric names kept; a file with a million keys must not take a million arrays
NOT_METRICS = frozenset({"step", "epoch", "time_s"})


class MetricsTail:
    """The metrics of one metrics.jsonl, kept current by reading what was appended since last time.

    `bytes_read` counts every byte read from the file, so a test can check that a poll costs
    O(new lines), not O(file)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.bytes_read = 0
        self._lock = threading.Lock()  # FastAPI answers polls from a thread pool
        self._reset()

    def _reset(self) -> None:
        self._stamp: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) last read
        self._offset = 0  # bytes consumed, up to the end of the last complete line
        self._partial = b""  # an unfinished last line, kept until its newline arrives
        self._skipping = False  # inside a line longer than MAX_LINE: drop bytes until its newline
        self.logged_step: int | None = None
        self.series: dict[str, tuple[array, array]] = {}  # name -> (steps, values), in file order

    def refresh(self) -> None:
        """Bring the metrics up to date with the file; a missing or unreadable file keeps what was read."""
        with self._lock:
            try:
                st = os.stat(self.path)
            except OSError:
                return
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            if stamp == self._stamp:
                return
            old = self._stamp
            if old is None or st.st_ino != old[0] or st.st_size <= old[1]:  # replaced or rewritten
                self._reset()
            try:
                self._read_from(self._offset, st.st_size)
            except OSError:  # e.g. no file descriptor free: try again at the next poll
                return
            self._stamp = stamp

    def _read_from(self, offset: int, size: int) -> None:
        with open(self.path, "rb") as f:
            f.seek(offset)
            left = size - offset  # only up to the size stat saw: a line being written waits its turn
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:  # truncated since stat: the next poll sees the shorter file
                    break
                left -= len(chunk)
                self.bytes_read += len(chunk)
                self._offset += len(chunk)
                self._take(chunk)

    def _take(self, chunk: bytes) -> None:
        *lines, rest = chunk.split(b"\n")
        for i, line in enumerate(lines):
            if i == 0:
                line, skipping = self._partial + line, self._skipping
                self._partial, self._skipping = b"", False
                if skipping:
                    continue
            self._add(line)
        if self._skipping or len(self._partial) + len(rest) > MAX_LINE:
            self._partial, self._skipping = b"", True
        else:
            self._partial += rest

    def _add(self, line: bytes) -> None:
        try:
            record = json.loads(line.decode(errors="replace"))
        except (ValueError, RecursionError):  # ValueError: bad JSON, or an integer over 4,300 digits
            return
        if not isinstance(record, dict):
            return
        step = record.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            return
        self.logged_step = step if self.logged_step is None else max(self.logged_step, step)
        for name, value in record.items():
            if name in NOT_METRICS or not RunDir.is_number(value):  # a huge int is not a point
                continue
            if name not in self.series:
                if len(self.series) >= MAX_SERIES:
                    continue
                self.series[name] = (array("d"), array("d"))
            value = float(value)
            if math.isfinite(value):
                steps, values = self.series[name]
                steps.append(step)
                values.append(value)

    def thinned(self, max_points: int) -> dict[str, tuple[list[float], list[float]]]:
        """Each metric's (steps, values), every k-th point so that at most `max_points` remain."""
        with self._lock:
            out = {}
            for name, (steps, values) in self.series.items():
                stride = max(1, math.ceil(len(steps) / max_points))
                out[name] = (steps[::stride].tolist(), values[::stride].tolist())
            return out
