"""`ganforge ...` with test-only hooks, for tests/test_dist.py to launch under torchrun:

    python -m torch.distributed.run --nproc_per_node=2 tests/harness/dist_worker.py [--dump DIR] [--fail-at K] train ...

--dump DIR   each rank writes its final training state (G, D, G_ema, optimizers, noise RNG) to
             DIR/rank<R>.safetensors, so the test can compare what the ranks hold.
--fail-at K  rank 1 raises at step K, as a bug or a lost device would.
The hooks live here, not in ganforge: the product has no test switches.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from safetensors.torch import save_file

from ganforge.cli import main
from ganforge.training import Trainer


def dump_on_exit(directory: Path) -> None:
    train = Trainer.train

    def train_and_dump(self):
        try:
            return train(self)
        finally:
            tensors, _ = self.state.tensors_and_meta()
            directory.mkdir(parents=True, exist_ok=True)
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                      directory / f"rank{self.rank}.safetensors")

    Trainer.train = train_and_dump


def fail_at(step: int) -> None:
    run_step = Trainer.step

    def failing_step(self):
        if self.rank == 1 and self.state.step == step:
            raise RuntimeError(f"injected failure on rank 1 at step {step} (at t={time.time():.3f})")
        return run_step(self)

    Trainer.step = failing_step


if __name__ == "__main__":
    hooks = {"--dump": lambda v: dump_on_exit(Path(v)), "--fail-at": lambda v: fail_at(int(v))}
    while sys.argv[1] in hooks:  # the hooks come first, then ganforge's own arguments
        hooks[sys.argv[1]](sys.argv[2])
        del sys.argv[1:3]
    main()
