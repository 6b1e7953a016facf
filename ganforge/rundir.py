"""The layout of a run directory, in one place.

    RUN/config.json                    resolved configuration and ganforge version
    RUN/metrics.jsonl                  one JSON object per logging interval
    RUN/samples/step-NNNNNN.png        grids from a fixed noise batch, one row per class
    RUN/checkpoints/last.safetensors   the newest checkpoint (and best.safetensors by FID)
    RUN/loss.png, RUN/classes.png      loss curves and a per-class sheet, written at the end
"""

from __future__ import annotations

from pathlib import Path

from ganforge.errors import GanforgeError

CONFIG = "config.json"
METRICS = "metrics.jsonl"
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
LOSS_PLOT = "loss.png"
CLASS_SHEET = "classes.png"


def checkpoint_path(run: Path, name: str = "last") -> Path:
    return Path(run) / CHECKPOINTS / f"{name}.safetensors"


def sample_path(run: Path, step: int) -> Path:
    return Path(run) / SAMPLES / f"step-{step:06d}.png"


def holds_run(run: Path) -> bool:
    """Whether `run` holds a run worth keeping. Training writes its first checkpoint before
    anything else, so a directory without one (a run killed while starting) holds nothing to
    resume and may be trained into afresh."""
    return checkpoint_path(Path(run)).is_file()


def find_checkpoint(path: str | Path, name: str = "last") -> Path:
    """A checkpoint file given either the file itself or a run directory."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise GanforgeError(f"{path} does not exist; give a run directory made by 'ganforge train' "
                            "or a .safetensors checkpoint")
    ckpt = checkpoint_path(path, name)
    if not ckpt.is_file():
        raise GanforgeError(f"{path} holds no checkpoint ({ckpt.relative_to(path)} is missing); "
                            "is it a run directory made by 'ganforge train'?")
    return ckpt
