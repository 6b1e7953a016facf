"""Hostile inputs of issue 12 ("hardening, round two"), each built here in tmp_path: every one
ends in one `error: ...` line (exit 2), or the documented skip or warning, with nothing already
saved touched."""

from __future__ import annotations

import errno
import gzip
import json
import logging
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.checkpoint import load_checkpoint
from ganforge.config import TrainConfig
from ganforge.data import load_dataset
from ganforge.data.idx import read_idx
from ganforge.errors import GanforgeError
from ganforge.files import atomic_write
from ganforge.generator import MAX_SAMPLES
from ganforge.rundir import RunDir
from ganforge.training.state import build_state

from harness.data import image_folder
from test_hostile import assert_refused, copy_run, png_declaring, rewrite, run_cli

REPO = Path(__file__).resolve().parents[2]


def edited(run: Path, edit) -> bytes:
    """Rewrite the run's checkpoint with its metadata passed through `edit` (tensors as they
    were, unless `edit` returns new ones too); returns the bytes written."""
    tensors, meta = load_checkpoint(RunDir(run).checkpoint())
    out = edit(tensors, json.loads(json.dumps(meta)))
    tensors, meta = out if isinstance(out, tuple) else (tensors, out)
    data = rewrite(tensors, meta)
    RunDir(run).checkpoint().write_bytes(data)
    return data


def group(meta: dict, opt: str = "opt_g") -> dict:
    return meta[opt]["param_groups"][0]


def set_group(key, value, opt="opt_g"):
    def edit(tensors, meta):
        group(meta, opt)[key] = value
        return meta
    return edit


def swapped_moments(tensors, meta):
    """Adam's first moments of parameters 0 and 1 exchanged: every tensor still valid alone."""
    a, b = tensors["opt_g.0.exp_avg"], tensors["opt_g.1.exp_avg"]
    assert a.shape != b.shape
    return {**tensors, "opt_g.0.exp_avg": b, "opt_g.1.exp_avg": a}, meta


OPTIMIZER_EDITS = {
    "ids reversed": (lambda t, m: (group(m)["params"].reverse(), m)[1], "param_groups[0].params"),
    "one id repeated": (lambda t, m: (group(m)["params"].__setitem__(1, 0), m)[1], "param_groups[0].params"),
    "ids as floats": (lambda t, m: (group(m).__setitem__("params", [float(i) for i in group(m)["params"]]), m)[1],
                      "params"),
    "lr text": (set_group("lr", "abc"), "lr is 'abc'"),
    "lr negative": (set_group("lr", -1), "lr is -1"),
    "lr NaN-like huge": (set_group("lr", 1e300), "lr"),
    "beta 1": (set_group("betas", [0.5, 1.0]), "betas"),
    "eps 0": (set_group("eps", 0), "eps"),
    "weight decay negative": (set_group("weight_decay", -0.1), "weight_decay"),
    "amsgrad text": (set_group("amsgrad", "yes"), "amsgrad"),
    "maximize": (set_group("maximize", True), "maximize"),
    "fused a number": (set_group("fused", 1), "fused"),
    "unknown key": (set_group("momentum", 0.9), "momentum"),
    "lr missing": (lambda t, m: (group(m).pop("lr"), m)[1], "'lr'"),
    "moments swapped": (swapped_moments, "opt_g.0.exp_avg"),
    "negative second moment": (lambda t, m: ({**t, "opt_d.0.exp_avg_sq": -t["opt_d.0.exp_avg_sq"].abs() - 1}, m),
                               "negative"),
    "state of a 99th parameter": (lambda t, m: ({**t, "opt_d.99.exp_avg": torch.zeros(3)}, m), "99"),
    "step missing": (lambda t, m: ({k: v for k, v in t.items() if k != "opt_d.0.step"}, m), "opt_d.0"),
}


@pytest.mark.parametrize("what", OPTIMIZER_EDITS)
def test_hostile_optimizer_state_is_refused(tiny_run, tmp_path, what):
    edit, fragment = OPTIMIZER_EDITS[what]
    run = copy_run(tiny_run, tmp_path)
    before = edited(run, edit)
    out = assert_refused(["train", "--resume", str(run), "--steps", "8", "--quiet"], "damaged training state")
    assert fragment in out, out
    assert RunDir(run).checkpoint().read_bytes() == before


@pytest.mark.slow
@pytest.mark.parametrize("what", ["ids reversed", "one id repeated", "lr text", "moments swapped"])
def test_hostile_optimizer_state_in_a_real_process(tiny_run, tmp_path, what):
    """The ids that once corrupted the native heap (glibc abort, exit 134), in a real process."""
    run = copy_run(tiny_run, tmp_path)
    before = edited(run, OPTIMIZER_EDITS[what][0])
    proc = subprocess.run([sys.executable, "-m", "ganforge", "train", "--resume", str(run), "--steps", "8",
                           "--quiet"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert RunDir(run).checkpoint().read_bytes() == before


def test_roll_back_restores_through_the_same_checks(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path)
    tensors, meta = load_checkpoint(RunDir(run).checkpoint())
    cfg = TrainConfig.from_dict(meta["config"])
    state = build_state(cfg, torch.device("cpu"))
    state.restore(tensors, meta, RunDir(run).checkpoint())  # the untouched checkpoint restores
    assert state.step == 6
    for what in ("ids reversed", "lr negative", "moments swapped"):
        bad_tensors, bad_meta = tensors, json.loads(json.dumps(meta))
        out = OPTIMIZER_EDITS[what][0](bad_tensors, bad_meta)
        bad_tensors, bad_meta = out if isinstance(out, tuple) else (bad_tensors, out)
        with pytest.raises(GanforgeError, match="damaged training state"):
            build_state(cfg, torch.device("cpu")).restore(bad_tensors, bad_meta, RunDir(run).checkpoint())


@pytest.mark.parametrize("step", [-5, "6", 6.0, True, 10**20, None])
def test_checkpoint_step_must_be_a_plain_integer(tiny_run, tmp_path, step):
    run = copy_run(tiny_run, tmp_path)
    before = edited(run, lambda t, m: {**m, "step": step})
    with pytest.raises(GanforgeError, match="step is"):
        ganforge.load(run)
    assert_refused(["generate", str(run), "--n", "2", "--out", str(tmp_path / "x.png")], "step is")
    assert_refused(["train", "--resume", str(run), "--steps", "8", "--quiet"], "step is")
    assert RunDir(run).checkpoint().read_bytes() == before
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("net", ["G_ema", "G", "D"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_at_load(tiny_run, tmp_path, net, value):
    run = copy_run(tiny_run, tmp_path)

    def poison(tensors, meta):
        name = next(k for k in tensors if k.startswith(net + ".") and k.endswith("weight"))
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[3] = value
        return tensors, meta
    before = edited(run, poison)
    with pytest.raises(GanforgeError, match="NaN or Inf"):
        ganforge.load(run)
    assert_refused(["generate", str(run), "--n", "2", "--out", str(tmp_path / "x.png")], "NaN or Inf")
    assert_refused(["evaluate", str(run), "--n", "20"], "NaN or Inf")
    assert_refused(["train", "--resume", str(run), "--steps", "8", "--quiet"], "NaN or Inf")
    assert RunDir(run).checkpoint().read_bytes() == before


def test_metrics_line_with_a_huge_integer_is_skipped(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss_d": 0.5}\n{"step": ' + "9" * 5000 + "}\n"
                                            '{"loss_d": 1' + "0" * 4400 + '}\n{"step": 2, "loss_d": 0.4}\n')
    assert [r["step"] for r in RunDir(tmp_path).read_metrics()] == [1, 2]


def test_report_and_resume_survive_a_huge_integer_in_metrics(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path)
    with open(RunDir(run).metrics, "a") as f:
        f.write('{"step": 3, "loss_d": ' + "1" * 5000 + "}\n")
    code, out = run_cli(["report", str(run), "--out", str(tmp_path / "r.png")])
    assert code == 0, out
    code, out = run_cli(["train", "--resume", str(run), "--steps", "7", "--quiet"])
    assert code == 0, out


# -- --out of train: a directory that is not a run --------------------------------------------

def test_train_refuses_a_foreign_non_empty_out(tiny_digits, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.json").write_text('{"mine": true}\n')
    (project / "notes.txt").write_text("keep me\n")
    before = {p.name: (p.read_bytes(), p.stat().st_mode) for p in project.iterdir()}
    args = ["train", "--data", str(tiny_digits), "--out", str(project), "--steps", "2", "--width", "16",
            "--z-dim", "8", "--net", "mlp", "--quiet", "--device", "cpu"]
    assert_refused(args, "is not empty", "holds no ganforge run")
    assert_refused([*args, "--dry-run"], "is not empty")
    assert {p.name: (p.read_bytes(), p.stat().st_mode) for p in project.iterdir()} == before  # no .lock either


@pytest.mark.slow
def test_train_accepts_missing_empty_and_half_started_out(tiny_digits, tmp_path):
    base = ["--data", str(tiny_digits), "--steps", "2", "--width", "16", "--z-dim", "8", "--net", "mlp",
            "--batch-size", "32", "--eval-every", "0", "--quiet", "--device", "cpu"]
    empty, half = tmp_path / "empty", tmp_path / "half"
    empty.mkdir()
    (half / "checkpoints").mkdir(parents=True)
    (half / "samples").mkdir()
    (half / ".lock").write_text("123\n")
    (half / "checkpoints" / ".last.safetensors.abc123.tmp").write_bytes(b"half a checkpoint")
    for out in (tmp_path / "missing", empty, half):
        code, text = run_cli(["train", *base, "--out", str(out)])
        assert code == 0, text
        assert RunDir(out).holds_run()
    assert_refused(["train", *base, "--out", str(empty)], "already holds a run", "--resume")


def test_dry_run_refuses_a_batch_larger_than_the_data(tiny_digits):
    assert_refused(["train", "--data", str(tiny_digits), "--batch-size", "301", "--dry-run"],
                   "batch_size 301 is larger than the data set (300 images)")


# -- config.json edited by hand ---------------------------------------------------------------

def test_edited_config_json_on_resume(tiny_run, tmp_path, caplog):
    run = copy_run(tiny_run, tmp_path)
    written = json.loads(RunDir(run).config.read_text())
    written["config"]["lr_g"] = 0.1
    written["config"]["n_dis"] = 3
    RunDir(run).config.write_text(json.dumps(written))
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        code, out = run_cli(["train", "--resume", str(run), "--steps", "7", "--quiet"])
    assert code == 0, out
    warnings = [r.getMessage() for r in caplog.records if "config.json was edited" in r.getMessage()]
    assert len(warnings) == 1 and "lr_g, n_dis" in warnings[0] and "checkpoint's stored configuration wins" in warnings[0]
    assert json.loads(RunDir(run).config.read_text())["config"]["lr_g"] == 4e-4  # rewritten from the checkpoint

    written = json.loads(RunDir(run).config.read_text())
    written["config"]["model"]["width"] = 64
    RunDir(run).config.write_text(json.dumps(written))
    before = RunDir(run).checkpoint().read_bytes()
    assert_refused(["train", "--resume", str(run), "--steps", "9", "--quiet"], "model.width is 64",
                   "trained with 16")
    assert RunDir(run).checkpoint().read_bytes() == before


# -- data folders -----------------------------------------------------------------------------

def test_unreadable_class_folder_is_one_line(tmp_path, monkeypatch):
    root = image_folder(tmp_path / "data", ["a", "b"])
    blocked = root / "b"
    if os.geteuid() == 0:  # root reads anything: make listing it fail as it does for a user
        real = os.scandir
        monkeypatch.setattr(os, "scandir", lambda path: (_ for _ in ()).throw(
            PermissionError(errno.EACCES, "Permission denied")) if Path(path) == blocked else real(path))
    else:
        blocked.chmod(0)
    try:
        with pytest.raises(GanforgeError, match=f"cannot read {blocked}: Permission denied"):
            load_dataset(str(root))
        assert_refused(["train", "--data", str(root), "--steps", "1", "--out", str(tmp_path / "r")],
                       "Permission denied")
    finally:
        blocked.chmod(0o755)
    assert not (tmp_path / "r").exists()


def test_a_path_the_system_refuses_is_one_line(tiny_run, tmp_path, monkeypatch):
    blocked = tmp_path / "locked" / "run"
    real = Path.is_file
    def is_file(path):  # root reads anything: fail as pathlib does for a user without permission
        if path == blocked or blocked in path.parents:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)
    monkeypatch.setattr(Path, "is_file", is_file)
    assert_refused(["generate", str(blocked), "--n", "2", "--out", str(tmp_path / "a.png")],
                   "Permission denied: ", str(blocked), "check its permissions")
    assert_refused(["evaluate", os.devnull], "not a file or a directory")


def test_class_folder_name_not_utf8_is_refused_escaped(tmp_path):
    root = image_folder(tmp_path / "data", ["good", b"bad\xff\xfename"])
    out = assert_refused(["train", "--data", str(root), "--steps", "1", "--out", str(tmp_path / "r")],
                         "not valid UTF-8", "bad\\xff\\xfename")
    out.encode("utf-8")  # printable: the raw bytes never reach the message
    assert not (tmp_path / "r").exists()


def test_empty_class_folder_is_refused_by_name(tmp_path):
    root = image_folder(tmp_path / "data", ["a", "b"])
    (root / "empty_class").mkdir()
    (root / "junk_class").mkdir()
    (root / "junk_class" / "x.png").write_bytes(b"not an image")
    with pytest.raises(GanforgeError, match="class folder .*empty_class holds no readable image \\(nor do 1 more\\)"):
        load_dataset(str(root))


# -- evaluate SOURCE: hostile files ------------------------------------------------------------

def sample_dir(root: Path, names: dict[str, bytes | None]) -> Path:
    root.mkdir()
    good = Image.fromarray(np.zeros((28, 28), np.uint8))
    for name, data in names.items():
        if data is None:
            good.save(root / name)
        else:
            (root / name).write_bytes(data)
    return root


@pytest.mark.parametrize("bad_name,bad_data,fragment", [
    ("1_1.png", png_declaring(100_000, 100_000), "pixels"),
    ("1_1.png", png_declaring(1, 64_000_001), "pixels, over the 64,000,000 limit"),
    ("99999999999999999999999_0.png", None, "label 99999999999999999999999 is over 9999"),
])
def test_evaluate_refuses_hostile_sample_files(tmp_path, bad_name, bad_data, fragment):
    d = sample_dir(tmp_path / "samples", {"0_0.png": None, "2_2.png": None, bad_name: bad_data})
    assert_refused(["evaluate", str(d)], fragment)


def npz_declaring(path: Path, shape: tuple, dtype: str = "|u1", extra: dict | None = None) -> Path:
    """An .npz whose images.npy header declares `shape` but holds 16 bytes of data."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(16)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images.npy", npy)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("shape,dtype,fragment", [
    ((10**6, 1000, 1000), "|u1", "at most 1073741824 bytes"),
    ((2_000_000, 28, 28), "|u1", "0 < N <= 1000000"),
    ((512, 1024, 1024), "<f4", "uint8"),
    ((0, 28, 28), "|u1", "0 < N"),
    ((10, 28), "|u1", "(N, H, W)"),
])
def test_npz_sizes_are_checked_in_the_header(tmp_path, shape, dtype, fragment):
    path = npz_declaring(tmp_path / "bomb.npz", shape, dtype)
    assert path.stat().st_size < 2000
    assert_refused(["evaluate", str(path)], fragment)


def test_npz_other_arrays_and_truncated_data_are_clear_errors(tmp_path):
    path = npz_declaring(tmp_path / "short.npz", (100, 28, 28), extra={"junk.npy": b"not an array"})
    assert_refused(["evaluate", str(path)], "cannot read")
    (tmp_path / "zip.npz").write_bytes(b"PK\x03\x04 broken")
    assert_refused(["evaluate", str(tmp_path / "zip.npz")], "cannot read")


# -- IDX: caps before allocating, one copy of the data ------------------------------------------

def test_idx_gz_declaring_more_than_it_can_hold_is_refused_before_allocating(tmp_path):
    head = bytes([0, 0, 8, 3]) + struct.pack(">3I", 1_500_000, 28, 28)  # 1.2 GB declared
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(head + os.urandom(1 << 20)))  # ~1 MB of real data
    with pytest.raises(GanforgeError, match="more than its .* bytes can hold"):
        read_idx(path)


PEAK_SCRIPT = """
import sys
from ganforge.data.idx import read_idx

def kib(field):
    return int(next(l for l in open("/proc/self/status") if l.startswith(field)).split()[1])

open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) restarts from the current RSS
before = kib("VmRSS:")
a = read_idx(sys.argv[1])
print(kib("VmHWM:") - before, a.nbytes, int(a.flags.writeable))
"""


@pytest.mark.slow
def test_idx_gz_is_read_with_one_copy_of_its_data(tmp_path):
    values = np.random.default_rng(0).integers(0, 4, (2000, 100, 200), dtype=np.uint8)  # 40 MB
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", *values.shape) + values.tobytes(),
                                   compresslevel=1))
    np.testing.assert_array_equal(read_idx(path), values)
    proc = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120, check=True)
    grown_kib, nbytes, writeable = map(int, proc.stdout.split())
    assert writeable == 1
    assert 0.8 * nbytes / 1024 < grown_kib < 1.3 * nbytes / 1024  # the array, not twice it


# -- generate: chunks, caps, where it writes -----------------------------------------------------

@pytest.mark.parametrize("n,z_dim,rows", [(2500, 8, 1024), (1025, 8, 1024), (1026, 3, 1024), (37, 5, 16),
                                          (33, 1, 16), (5, 100, 16)])
def test_noise_chunks_equal_one_draw(tiny_run, n, z_dim, rows):
    gan = ganforge.load(tiny_run)
    gan.model = gan.model.__class__(**{**gan.model.__dict__, "z_dim": z_dim})
    chunks = list(gan.noise_chunks(n, 7, rows))
    assert max(len(c) for c in chunks) < rows + 16 // z_dim + 1
    torch.testing.assert_close(torch.cat(chunks), gan.noise(n, 7), rtol=0, atol=0)


def test_sample_chunks_equal_sample(tiny_run):
    gan = ganforge.load(tiny_run)
    chunks = list(gan.sample_chunks(2100, None, 3))
    assert len(chunks) == 3
    torch.testing.assert_close(torch.cat([c for c, _ in chunks]), gan.sample(2100, None, 3), rtol=0, atol=0)
    assert torch.equal(torch.cat([y for _, y in chunks]), gan.labels_for(2100, None))


@pytest.mark.parametrize("command", ["generate", "evaluate"])
def test_n_is_capped(tiny_run, tmp_path, command):
    out = ["--out", str(tmp_path / "x")] if command == "generate" else []
    assert_refused([command, str(tiny_run), "--n", "2000000000", *out], f"up to {MAX_SAMPLES:,}")
    assert not (tmp_path / "x").exists()


def test_whole_outputs_are_capped_by_memory(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setattr("ganforge.generator.MAX_SAMPLE_BYTES", 784 * 50)
    assert_refused(["generate", str(tiny_run), "--n", "51", "--out", str(tmp_path / "x.npz")], "limit is 50 images")
    code, out = run_cli(["generate", str(tiny_run), "--n", "51", "--out", str(tmp_path / "d")])
    assert code == 0, out
    assert len(list((tmp_path / "d").iterdir())) == 51


def test_generate_replaces_planted_links_instead_of_writing_through_them(tiny_run, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "images"
    out.mkdir()
    (out / "0_0.png").symlink_to(victim)
    (out / "1_1.png").symlink_to(tmp_path / "dangling")
    code, text = run_cli(["generate", str(tiny_run), "--n", "2", "--classes", "0,1", "--out", str(out)])
    assert code == 0, text
    assert victim.read_text() == "precious\n" and not (tmp_path / "dangling").exists()
    for name in ("0_0.png", "1_1.png"):
        assert not (out / name).is_symlink() and Image.open(out / name).size == (28, 28)


def test_generate_creates_no_missing_parent(tiny_run, tmp_path):
    missing = tmp_path / "missing"
    for out in (missing / "x.png", missing / "x.npz", missing / "dir"):
        assert_refused(["generate", str(tiny_run), "--n", "2", "--out", str(out)], "does not exist")
    assert not missing.exists()
    code, text = run_cli(["generate", str(tiny_run), "--n", "2", "--out", str(tmp_path / "new_dir")])
    assert code == 0 and len(list((tmp_path / "new_dir").iterdir())) == 2, text
    (tmp_path / "file").write_text("")
    assert_refused(["generate", str(tiny_run), "--n", "2", "--out", str(tmp_path / "file")], "is a file")


# -- atomic writes: modes and causes --------------------------------------------------------------

@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_applies_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        atomic_write(tmp_path / "a.json", b"{}")
        atomic_write(tmp_path / "a.json", b"{}")  # replacing keeps to the rule too
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == mode


@pytest.mark.parametrize("code,cause,hint", [
    (errno.ENOSPC, "No space left on device", "Free some disk space"),
    (errno.EACCES, "Permission denied", "Permission denied or read-only: choose a writable --out"),
    (errno.EROFS, "Read-only file system", "Permission denied or read-only: choose a writable --out"),
    (errno.EEXIST, "File exists", "Choose another --out"),
])
def test_write_errors_name_their_cause(tmp_path, monkeypatch, code, cause, hint):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr("tempfile.mkstemp", fail)
    with pytest.raises(GanforgeError) as e:
        atomic_write(tmp_path / "x.png", b"data")
    assert f"{cause}; nothing was written. {hint}" in str(e.value)
    assert code == errno.ENOSPC or "disk space" not in str(e.value)


def test_atomic_write_refuses_a_missing_directory(tmp_path):
    with pytest.raises(GanforgeError, match="does not exist"):
        atomic_write(tmp_path / "missing" / "x.json", b"{}")
    assert not (tmp_path / "missing").exists()
