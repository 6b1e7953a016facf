"""Try every fault and bad input of the reliability tests many times and write docs/reliability.md.

    python scripts/reliability_record.py [--kills 30] [--repeat 3] [--examples 400]

Faults run against real code paths: training subprocesses killed with SIGKILL (at random moments
and at exact points of a checkpoint write), SIGINT/SIGTERM, NaN/Inf injected into training,
planted pickles, damaged checkpoints, IDX files and images, hypothesis fuzzing with more examples
than CI uses, a full disk and a read-only directory. The helpers are the tests' own (tests/harness/),
so the record and the CI tests exercise the same faults. Takes a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import platform
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # ganforge, and the fault harness the tests use

import numpy as np  # noqa: E402
import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import ganforge  # noqa: E402
from ganforge.checkpoint import load_checkpoint, stored_config, unprefixed  # noqa: E402
from ganforge.cli import cli  # noqa: E402
from ganforge.config import preset  # noqa: E402
from ganforge.data import BUNDLED_DIR, load_dataset  # noqa: E402
from ganforge.data.folder import load_folder  # noqa: E402
from ganforge.data.idx import read_idx  # noqa: E402
from ganforge.errors import GanforgeError  # noqa: E402
from ganforge.files import atomic_write  # noqa: E402
from ganforge.generator import GAN  # noqa: E402
from ganforge.rundir import RunDir  # noqa: E402
from ganforge.training import Trainer, train  # noqa: E402
from ganforge.training.health import DIVERGENCE_LR_FACTOR  # noqa: E402
from harness import disk, faults, fuzz, health, hostile  # noqa: E402
from harness.data import write_idx  # noqa: E402

Row = tuple[str, int, str]  # fault, times tried, outcome


def tiny_digits(d: Path) -> Path:
    images = read_idx(BUNDLED_DIR / "train-images-idx3-ubyte.gz")
    labels = read_idx(BUNDLED_DIR / "train-labels-idx1-ubyte.gz")
    keep = np.concatenate([np.flatnonzero(labels == c)[:30] for c in range(10)])
    d.mkdir()
    for split in ("train", "t10k"):
        write_idx(d / f"{split}-images-idx3-ubyte.gz", images[keep])
        write_idx(d / f"{split}-labels-idx1-ubyte.gz", labels[keep])
    return d


def tiny_config(data: Path, **changes):
    tiny = dict(data=str(data), width=16, z_dim=8, batch_size=32, minutes=None, log_every=1, sample_every=3,
                checkpoint_every=3, device="cpu")
    return preset("default").replace(**{**tiny, **changes})


def checkpoint_ok(run: Path) -> int:
    tensors, meta = load_checkpoint(run / faults.CHECKPOINT)
    assert all(t.isfinite().all() for t in tensors.values() if t.is_floating_point())
    assert ganforge.load(run).sample(2, seed=0).shape[0] == 2
    return meta["step"]


def outcome(counter: collections.Counter) -> str:
    return "; ".join(f"{n}x {what}" for what, n in counter.most_common())


def refusal(fn) -> str:
    """'refused: <message start>' for a GanforgeError, 'loaded' otherwise; anything else escapes."""
    try:
        fn()
    except GanforgeError as e:
        assert "\n" not in str(e)
        return "refused (one-line GanforgeError)"
    return "loaded"


# -- crash safety ------------------------------------------------------------------------------
def record_kills(work: Path, data: Path, kills: int, repeat: int) -> list[Row]:
    rows: list[Row] = []
    run, rng, step = work / "killed", random.Random(2026), None
    phases, in_write, went_back, loaded = collections.Counter(), 0, 0, 0
    for i in range(kills):
        kill = faults.kill_once(data, run, rng, "starting" if i % 2 == 0 else "training", width=128)
        phases[kill.phase] += 1
        in_write += kill.in_write
        if kill.step is not None:
            new = checkpoint_ok(run)
            went_back += step is not None and new < step
            step, loaded = new, loaded + 1
    rows.append((f"SIGKILL at a random moment (seeded; {phases['starting']} within 0-2.5 s of start, "
                 f"{phases['training']} within 0.5 s of a checkpoint while training; 25 MB checkpoints "
                 "written every step)", kills,
                 f"{loaded} left a checkpoint that loads (the others died before the first one, and "
                 f"the next start trained afresh); {in_write} landed inside a checkpoint write (temporary "
                 f"file left, old checkpoint intact); {went_back} went back in time"))

    # A run past step 0 of its own: the random kills above may leave one at step 0, whose resume
    # writes its step-0 checkpoint again first, so the counts below would be off by one.
    run = work / "kill-points"
    proc = faults.spawn(faults.train_args(data, run, resume=False, steps=2))
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    for point, what in faults.KILL_POINTS.items():
        ok = collections.Counter()
        for _ in range(repeat):
            before = checkpoint_ok(run)
            proc = faults.spawn(faults.train_args(data, run, resume=True), point, nth=2)
            proc.communicate(timeout=300)
            after = checkpoint_ok(run)
            expected = before + (2 if point == "after-rename" else 1)
            ok["killed; " + ("the checkpoint loads at the expected step" if after == expected and
                             proc.returncode == -signal.SIGKILL else f"UNEXPECTED step {after}")] += 1
        rows.append((f"SIGKILL inside the 2nd checkpoint write: {what}", repeat, outcome(ok)))

    for sig in (signal.SIGINT, signal.SIGTERM):
        ok = collections.Counter()
        for _ in range(repeat):
            before = faults.checkpoint_id(run)
            proc = faults.spawn(faults.train_args(data, run, resume=True))
            faults.wait_for_new_checkpoint(proc, run, before)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=120)
            s = checkpoint_ok(run)
            good = proc.returncode == 128 + sig and f"stopped by {sig.name} at step {s}; checkpoint saved" in err
            ok[f"exit {proc.returncode}, checkpoint saved at the step it stopped" if good else
               f"UNEXPECTED exit {proc.returncode}: {err[-200:]}"] += 1
        rows.append((f"{sig.name} while training", repeat, outcome(ok)))

    final = checkpoint_ok(run) + 3
    proc = faults.spawn(faults.train_args(data, run, resume=True, steps=final))
    _, err = proc.communicate(timeout=600)
    steps = [r["step"] for r in RunDir(run).read_metrics()]
    cfg = stored_config(run).replace(steps=final, checkpoint_every=final, log_every=final, sample_every=final)
    torch.set_num_threads(1)
    clean = train(cfg, work / "clean", progress=False)
    got, want = (unprefixed("G", load_checkpoint(r / faults.CHECKPOINT)[0]) for r in (run, clean))
    diff = max(float((got[k] - want[k]).abs().max()) for k in want)
    rows.append((f"--resume after all of the above, to step {final}", 1,
                 f"exit {proc.returncode}; metrics.jsonl holds steps 1..{final} once each: "
                 f"{steps == list(range(1, final + 1))}; largest difference of G's weights from an "
                 f"uninterrupted run of {final} steps: {diff:.2g}"))
    return rows


# -- divergence --------------------------------------------------------------------------------
def record_divergence(work: Path, data: Path, repeat: int) -> list[Row]:
    rows: list[Row] = []
    logging.getLogger("ganforge").setLevel(logging.ERROR)
    for where in ("G", "loss_d"):
        ok = collections.Counter()
        for i in range(repeat):
            at = 4 + i
            run = health.poisoned(Trainer(tiny_config(data, steps=9), work / f"nan-{where}-{i}",
                                               progress=False), {at}, where).train()
            meta = load_checkpoint(RunDir(run).checkpoint())[1]
            events = [r for r in RunDir(run).read_metrics() if "event" in r]
            good = (meta["step"] == 9 and len(events) == 1 and events[0]["detected_at"] == at
                    and meta["opt_g"]["param_groups"][0]["lr"] == preset("default").lr_g * DIVERGENCE_LR_FACTOR)
            checkpoint_ok(run)
            ok["detected at once, rolled back, lr halved, finished, finite checkpoint" if good else "UNEXPECTED"] += 1
        rows.append((f"{'NaN written into a G weight' if where == 'G' else 'Inf loss_d'} once, at step 4-6",
                     repeat, outcome(ok)))
    ok = collections.Counter()
    for i in range(repeat):
        run = work / f"nan-always-{i}"
        trainer = health.poisoned(Trainer(tiny_config(data, steps=30), run, progress=False),
                                       {4 + i}, "G", once=False)
        try:
            trainer.train()
            ok["UNEXPECTED: finished"] += 1
        except GanforgeError:
            step = checkpoint_ok(run)
            ok[f"stopped after 3 roll-backs with a GanforgeError; checkpoint of step {step} kept, finite"] += 1
    rows.append(("NaN in G every time step 4-6 is reached", repeat, outcome(ok)))
    for loss in ("lsgan", "wgan-gp"):  # can a learning rate of 1 make training diverge by itself?
        run = work / f"lr-1-{loss}"
        code, out = run_cli(["train", "--data", str(data), "--out", str(run), "--width", "16", "--z-dim", "8",
                             "--batch-size", "32", "--steps", "60", "--lr-g", "1", "--lr-d", "1", "--loss", loss,
                             "--device", "cpu", "--quiet"])
        events = [r for r in RunDir(run).read_metrics() if "event" in r]
        rows.append((f"--lr-g 1 --lr-d 1 --loss {loss}, 60 steps (no injection)", 1,
                     f"exit {code}, {len(events)} roll-back(s)" + ("" if events else ": no NaN or Inf arose "
                     "(Adam moves each weight by at most about lr per step), hence the injected faults above")))
    return rows


def run_cli(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


# -- hostile and broken files ------------------------------------------------------------------
def record_files(work: Path, data: Path, tiny_run: Path, repeat: int, examples: int) -> list[Row]:
    rows: list[Row] = []
    marker = work / "pwned"
    payload = hostile.Payload(marker)
    for kind in ("pickle.dumps", "torch.save"):
        ok = collections.Counter()
        proof = work / "proof"
        if kind == "pickle.dumps":
            proof.write_bytes(__import__("pickle").dumps({"G.weight": payload}))
        else:
            torch.save({"G.weight": payload}, proof)
        for name in ("checkpoints/last.safetensors", "model.pt", "model.safetensors", "model.ckpt"):
            run = Path(shutil.copytree(tiny_run, work / "evil"))
            path = run / name
            shutil.copy(proof, path)
            calls = [lambda: refusal(lambda: ganforge.load(path)).startswith("refused"),
                     lambda: run_cli(["generate", str(path), "--n", "2", "--out", str(work / "x.png")])[0] == 2]
            if name.startswith("checkpoints/"):
                calls.append(lambda: run_cli(["train", "--resume", str(run), "--steps", "9", "--quiet"])[0] == 2)
            for call in calls:
                refused = call()
                ok["refused, payload not run" if refused and not marker.exists() else "UNEXPECTED"] += 1
            shutil.rmtree(run)
        rows.append((f"planted {kind} payload as a checkpoint / .pt / .safetensors / .ckpt, via "
                     "ganforge.load, generate, train --resume", sum(ok.values()),
                     outcome(ok).replace("UNEXPECTED", "UNEXPECTED (loaded or ran)")))

    for what, blob in hostile.broken_checkpoints(tiny_run).items():
        ok = collections.Counter()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(repeat):
            path = work / "last.safetensors"
            path.write_bytes(blob)
            ok[refusal(lambda: ganforge.load(path))] += 1
        grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) // 1024
        rows.append((f"checkpoint: {what}", repeat, outcome(ok) + (f"; peak memory +{grew} MB" if grew else "")))

    labels = data / "train-labels-idx1-ubyte.gz"
    for what, blob in hostile.broken_idx().items():
        d = work / "idx"
        d.mkdir()
        (d / "train-images-idx3-ubyte").write_bytes(blob)
        shutil.copy(labels, d)
        ok = collections.Counter(refusal(lambda: load_dataset(str(d))) for _ in range(repeat))
        rows.append((f"IDX: {what}", repeat, outcome(ok)))
        shutil.rmtree(d)

    folder = work / "images"
    folder.mkdir()
    good = hostile.odd_mode_images(np.random.default_rng(0))
    for name, img in good.items():
        img.save(folder / name)
    png = (folder / "L.png").read_bytes()
    broken = {"zero bytes": b"", "truncated PNG": png[:len(png) // 2], "text named .png": b"hello\n",
              "PNG header declaring 100000x100000": hostile.png_declaring(100_000, 100_000),
              "PNG header declaring 1x64000001": hostile.png_declaring(1, 64_000_001),
              "pickle named .jpg": __import__("pickle").dumps(payload)}
    for name, blob in broken.items():
        (folder / (name.replace(" ", "_") + ".png")).write_bytes(blob)
    logging.getLogger("ganforge").setLevel(logging.WARNING)
    warnings = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(record.getMessage())
    logging.getLogger("ganforge").addHandler(handler)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    shapes = collections.Counter()
    for _ in range(repeat):
        for channels in (None, 1, 3):
            shapes[tuple(load_dataset(str(folder), resolution=16, channels=channels).images.shape)] += 1
    grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) // 1024
    logging.getLogger("ganforge").removeHandler(handler)
    rows.append((f"image folder with modes/formats {', '.join(good)} plus {', '.join(broken)}; "
                 "channels auto, 1 and 3", 3 * repeat,
                 f"the {len(good)} good images loaded every time (shapes {', '.join(map(str, shapes))}); "
                 f"the {len(broken)} broken ones skipped with {len(warnings) // (3 * repeat)} warning per load "
                 f"and no payload run ({not marker.exists()}); peak memory +{grew} MB"))
    return rows + record_fuzz(work, tiny_run, examples)


def record_fuzz(work: Path, tiny_run: Path, examples: int) -> list[Row]:
    rows: list[Row] = []
    budget = settings(fuzz.FUZZ, max_examples=examples)
    targets = {
        "IDX reader": (st.one_of(fuzz.idx_files(), st.binary(max_size=200)),
                       lambda p, blob: (p.write_bytes(blob), read_idx(p))),
        "image-folder loader": (st.lists(st.one_of(fuzz.image_bytes(), st.binary(max_size=64)),
                                         min_size=1, max_size=3),
                                lambda p, blobs: ([(p.parent / f"{i}.img").write_bytes(b) for i, b in enumerate(blobs)],
                                                  load_folder(p.parent, 8))),
        "checkpoint loader (GAN.from_checkpoint)": (
            st.one_of(fuzz.damaged_checkpoints(RunDir(tiny_run).checkpoint()), st.binary(max_size=100)),
            lambda p, blob: (p.write_bytes(blob), GAN.from_checkpoint(p).sample(2, seed=0))),
        "resume (stored config + Trainer)": (
            fuzz.damaged_checkpoints(RunDir(tiny_run).checkpoint()),
            lambda p, blob: resume_from(p, blob)),
    }
    for name, (strategy, load) in targets.items():
        ok = collections.Counter()
        n = examples if "resume" not in name else max(examples // 4, 1)

        @settings(budget, max_examples=n)
        @given(strategy)
        def run(value):
            with tempfile.TemporaryDirectory() as d:
                path = Path(d) / "last.safetensors"
                try:
                    load(path, value)
                    ok["loaded"] += 1
                except GanforgeError:
                    ok["refused with a one-line GanforgeError"] += 1

        run()
        rows.append((f"hypothesis fuzzing: {name}", sum(ok.values()),
                     outcome(ok) + "; no other exception"))
    return rows


def resume_from(path: Path, blob: bytes) -> None:
    run = path.parent / "run"
    RunDir(run).checkpoint().parent.mkdir(parents=True)
    RunDir(run).checkpoint().write_bytes(blob)
    Trainer(stored_config(run), run, resume=True, progress=False)


# -- disk --------------------------------------------------------------------------------------
def record_disk(work: Path, tiny_run: Path, repeat: int) -> list[Row]:
    rows: list[Row] = []
    for failure, (target, fake, reason) in disk.FAILURES.items():
        ok = collections.Counter()
        for i in range(repeat):
            path = work / f"disk-{i}" / "last.safetensors"
            path.parent.mkdir(exist_ok=True)  # atomic_write refuses a missing directory
            atomic_write(path, b"old")
            real = {"os.fdopen": os.fdopen, "os.fsync": os.fsync, "os.replace": os.replace,
                    "tempfile.mkstemp": tempfile.mkstemp}[target]
            module, attr = target.split(".")
            if failure == "write ENOSPC":
                fake = lambda fd, mode, real=real: disk.FailingFile(real(fd, mode))  # noqa: E731
            setattr(sys.modules[module], attr, fake)
            try:
                atomic_write(path, b"new" * 1000)
                ok["UNEXPECTED: written"] += 1
            except GanforgeError as e:
                intact = path.read_bytes() == b"old" and len(list(path.parent.iterdir())) == 1
                ok[f"'{reason}; the previous file is intact' and it is: {intact}"
                   if "the previous file is intact" in str(e) else str(e)] += 1
            finally:
                setattr(sys.modules[module], attr, real)
        rows.append((f"atomic_write fails at {failure} (injected)", repeat, outcome(ok)))

    def resume_refused(run: Path, reason: str, subprocess_limit: int | None = None) -> str:
        before = RunDir(run).checkpoint().read_bytes()
        if subprocess_limit:
            proc = subprocess.run([sys.executable, "-m", "ganforge", "train", "--resume", str(run), "--steps", "50",
                                   "--quiet"], capture_output=True, text=True, cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)},
                                  preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (subprocess_limit,) * 2))
            code, out = proc.returncode, proc.stderr
        else:
            code, out = run_cli(["train", "--resume", str(run), "--steps", "50", "--quiet"])
        intact = RunDir(run).checkpoint().read_bytes() == before and not faults.temp_files(run)
        said = f"{reason}; the previous file is intact" in out and out.startswith("error: cannot write")
        return f"exit {code}, said '{reason}; the previous file is intact': {said}, checkpoint intact: {intact}"

    mount = disk.can_mount()
    if mount:
        ok = collections.Counter()
        for i in range(repeat):
            mnt = work / f"tmpfs-{i}"
            mnt.mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], check=True)
            try:
                ok[resume_refused(Path(shutil.copytree(tiny_run, mnt / "run")), "No space left on device")] += 1
            finally:
                subprocess.run(["umount", str(mnt)], check=True)
        rows.append(("full disk: --resume of a run on a 3 MB tmpfs (a 2 MB checkpoint fits once, not twice)",
                     repeat, outcome(ok)))
        ok = collections.Counter()
        for i in range(repeat):
            run = Path(shutil.copytree(tiny_run, work / f"ro-{i}"))
            ckpts = RunDir(run).checkpoint().parent
            subprocess.run(["mount", "--bind", str(ckpts), str(ckpts)], check=True)
            subprocess.run(["mount", "-o", "remount,bind,ro", str(ckpts)], check=True)
            try:
                ok[resume_refused(run, "Read-only file system")] += 1
            finally:
                subprocess.run(["umount", str(ckpts)], check=True)
        rows.append(("read-only checkpoints directory (read-only bind mount): --resume", repeat, outcome(ok)))
    else:
        rows.append(("full disk (tmpfs) and read-only bind mount", 0, "not tried: mount is not permitted here"))
    ok = collections.Counter()
    for i in range(repeat):
        run = Path(shutil.copytree(tiny_run, work / f"fsize-{i}"))
        ok[resume_refused(run, "File too large", RunDir(run).checkpoint().stat().st_size // 2)] += 1
    rows.append(("file-size limit (RLIMIT_FSIZE) at half a checkpoint: --resume in a subprocess", repeat, outcome(ok)))
    return rows


# -- cost of the per-step check ----------------------------------------------------------------
def record_server(tiny_run: Path, requests: int = 2000) -> list[Row]:
    """benchmarks/serve_load.py against a real `ganforge serve` process of the tiny run."""
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "serve_load.py"), str(tiny_run),
                        "--requests", str(requests), "--concurrency", "16"],
                       capture_output=True, text=True, timeout=900, cwd=ROOT)
    lines = p.stdout.strip().splitlines()
    return [(f"server load from a second process on 127.0.0.1: {lines[0]}", requests,
             f"exit {p.returncode}; " + "; ".join(lines[1:]))]


def record_overhead(work: Path, data: Path) -> list[Row]:
    """Time the per-step check alone and a whole training step (best of several rounds: the
    machine may be shared)."""
    from ganforge.training.health import nonfinite

    rows: list[Row] = []
    torch.set_num_threads(1)  # timings on a shared machine: one thread does not spin-wait on the other
    for width in (16, 128):
        trainer = Trainer(tiny_config(data, steps=10**9, width=width, batch_size=64), work / "speed", progress=False)
        nets = {"G": trainer.state.G, "D": trainer.state.D}
        stats = trainer.step()
        losses = {k: stats[k] for k in ("loss_d", "loss_g")}
        check, step = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(100):
                nonfinite(losses, nets)
            check.append((time.perf_counter() - t0) / 100)
            t0 = time.perf_counter()
            for _ in range(20):
                trainer.step()
            step.append((time.perf_counter() - t0) / 20)
        params = sum(p.numel() for net in nets.values() for p in net.parameters())
        rows.append((f"per-step NaN/Inf check, {trainer.cfg.model.net} width {width} ({params / 1e6:.2f} M weights), "
                     f"batch 64, --amp {trainer.cfg.amp}, CPU, 1 thread", 600, f"check {min(check) * 1e3:.2f} ms, training step {min(step) * 1e3:.1f} ms: "
                     f"{min(check) / min(step) * 100:.1f}% of a step"))
    return rows


DESIGN = """## What ganforge promises, and how

- **Crash safety.** A checkpoint is one safetensors file written to a temporary file, fsynced and
  renamed over the old one (`ganforge.checkpoint.atomic_write`), so a kill at any moment leaves
  the old or the new checkpoint, never a mix. Training writes a checkpoint at step 0 before
  anything else, so every run directory that holds a run can be resumed; one without a checkpoint
  (killed while starting) may simply be trained into again. `--resume` deletes the temporary files
  of interrupted writes and drops the metrics logged after the checkpoint's step (they are trained
  again), so `metrics.jsonl` holds every step once. SIGINT/SIGTERM stop after the current step,
  save, and exit with 128 + signal number; a second signal stops at once.
- **Divergence.** After every step one fused check (`ganforge.training.health.nonfinite`: the two losses
  and the norms of G's and D's weights, one device sync) looks for NaN or Inf. On divergence the
  loop rolls back to the last checkpoint on disk and halves both learning rates (recorded in
  `metrics.jsonl` as an `"event": "diverged"` record, and in the optimizer state of later
  checkpoints); after 3 roll-backs in one process it stops with `error: training diverged ...`,
  exit 2. `save_checkpoint` refuses any tensor holding NaN or Inf, so a diverged state never
  replaces a good checkpoint. `ganforge.training.health.mode_collapse(record, num_classes)` turns an
  evaluation record (`classes_covered`, `recall`) into a warning.
- **Hostile files.** Nothing is ever unpickled: checkpoints are parsed as safetensors plus JSON.
  The stored configuration is validated, and the weights' names, shapes and dtypes are compared
  with networks built on PyTorch's meta device before any real network is allocated. IDX headers
  are checked (sizes multiplied in Python integers) before the body is read; images over 64 M
  pixels are refused from their header, and each image is shrunk as soon as it is decoded.
- **Disk problems.** A failing write (full disk, read-only directory, I/O error) removes its
  temporary file and stops with one line naming the file, the reason, and that the previous file
  is intact.""".splitlines()


def write_doc(sections: dict[str, list[Row]], path: Path, seconds: float) -> None:
    lines = ["# Reliability record", "",
             "Generated by `python scripts/reliability_record.py` (do not edit by hand) on "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {platform.machine()}, "
             f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch {torch.__version__}, "
             f"running as {'root' if os.geteuid() == 0 else 'a user'}; took {seconds / 60:.1f} min.",
             "The CI tests (`tests/system/test_crash.py`, `test_fuzz.py`, `test_disk.py`, "
             "`tests/unit/test_health.py`, `test_hostile.py`) run the same faults fewer times, "
             "with the same helpers (`tests/harness/`).", "", *DESIGN, ""]
    for title, rows in sections.items():
        lines += [f"## {title}", "", "| fault or bad input | tried | outcome |", "|---|---:|---|"]
        lines += [f"| {fault} | {n} | {result} |" for fault, n, result in rows]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30, help="random SIGKILLs")
    parser.add_argument("--repeat", type=int, default=3, help="tries of each other fault")
    parser.add_argument("--examples", type=int, default=400, help="hypothesis examples per parser")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning, module="PIL")  # fuzzed TIFF tags
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ganforge-reliability-") as d:
        work = Path(d)
        data = tiny_digits(work / "digits")
        tiny_run = train(tiny_config(data, steps=6, ema=0.9, log_every=2), work / "tiny", progress=False)
        sections = {}
        for title, record in (("Crash safety", lambda: record_kills(work, data, args.kills, args.repeat)),
                              ("Divergence", lambda: record_divergence(work, data, args.repeat)),
                              ("Hostile and broken files", lambda: record_files(work, data, tiny_run, args.repeat,
                                                                                args.examples)),
                              ("Disk problems", lambda: record_disk(work, tiny_run, args.repeat)),
                              ("The server under load", lambda: record_server(tiny_run)),
                              ("Cost", lambda: record_overhead(work, data))):
            t0 = time.perf_counter()
            sections[title] = record()
            print(f"{title}: {len(sections[title])} faults, {time.perf_counter() - t0:.0f} s", flush=True)
            write_doc(sections, args.out, time.perf_counter() - start)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
