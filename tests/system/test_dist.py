"""Data-parallel training under torchrun: 2 CPU processes with gloo, as a user would launch them.

The reference for every 2-process run is one process with the same global batch: with
SyncBatchNorm and the shared noise stream the two compute the same updates, up to the order of
floating-point sums.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ganforge import dist
from ganforge.config import preset, validate
from ganforge.errors import GanforgeError
from ganforge.rundir import RunDir
from ganforge.training import Trainer, train

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "harness" / "dist_worker.py"
LAUNCH_TIMEOUT_S = 120  # a hung job fails the test instead of the suite


def flags(data: Path) -> list[str]:
    # Float32 (--amp off): the runs are compared to float precision, and under bf16 the rounding
    # depends on how the batch is split between processes.
    return ["--data", str(data), "--net", "mlp", "--width", "16", "--z-dim", "8", "--batch-size", "32", "--device", "cpu",
            "--sync-bn", "--amp", "off", "--log-every", "1", "--sample-every", "100", "--checkpoint-every", "100",
            "--quiet"]


def torchrun(*args: str, hooks: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node=2 tests/harness/dist_worker.py [hooks] args`, on a free port."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(WORKER), *hooks, *args]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)


def cli_config(data: Path, steps: int):
    """The TrainConfig that `ganforge train flags(data) --steps N` resolves to."""
    return preset("default").replace(data=str(data), net="mlp", width=16, z_dim=8, batch_size=32, device="cpu",
                                     sync_bn=True, amp="off", log_every=1, sample_every=100,
                                     checkpoint_every=100, steps=steps, minutes=None)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(RunDir(run).checkpoint())


def assert_same_training(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor], steps: int) -> None:
    assert sorted(got) == sorted(want)
    # A Linear bias right before BatchNorm has zero gradient in exact arithmetic (BN subtracts the
    # batch mean), so Adam turns rounding noise into steps of up to lr: allow steps * lr there
    # and in the running means it shifts. Everything else must agree to float precision.
    lr = preset("default").lr_g
    for k in want:
        loose = re.fullmatch(r"(G|G_ema)\.blocks\.\d+\.(bias|running_mean)", k)
        if want[k].is_floating_point():
            atol = steps * lr if loose else 1e-5
            torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=atol, msg=k)
        else:
            assert torch.equal(got[k], want[k]), k


@pytest.fixture(scope="module")
def single(tiny_digits, tmp_path_factory) -> dict[int, Path]:
    """One-process reference runs of 3 and 6 steps (global batch 32)."""
    d = tmp_path_factory.mktemp("single")
    runs = {}
    for steps in (3, 6):
        runs[steps] = d / f"s{steps}"
        train(cli_config(tiny_digits, steps), runs[steps], progress=False)
    return runs


@pytest.fixture(scope="module")
def two_procs(tiny_digits, tmp_path_factory) -> tuple[Path, Path]:
    """A 2-process run of 3 steps; each rank dumps the training state it ends with."""
    d = tmp_path_factory.mktemp("two")
    run, dump = d / "run", d / "dump"
    p = torchrun("train", *flags(tiny_digits), "--steps", "3", "--out", str(run), hooks=("--dump", str(dump)))
    assert p.returncode == 0, p.stderr[-3000:]
    return run, dump


def test_ranks_hold_identical_weights(two_procs):
    run, dump = two_procs
    rank0, rank1 = load_file(dump / "rank0.safetensors"), load_file(dump / "rank1.safetensors")
    assert sorted(rank0) == sorted(rank1)
    for k in rank0:  # G, D, G_ema, both optimizers and the shared noise stream
        assert torch.equal(rank0[k], rank1[k]), k
    saved = weights(run)
    assert not any("module." in k or "_orig_mod." in k for k in saved)  # the unwrapped networks
    for k in saved:
        assert torch.equal(saved[k], rank0[k]), k


def test_penalties_and_augmentation_keep_ranks_in_step(tiny_digits, tmp_path):
    # Double backward (R1 on every D step) through DDP, spectral norm's buffers, and per-rank
    # augmentation streams drawn without letting the shared noise stream drift apart. (WGAN-GP's
    # penalty is the same double backward; config refuses it together with R1.)
    dump = tmp_path / "dump"
    p = torchrun("train", *flags(tiny_digits), "--no-sync-bn", "--loss", "hinge", "--r1", "1", "--r1-every", "1",
                 "--augment", "0.5", "--spectral-norm", "--steps", "2", "--out", str(tmp_path / "run"),
                 hooks=("--dump", str(dump)))
    assert p.returncode == 0, p.stderr[-3000:]
    rank0, rank1 = load_file(dump / "rank0.safetensors"), load_file(dump / "rank1.safetensors")
    for k in rank0:
        if re.fullmatch(r"G(_ema)?\.blocks\.\d+\.running_(mean|var)", k):
            # Without --sync-bn each rank's statistics come from its own half of the batch.
            assert not torch.equal(rank0[k], rank1[k]), k
        else:
            assert torch.equal(rank0[k], rank1[k]), k


def test_two_processes_match_one_with_the_global_batch(two_procs, single):
    run, _ = two_procs
    assert_same_training(weights(run), weights(single[3]), steps=3)
    # Only rank 0 writes: one record per step, with losses averaged over both halves of the batch.
    got, want = RunDir(run).read_metrics(), RunDir(single[3]).read_metrics()
    assert [r["step"] for r in got] == [1, 2, 3]
    for g, w in zip(got, want):
        for k in ("loss_d", "loss_g", "d_real", "d_fake"):
            assert g[k] == pytest.approx(w[k], rel=1e-3, abs=1e-4), k


def test_resume_two_processes_on_one(two_procs, single, tiny_digits, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(two_procs[0], run)
    train(cli_config(tiny_digits, 6), run, resume=True, progress=False)
    assert_same_training(weights(run), weights(single[6]), steps=6)


def test_resume_one_process_on_two(single, tiny_digits, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(single[3], run)
    p = torchrun("train", "--resume", str(run), "--steps", "6")
    assert p.returncode == 0, p.stderr[-3000:]
    assert_same_training(weights(run), weights(single[6]), steps=6)


def test_failing_rank_ends_the_job_with_its_error(tiny_digits, tmp_path):
    p = torchrun("train", *flags(tiny_digits), "--steps", "50", "--out", str(tmp_path / "run"),
                 hooks=("--fail-at", "2"))
    ended = time.time()
    assert p.returncode != 0
    failed = re.search(r"injected failure on rank 1 at step 2 \(at t=([\d.]+)\)", p.stderr)
    assert failed, p.stderr[-3000:]
    # Rank 0 waits in a collective for the dead rank: the launcher must end it promptly, not after
    # the process group's timeout (minutes).
    assert 0 <= ended - float(failed.group(1)) < 15


def test_global_batch_must_split_evenly(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setattr(dist, "world", lambda: (0, 3))
    with pytest.raises(GanforgeError, match="batch_size 32 is the global batch, split over 3 processes"):
        Trainer(tiny_config, tmp_path / "run", progress=False)


@pytest.mark.parametrize("field, value, message", [
    ("backend", "mpi", "backend must be one of auto, gloo, nccl"),
    ("amp", "fp16", "amp must be one of auto, off, bf16"),
    ("sync_bn", "yes", "sync_bn must be true or false"),
    ("compile", 1, "compile must be true or false"),
])
def test_scaling_fields_are_validated(tiny_config, field, value, message):
    with pytest.raises(GanforgeError, match=message):
        validate(tiny_config.replace(**{field: value}))


def test_nccl_needs_cuda_devices():
    assert dist.backend_for(torch.device("cpu")) == "gloo"
    assert dist.backend_for(torch.device("cuda", 0)) == "nccl"
    with pytest.raises(GanforgeError, match="backend nccl needs CUDA devices"):
        dist.backend_for(torch.device("cpu"), "nccl")


def test_torchrun_environment_is_read_and_checked(monkeypatch):
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    assert dist.env() == dist.Env(rank=0, local_rank=0, world_size=1)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert dist.env() == dist.Env(rank=1, local_rank=1, world_size=2) and not dist.is_main()
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(GanforgeError, match="inconsistent torchrun environment"):
        dist.env()
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(GanforgeError, match="RANK='one' is not an integer"):
        dist.env()


@pytest.mark.parametrize("cuda, mps, want", [(False, True, "mps"), (False, False, "cpu"), (True, True, "cuda")])
def test_auto_device_prefers_cuda_then_mps(monkeypatch, cuda, mps, want):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: int(cuda))
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert dist.device_for("auto").type == want


def test_mps_without_an_apple_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(GanforgeError, match="no Apple GPU"):
        dist.device_for("mps")
