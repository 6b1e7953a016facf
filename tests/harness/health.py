"""Divergence injection: a Trainer whose step plants NaN or Inf at chosen steps."""

from __future__ import annotations
import math
import torch
from ganforge.training import Trainer


def poisoned(trainer: Trainer, at_steps: set[int], where: str, once: bool = True) -> Trainer:
    """Make the step that reaches each of `at_steps` go bad (`once`, or every time it is reached):
    a NaN weight in G, or an Inf loss_d."""
    step = trainer.step

    def bad_step():
        stats = step()
        if trainer.state.step in at_steps:
            if once:
                at_steps.discard(trainer.state.step)
            if where == "G":
                with torch.no_grad():
                    next(trainer.state.G.parameters()).view(-1)[0] = math.nan
            else:
                stats["loss_d"] = torch.tensor(math.inf)
        return stats

    trainer.step = bad_step
    return trainer
