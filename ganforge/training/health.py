"""Training health: divergence (NaN or Inf) and mode collapse, as pure decisions.

The loop calls `nonfinite` after every step. On divergence it rolls back to the last checkpoint
on disk (which `save_checkpoint` guarantees is finite) and retries with both learning rates
multiplied by `DIVERGENCE_LR_FACTOR`; after `DIVERGENCE_RETRIES` roll-backs in one process it
stops with a GanforgeError. `mode_collapse` reads an evaluation record and says whether to warn.
"""

from __future__ import annotations

import torch
import torch.nn as nn

DIVERGENCE_RETRIES = 3  # roll-backs per process before training gives up
DIVERGENCE_LR_FACTOR = 0.5  # each roll-back halves lr_g and lr_d (a smaller step is the usual cure)

COLLAPSE_RECALL = 0.2  # below this recall, samples cover a small part of the data (collapse)


def nonfinite(losses: dict[str, torch.Tensor], networks: dict[str, nn.Module]) -> str | None:
    """The name of the first loss or network holding NaN or Inf, else None.

    One fused norm per network and a single device sync keep this cheap enough for every step:
    the norm of a tensor is NaN or Inf exactly when one of its values is (or it overflows, which
    is divergence too).
    """
    checks = dict(losses)
    for name, net in networks.items():
        params = [p.detach() for p in net.parameters()]
        checks[name] = torch.stack(torch._foreach_norm(params)).sum() if params else torch.zeros(())
    finite = torch.stack([v.detach().float().isfinite().all() for v in checks.values()]).tolist()
    return next((name for name, ok in zip(checks, finite) if not ok), None)


def mode_collapse(record: dict, num_classes: int) -> str | None:
    """A warning when an evaluation record shows mode collapse, else None.

    Reads the keys it finds: "classes_covered" (how many of the data's `num_classes` classes a
    classifier finds among the samples; every class should appear) and "recall" (the share of
    real images near some sample, in [0, 1]). A record without them gives no warning.
    """
    problems = []
    covered = record.get("classes_covered")
    if isinstance(covered, (int, float)) and num_classes > 0 and covered < num_classes:
        problems.append(f"samples cover {covered:g} of {num_classes} classes")
    recall = record.get("recall")
    if isinstance(recall, (int, float)) and recall < COLLAPSE_RECALL:
        problems.append(f"recall {recall:.3g} is below {COLLAPSE_RECALL}")
    if not problems:
        return None
    step = f" at step {record['step']}" if "step" in record else ""
    return (f"possible mode collapse{step}: {'; '.join(problems)}. Try --augment 0.2, --r1 10, "
            "--spectral-norm or lower learning rates")
