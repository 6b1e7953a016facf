"""Hostile and broken files: never executed, never a traceback, never unbounded memory.

Planted pickles (raw, torch.save, renamed .safetensors/.pt) are refused by `ganforge.load`,
`ganforge generate` and `ganforge train --resume` without running; damaged safetensors, metadata,
IDX files and images give one clear error, or the documented skip for images in a folder.
"""

from __future__ import annotations

import logging
import pickle
import resource
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ganforge
from ganforge.rundir import RunDir
from ganforge.checkpoint import load_checkpoint
from ganforge.cli import cli
from ganforge.data import load_dataset
from ganforge.data.folder import MAX_PIXELS
from ganforge.errors import GanforgeError
from harness.hostile import (Payload, broken_checkpoints, broken_idx, checkpoint_parts, odd_mode_images,
                             png_declaring, rewrite)

from harness.data import write_idx




def run_cli(args: list[str]):
    """`ganforge ARGS` in-process: (exit code, output); a traceback would fail the assertion."""
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def assert_refused(args: list[str], *fragments: str) -> str:
    code, out = run_cli(args)
    assert code == 2, out
    assert out.startswith("error: ") and out.count("\n") == 1, out
    for fragment in fragments:
        assert fragment in out
    return out


def copy_run(tiny_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
def test_planted_pickles_are_never_run(tiny_run, tmp_path, kind):
    marker = tmp_path / "pwned"
    payload = {"G.weight": Payload(marker)}
    proof = tmp_path / "proof.pkl"
    if kind == "pickle":
        proof.write_bytes(pickle.dumps(payload))
        pickle.loads(proof.read_bytes())  # the payload is live: unpickling runs it
    else:
        torch.save(payload, proof)
        torch.load(proof, weights_only=False)
    assert marker.exists()
    marker.unlink()

    run = copy_run(tiny_run, tmp_path)
    planted = [RunDir(run).checkpoint(), tmp_path / "model.pt", tmp_path / "model.safetensors",
               tmp_path / "model.ckpt"]
    for path in planted:
        shutil.copy(proof, path)
        with pytest.raises(GanforgeError, match="not a readable ganforge checkpoint"):
            ganforge.load(path)
        assert_refused(["generate", str(path), "--n", "4", "--out", str(tmp_path / "x.png")],
                       "not a readable ganforge checkpoint")
    with pytest.raises(GanforgeError):
        ganforge.load(run)
    assert_refused(["generate", str(run), "--n", "4", "--out", str(tmp_path / "x.png")], "use a checkpoint")
    assert_refused(["train", "--resume", str(run), "--steps", "8", "--quiet"], "not a readable")
    assert not marker.exists()
    assert not (tmp_path / "x.png").exists()










def test_broken_checkpoints_give_one_clear_error(tiny_run, tmp_path):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for what, data in broken_checkpoints(tiny_run).items():
        path = tmp_path / "last.safetensors"
        path.write_bytes(data)
        with pytest.raises(GanforgeError) as e:
            ganforge.load(path)
        assert str(path) in str(e.value) and "\n" not in str(e.value), what
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 500_000  # KiB: no 8 GB network


@pytest.mark.slow
def test_broken_checkpoints_refused_by_resume_and_generate(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path)
    good = RunDir(run).checkpoint().read_bytes()
    for what in ("truncated in the tensors", "no config", "wrong shape", "huge network"):
        RunDir(run).checkpoint().write_bytes(broken_checkpoints(tiny_run)[what])
        assert_refused(["train", "--resume", str(run), "--steps", "8", "--quiet"], str(run))
        assert_refused(["generate", str(run), "--n", "2", "--out", str(tmp_path / "x.png")], str(run))
    RunDir(run).checkpoint().write_bytes(good)
    _, _, meta = checkpoint_parts(tiny_run)
    tensors, _ = load_checkpoint(RunDir(run).checkpoint())
    damaged = {**meta, "opt_g": {**meta["opt_g"], "scalars": []}}
    for state, damage in ((tensors, damaged), ({**tensors, "opt_d.0.exp_avg": torch.zeros(3)}, meta)):
        RunDir(run).checkpoint().write_bytes(rewrite(state, damage))
        assert_refused(["train", "--resume", str(run), "--steps", "8", "--quiet"], "damaged training state")


def test_damaged_metrics_lines_are_skipped(tmp_path):
    (tmp_path / "metrics.jsonl").write_bytes(b'{"step": 1, "loss_d": 0.5}\n[1, 2]\n7\n"x"\n\xff\xfe\x00garbage\n'
                                            + b"[" * 100_000 + b'\n{"step": 2, "loss_d": 0.4}\n{"step": 3, "lo')
    assert [r["step"] for r in RunDir(tmp_path).read_metrics()] == [1, 2]






def test_broken_idx_files_give_one_clear_error(tiny_digits, tmp_path):
    labels = tiny_digits / "train-labels-idx1-ubyte.gz"
    for what, data in broken_idx().items():
        d = tmp_path / what.replace(" ", "_")
        d.mkdir()
        (d / "train-images-idx3-ubyte").write_bytes(data)
        shutil.copy(labels, d)
        with pytest.raises(GanforgeError) as e:
            load_dataset(str(d))
        assert str(d) in str(e.value) and "\n" not in str(e.value), what
    # Right format, wrong partner: 300 labels for 5 images.
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 4, 4), np.uint8), compress=False)
    shutil.copy(labels, tmp_path)
    with pytest.raises(GanforgeError, match="do not belong together"):
        load_dataset(str(tmp_path))






@pytest.mark.parametrize("channels", [None, 1, 3])
def test_image_folder_odd_modes_load_and_broken_files_are_skipped(tmp_path, caplog, channels):
    rng = np.random.default_rng(0)
    good = odd_mode_images(rng)
    for name, img in good.items():
        img.save(tmp_path / name)
    png = (tmp_path / "L.png").read_bytes()
    broken = {"empty.png": b"", "truncated.png": png[:len(png) // 2], "text.png": b"not an image\n",
              "bomb.png": png_declaring(100_000, 100_000), "tall.png": png_declaring(1, MAX_PIXELS + 1),
              "pickle.jpg": pickle.dumps(Payload(tmp_path / "pwned"))}
    for name, data in broken.items():
        (tmp_path / name).write_bytes(data)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        ds = load_dataset(str(tmp_path), resolution=16, channels=channels)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 300_000  # KiB; a bomb is 10 GB
    assert ds.images.shape == (len(good), channels or 3, 16, 16) and ds.images.dtype == torch.uint8
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and f"skipped {len(broken)} of {len(good) + len(broken)} files" in warnings[0]
    assert not (tmp_path / "pwned").exists()


def test_image_folder_with_only_broken_files_is_one_clear_error(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(png_declaring(100_000, 100_000)[: 40 * (i + 1)])
    code, out = run_cli(["train", "--data", str(tmp_path), "--steps", "1", "--out", str(tmp_path / "r")])
    assert code == 2 and out.count("error: no readable images in") == 1
