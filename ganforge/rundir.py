"""The layout of a run directory, in one place, and its metrics log.

    RUN/config.json                    resolved configuration and ganforge version
    RUN/metrics.jsonl                  one JSON object per logging interval
    RUN/samples/step-NNNNNN.png        grids from a fixed noise batch, one row per class
    RUN/checkpoints/last.safetensors   the newest checkpoint (and best.safetensors by FID)
    RUN/loss.png, RUN/classes.png      loss curves and a per-class sheet, written at the end

Readers (generate, evaluate, serve, report) use this module alone: it imports nothing heavier
than json, so reading a run never pulls in the training machinery.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ganforge.errors import GanforgeError
from ganforge.files import atomic_write, remove_stale_temps

SAMPLE_NAME = re.compile(r"step-(\d+)\.png")


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

    def checkpoint(self, name: str = "last") -> Path:
        return self.checkpoints / f"{name}.safetensors"

    def sample(self, step: int) -> Path:
        return self.samples / f"step-{step:06d}.png"

    def sample_grids(self) -> list[tuple[int, Path]]:
        """(step, path) of every sample grid, oldest first."""
        if not self.samples.is_dir():
            return []
        return sorted((int(m.group(1)), p) for p in self.samples.glob("step-*.png")
                      if (m := SAMPLE_NAME.fullmatch(p.name)) and p.is_file())

    def holds_run(self) -> bool:
        """Whether the directory holds a run worth keeping. Training writes its first checkpoint
        before anything else, so a directory without one (a run killed while starting) holds
        nothing to resume and may be trained into afresh."""
        return self.checkpoint().is_file()

    def remove_stale_temps(self) -> None:
        """Clear what atomic writes cut short by a crash; only for a run no one else writes."""
        for d in (self.path, self.checkpoints, self.samples):
            remove_stale_temps(d)

    # -- metrics.jsonl ---------------------------------------------------------------------------
    def read_metrics(self) -> list[dict]:
        """The records of metrics.jsonl; a torn last line (from a crash) or any other line that is
        not a JSON object is ignored."""
        if not self.metrics.exists():
            return []
        records = []
        for line in self.metrics.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
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
                                "intact. Free some disk space or make the run directory writable, "
                                "then --resume") from None

    def drop_metrics_after(self, step: int) -> None:
        """Steps logged after `step` will be trained again (resume, roll-back): drop their records."""
        logged = ((r, r.get("step", 0)) for r in self.read_metrics())
        kept = [r for r, s in logged if isinstance(s, (int, float)) and s <= step]
        atomic_write(self.metrics, "".join(json.dumps(r) + "\n" for r in kept).encode())


def find_checkpoint(path: str | Path, name: str = "last") -> Path:
    """A checkpoint file given either the file itself or a run directory."""
    path = Path(path)
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
