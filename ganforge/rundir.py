"""The layout of a run directory, in one place, and its metrics log.

    RUN/config.json                    resolved configuration and ganforge version
    RUN/metrics.jsonl                  one JSON object per logging interval
    RUN/samples/step-NNNNNN.png        grids from a fixed noise batch, one row per class
    RUN/checkpoints/last.safetensors   the newest checkpoint (and best.safetensors by FID)
    RUN/loss.png, RUN/classes.png      loss curves and a per-class sheet, written at the end
    RUN/.lock                          held (flock) by the one process writing the run

Readers (generate, evaluate, serve, report) use this module alone: it imports nothing heavier
than json, so reading a run never pulls in the training machinery. Readers take no lock: every
file is replaced atomically, so a live run can be read at any time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
from pathlib import Path
from typing import Iterator

from ganforge.errors import GanforgeError
from ganforge.files import TEMP_SUFFIX, atomic_write, remove_stale_temps, write_hint

PRETRAINED_NAME = "pretrained"  # a run name that means the model shipped with ganforge
PRETRAINED = Path(__file__).resolve().parent / "assets" / "pretrained.safetensors"
log = logging.getLogger("ganforge")
SAMPLE_NAME = re.compile(r"step-(\d+)\.png")
LOCK_NAME = ".lock"


def pick(n: int, most: int) -> list[int]:
    """Up to `most` (at least 2) indices of n evenly spread, always keeping the first and the last."""
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


class RunDir:
    """A run directory: where each of its files lives, and its metrics.jsonl."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:  # a RunDir goes wherever a path does: ganforge.load(run), Path(run)
        return str(self.path)

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def loss_plot(self) -> Path:
        return self.path / "loss.png"

    @property
    def class_sheet(self) -> Path:
        return self.path / "classes.png"

    @property
    def report(self) -> Path:
        return self.path / "report.png"

    @property
    def tensorboard(self) -> Path:  # event files, with --tensorboard
        return self.path / "tensorboard"

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_NAME

    def checkpoint(self, name: str = "last") -> Path:
        return self.checkpoints / f"{name}.safetensors"

    def sample(self, step: int) -> Path:
        return self.samples / f"step-{step:06d}.png"

    def sample_grids(self, most: int | None = None) -> list[tuple[int, Path]]:
        """(step, path) of every sample grid, oldest first; with `most`, at most that many spread
        evenly over the run (the timelapse's frames, the playground slider's stops)."""
        if not self.samples.is_dir():
            return []
        grids = sorted((int(m.group(1)), p) for p in self.samples.glob("step-*.png")
                       if (m := SAMPLE_NAME.fullmatch(p.name)) and p.is_file())
        return grids if most is None else [grids[i] for i in pick(len(grids), most)]

    def holds_run(self) -> bool:
        """Whether the directory holds a run worth keeping. Training writes its first checkpoint
        before anything else, so a directory without one (a run killed while starting) holds
        nothing to resume and may be trained into afresh."""
        return self.checkpoint().is_file()

    def refuse_foreign(self) -> None:
        """Refuse (GanforgeError) to train into a directory that holds something other than a run:
        training would write config.json, metrics.jsonl and plots among someone else's files. A
        missing or empty directory, a run, or what a run killed while starting leaves (its lock,
        an empty samples/, checkpoints/ with the temporary file of its first checkpoint) are fine."""
        if not self.path.exists() or self.holds_run():
            return
        if not self.path.is_dir():
            raise GanforgeError(f"--out {self.path} is a file; give a new or empty directory")
        try:
            entries = {p.name: p for p in self.path.iterdir()}
            entries.pop(LOCK_NAME, None)
            checkpoints, samples = entries.pop(self.checkpoints.name, None), entries.pop(self.samples.name, None)
            leftovers_only = all(d is None or (d.is_dir() and all(
                p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX) for p in d.iterdir()))
                for d in (checkpoints, samples))
        except OSError as e:
            raise GanforgeError(f"cannot read {self.path}: {e.strerror or e}; choose another --out") from None
        if entries or not leftovers_only:
            shown = ", ".join(sorted(entries)[:3]) or self.checkpoints.name
            raise GanforgeError(f"--out {self.path} is not empty ({shown}...) and holds no ganforge run; "
                                "training would write its files among yours: choose a new or empty directory")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's lock (an exclusive flock on RUN/.lock, creating RUN) while writing it.
        A second writer is refused with the PID of the holder. The kernel drops the lock when the
        holder exits, even by SIGKILL, so a crash never leaves a run locked."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            # O_NOFOLLOW: a planted .lock link must not make us truncate the file it points to.
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise GanforgeError(f"cannot lock {self.lock_file}: {e.strerror or e}; "
                                f"{write_hint(e)}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                raise GanforgeError(f"{self.path} is being written by another ganforge process (PID "
                                    f"{holder}); wait for it to finish or stop it, or choose another "
                                    "--out") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the flock; the file stays, as unlinking it would race a waiter

    def make_dirs(self) -> None:
        """The run directory and its sub-directories: the only directories ganforge creates
        (with missing parents for the run itself, as for the default runs/NAME)."""
        for d in (self.path, self.checkpoints, self.samples):
            try:
                d.mkdir(parents=d == self.path, exist_ok=True)
            except OSError as e:
                raise GanforgeError(f"cannot create {d}: {e.strerror or e}; {write_hint(e)}") from None

    def remove_stale_temps(self) -> None:
        """Clear what atomic writes cut short by a crash; only for a run no one else writes."""
        for d in (self.path, self.checkpoints, self.samples):
            remove_stale_temps(d)

    # -- metrics.jsonl ---------------------------------------------------------------------------
    @staticmethod
    def is_number(value) -> bool:
        """Whether a value read from metrics.jsonl (or a checkpoint's JSON) is a number a float
        can hold: JSON allows a 400-digit integer, which is not one. NaN and Inf are numbers here."""
        return isinstance(value, (int, float)) and not isinstance(value, bool) and \
            (isinstance(value, float) or abs(value) < 1e308)

    def read_metrics(self) -> list[dict]:
        """The records of metrics.jsonl; a torn last line (from a crash) or any other line that is
        not a JSON object is ignored."""
        if not self.metrics.exists():
            return []
        records = []
        for line in self.metrics.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):  # ValueError: also an integer over 4300 digits
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def append_metrics(self, record: dict) -> None:
        try:
            with open(self.metrics, "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as e:  # a full disk or read-only directory: stop with a message, not a traceback
            raise GanforgeError(f"cannot write {self.metrics}: {e.strerror or e}; the last checkpoint is "
                                f"intact. {write_hint(e).capitalize()}, then --resume") from None

    def drop_metrics_after(self, step: int) -> None:
        """Steps logged after `step` will be trained again (resume, roll-back): drop their records."""
        logged = ((r, r.get("step", 0)) for r in self.read_metrics())
        kept = [r for r, s in logged if isinstance(s, (int, float)) and s <= step]
        atomic_write(self.metrics, "".join(json.dumps(r) + "\n" for r in kept).encode())


def names_pretrained(path: str | Path) -> bool:
    """Whether `path` means the digit model shipped with ganforge: the word "pretrained", with no
    file or directory of that name here (one would win)."""
    return str(path) == PRETRAINED_NAME and not Path(path).exists()


def find_checkpoint(path: str | Path, name: str = "last") -> Path:
    """A checkpoint file given either the file itself or a run directory; "pretrained" names the
    digit model shipped with ganforge, unless a directory of that name is there (it wins)."""
    path = Path(path)
    if names_pretrained(path):
        return PRETRAINED
    if str(path) == PRETRAINED_NAME:
        log.warning("'pretrained' is a directory here, so it is used; give the path of the shipped "
                    "model (%s) to use that instead", PRETRAINED)
    if path.is_file():
        return path
    if not path.exists():
        raise GanforgeError(f"{path} does not exist; give a run directory made by 'ganforge train' "
                            "or a .safetensors checkpoint")
    ckpt = RunDir(path).checkpoint(name)
    if not ckpt.is_file():
        raise GanforgeError(f"{path} holds no checkpoint ({ckpt.relative_to(path)} is missing); "
                            "is it a run directory made by 'ganforge train'?")
    return ckpt
