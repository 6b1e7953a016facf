"""Optional TensorBoard logging (`--tensorboard`): the numbers of every metrics.jsonl record as
scalars (an evaluation's under "eval/") and every progress grid as an image, in RUN/tensorboard.
Only rank 0 writes. metrics.jsonl stays the record of truth; this is a second view of it for
people who already live in TensorBoard."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganforge.errors import GanforgeError

SKIP = ("step", "epoch")  # the x axis, not a curve


def summary_writer_class():
    """torch's SummaryWriter, or a GanforgeError saying how to install what it needs."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise GanforgeError("--tensorboard needs the tensorboard package: pip install 'ganforge[tensorboard]' "
                            "(or leave out --tensorboard)") from None
    return SummaryWriter


def scalars(record: dict, prefix: str = "") -> dict[str, float]:
    """The numbers of a metrics record, nested dicts flattened to "eval/fid"; booleans, strings
    and the step itself left out."""
    out = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out.update(scalars(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and key not in SKIP:
            out[prefix + key] = float(value)
    return out


class TensorBoardLog:
    """A SummaryWriter on RUN/tensorboard, opened at the first write (the package is checked at once)."""

    def __init__(self, directory: Path):
        self.directory, self._writer_class, self._writer = Path(directory), summary_writer_class(), None

    @property
    def writer(self):
        if self._writer is None:
            self._writer = self._writer_class(str(self.directory))
        return self._writer

    def record(self, record: dict) -> None:
        step = record.get("step")
        if isinstance(step, int):
            for tag, value in scalars(record).items():
                self.writer.add_scalar(tag, value, step)

    def grid(self, step: int, sheet: np.ndarray) -> None:
        """A uint8 sheet (H, W) or (H, W, 3), as `outputs.grid` makes it."""
        self.writer.add_image("samples", sheet, step, dataformats="HW" if sheet.ndim == 2 else "HWC")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
