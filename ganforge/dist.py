"""Data-parallel training with `torchrun`: the launcher's environment, the process group, the
rank-0-writes rule, SyncBatchNorm and the DDP wrapping of G and D.

`torchrun --nproc_per_node=N -m ganforge train ...` starts N copies of the same command with
RANK, LOCAL_RANK and WORLD_SIZE set. Without those variables everything here is the identity:
rank 0 of a world of 1, no process group, no wrappers.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from ganforge.config import DEVICES
from ganforge.errors import GanforgeError

# Every step has collectives, so a rank that died or hangs is noticed at the next one; the
# longest legitimate wait is rank 0 writing a checkpoint or sample grid while the others wait.
TIMEOUT = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class Env:
    """Where this process sits in the job (from torchrun's variables)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env() -> Env:
    """RANK, LOCAL_RANK and WORLD_SIZE as torchrun sets them; a single process when unset."""
    values = {}
    for field, var in (("rank", "RANK"), ("local_rank", "LOCAL_RANK"), ("world_size", "WORLD_SIZE")):
        raw = os.environ.get(var)
        try:
            values[field] = int(raw) if raw is not None else Env.__dataclass_fields__[field].default
        except ValueError:
            raise GanforgeError(f"environment variable {var}={raw!r} is not an integer; "
                                "launch with torchrun or unset it") from None
    e = Env(**values)
    if not (e.world_size >= 1 and 0 <= e.rank < e.world_size and e.local_rank >= 0):
        raise GanforgeError(f"inconsistent torchrun environment (RANK={e.rank}, WORLD_SIZE={e.world_size}, "
                            f"LOCAL_RANK={e.local_rank}); launch with torchrun or unset them")
    return e


def is_main() -> bool:
    """True on the process that writes files (rank 0, or the only process)."""
    return env().is_main


def device_for(name: str) -> torch.device:
    """The device this process trains on; under torchrun each process of a node takes GPU
    LOCAL_RANK. "auto" means CUDA when PyTorch sees a GPU, else Apple's mps when present, else
    the CPU."""
    local_rank = env().local_rank
    if name not in DEVICES:
        raise GanforgeError(f"device must be one of {', '.join(DEVICES)} (got {name!r})")
    if name == "auto":
        name = best_device_type()
    if name == "mps" and not mps_available():
        raise GanforgeError("--device mps asked for, but PyTorch sees no Apple GPU (mps); use --device cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GanforgeError("--device cuda asked for, but PyTorch sees no CUDA GPU; use --device cpu")
    if name == "cuda" and local_rank >= torch.cuda.device_count():
        raise GanforgeError(f"LOCAL_RANK {local_rank} but this node has {torch.cuda.device_count()} GPU(s); "
                            "start at most one process per GPU (torchrun --nproc_per_node)")
    return torch.device(name, local_rank) if name == "cuda" else torch.device(name)


def best_device_type() -> str:
    """What "auto" means: CUDA when PyTorch sees a GPU, else Apple's mps when present, else the CPU."""
    return "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 natively: a CUDA GPU with bf16 support, or a CPU whose
    oneDNN has bf16 kernels (AVX512-BF16 or AMX). Elsewhere bf16 is emulated and slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a build without oneDNN, or one that lacks the probe
            return False
    return False


def uses_bf16(amp: str, device: torch.device) -> bool:
    """Whether the training step autocasts to bfloat16 under the config's `amp` on `device`."""
    return amp == "bf16" or (amp == "auto" and native_bf16(device))


def mps_available() -> bool:
    return torch.backends.mps.is_available()


def backend_for(device: torch.device, requested: str = "auto") -> str:
    if requested == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if requested == "nccl" and device.type != "cuda":
        raise GanforgeError("backend nccl needs CUDA devices; use --backend gloo (or auto) on CPU")
    return requested


@contextlib.contextmanager
def process_group(device: torch.device, backend: str = "auto"):
    """Join the torchrun job for the duration of the block (nothing to do in a single process,
    or when the caller already joined one)."""
    e = env()
    if e.world_size == 1 or dist.is_initialized():
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend_for(device, backend), timeout=TIMEOUT,
                            device_id=device if device.type == "cuda" else None)
    try:
        yield
        # Every rank done with its collectives before any tears the group down: a rank that
        # destroyed it while its peer's gloo threads still held work aborted at exit (SIGABRT,
        # "terminate called without an active exception"; once in a CI run, 2026-11-28). Not on
        # an error: the peers may be gone, and the barrier would wait for them.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def world() -> tuple[int, int]:
    """(rank, world size) of the joined process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()


def agree_max(values: list[float], device: torch.device) -> list[float]:
    """The element-wise maximum of `values` over all ranks, so that every rank takes the same
    decision (stop now, which signal) at the same step."""
    if world()[1] == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def average(t: torch.Tensor) -> torch.Tensor:
    """The mean of `t` over all ranks (for logging what the whole batch saw)."""
    if world()[1] == 1:
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t / world()[1]


def global_mean(t: torch.Tensor) -> torch.Tensor:
    """The mean of `t`'s elements over all ranks together, differentiable: a loss built on it and
    averaged by DDP has one process's gradient on the global batch (each rank's share of the
    gradient flows back through the all-reduce)."""
    if world()[1] == 1:
        return t.mean()
    count = torch.full((), float(t.numel()), device=t.device)
    total = _AllReduceSum.apply(torch.stack([t.float().sum(), count]))
    return total[0] / total[1]


def interleave_gather(share: torch.Tensor) -> torch.Tensor:
    """Undo `[rank::world]` slicing: every rank passes its equal-sized share of a batch and gets
    the whole batch back in the original order."""
    rank, size = world()
    if size == 1:
        return share
    parts = [torch.empty_like(share) for _ in range(size)]
    dist.all_gather(parts, share.contiguous())
    return torch.stack(parts, dim=1).flatten(0, 1)  # (n/world, world, ...) -> (n, ...)


def wrap(module: nn.Module, device: torch.device) -> nn.Module:
    """`module` for the training step: in DistributedDataParallel when there are several ranks
    (it averages gradients in backward and broadcasts rank 0's buffers in forward)."""
    if world()[1] == 1:
        return module
    return DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None)


def no_sync(module: nn.Module):
    """A context in which `module` takes part in a backward pass without DDP expecting (and
    waiting for) its parameters' gradients: for D during G's step, where D is frozen."""
    return module.no_sync() if isinstance(module, DistributedDataParallel) else contextlib.nullcontext()


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks, differentiable: the gradient of a sum over ranks is the sum over ranks of
    the gradients (torch.distributed.nn's version of this is deprecated)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch over all ranks.

    torch.nn.SyncBatchNorm refuses CPU tensors, so gloo runs could not use it; this one works on
    every device: one all-reduce of (sum, sum of squares, count) per channel, differentiable
    (its backward all-reduces the gradient), so the result equals BatchNorm on the global batch.
    With one process (or in eval mode) it is plain BatchNorm. Same parameters and buffers, so
    checkpoints do not depend on it.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or world()[1] == 1:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]  # all but the channel dimension
        xf = x.float()
        count = torch.full((1,), x.numel() / x.shape[1], dtype=torch.float32, device=x.device)
        stats = _AllReduceSum.apply(torch.cat([xf.sum(dims), (xf * xf).sum(dims), count]))
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp_min(0)  # biased, as BatchNorm normalises
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1 / float(self.num_batches_tracked) if self.momentum is None else self.momentum)
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(var.detach() * n / (n - 1), momentum)  # unbiased, as BatchNorm
        shape = [1, c] + [1] * (x.dim() - 2)
        out = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """`module` with every BatchNorm layer replaced by SyncBatchNorm (weights and buffers kept);
    call it before moving the module to its device."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, SyncBatchNorm):
        sync = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                             module.track_running_stats)
        sync.load_state_dict(module.state_dict())
        return sync.train(module.training)
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child))
    return module
