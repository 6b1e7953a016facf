"""Training: the loop (`Trainer`, `train`), its state and checkpoints, signals and health.

Only the command line and the top-level API import this package; nothing below it does.
"""

from ganforge.training.loop import Trainer, train
from ganforge.training.signals import Interrupted
from ganforge.training.state import resolve

__all__ = ["Interrupted", "Trainer", "resolve", "train"]
