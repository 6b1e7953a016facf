"""Which images form each real batch: a pure function of (seed, epoch, batch number)."""

from __future__ import annotations

import torch

from ganforge.errors import GanforgeError


class BatchOrder:
    """Which images form real batch number b.

    Epoch e's permutation depends only on (seed, e), so any batch can be found without carried
    state: a resumed run, or any number of data-parallel ranks, see exactly the same order.
    The last incomplete batch of each epoch is dropped.
    """

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device | str = "cpu"):
        if batch_size > n:
            raise GanforgeError(f"batch_size {batch_size} is larger than the data set ({n} images); "
                                f"use --batch-size {n} or less")
        self.n, self.batch_size, self.seed, self.device = n, batch_size, seed, device
        self.per_epoch = n // batch_size
        self._epoch, self._perm = -1, None

    def indices(self, b: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        epoch, pos = divmod(b, self.per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=gen).to(self.device)
        return self._perm[pos * self.batch_size:(pos + 1) * self.batch_size][rank::world]
