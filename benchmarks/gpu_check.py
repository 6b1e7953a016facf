"""What ganforge does with a GPU, in one short run (under 5 minutes), written into docs/gpu.md:
the machine, training throughput of the `default` and `tutorial` presets at batch 32, 256 and
1024 with `--amp bf16` off and on (images/s and as a share of the GPU's own matmul yardstick),
and a 2-minute training run of the default preset scored by `ganforge evaluate --json`.

    bash benchmarks/gpu_check.sh                      # the GPU run (refuses without CUDA)
    python benchmarks/gpu_check.py --device cuda [--data DIR] [--out docs/gpu.md]
    python benchmarks/gpu_check.py --device cpu --quick --out /tmp/gpu.md   # rehearsal, seconds

Throughput rows: `Trainer.step()` alone (no loop, files or progress bar around it), after
WARMUP_STEPS untimed steps (cuDNN/cuBLAS kernel choices, the allocator), for STEP_SECONDS with
the device synchronised before the clock is read at both ends (GPU work is only queued by the
calls). FLOPs per step are counted on a real step by torch.utils.flop_counter (matmuls and
convolutions); the share divides the achieved FLOP/s by the matmul yardstick of the precision
the row computes in (float32 for amp off, bfloat16 for amp bf16), measured on the same GPU at
n = GPU_MATMUL_N, where a product lasts long enough to time.

--quick (for the test, on any device): batches QUICK_BATCHES, a couple of timed steps, a
quality run of QUICK_STEPS steps scored on 200 samples: it checks that every part runs and the document is
written, not how fast anything is. A CPU run needs --out: docs/gpu.md holds GPU figures only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))  # find _common however we are loaded
import _common  # noqa: E402  (puts the repository root first on sys.path)

from ganforge.config import preset  # noqa: E402
from ganforge.rundir import RunDir  # noqa: E402
from ganforge.training import Trainer, train  # noqa: E402

BEGIN, END = "<!-- gpu-check:begin -->", "<!-- gpu-check:end -->"
DOC = _common.ROOT / "docs" / "gpu.md"
PRESETS = ("default", "tutorial")
AMPS = ("off", "bf16")
BATCHES, QUICK_BATCHES = (32, 256, 1024), (4, 8)
WARMUP_STEPS = 5
STEP_SECONDS = 3.0  # 12 rows: about a minute of the 5, with the Trainers' start-up
QUALITY_MINUTES = 2.0
QUICK_STEPS = 20
EVAL_SAMPLES, QUICK_EVAL_SAMPLES = 10_000, 200
GPU_MATMUL_N = 8192  # 1.1 TFLOP a product: a millisecond or more even at bf16 on an H100
QUALITY_KEYS = ("fid", "precision", "recall", "class_accuracy")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine(device: torch.device, threads: int, quick: bool) -> dict:
    """The accelerator (nvidia-smi's name, else torch's), versions, date and the yardsticks of
    both precisions on `device`."""
    n, repeats = (512, 3) if quick else (GPU_MATMUL_N if device.type == "cuda" else _common.MATMUL_N, 7)
    if device.type == "cuda":
        try:
            name = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                   "--format=csv,noheader"], capture_output=True, text=True, timeout=30,
                                  check=True).stdout.splitlines()[device.index or 0].strip()
        except (OSError, subprocess.SubprocessError, IndexError):
            name = f"{torch.cuda.get_device_name(device)} (nvidia-smi unavailable)"
    else:
        name = f"{_common.cpu_model()} (CPU, {threads} thread(s))"
    return {"device": name, "torch": torch.__version__, "cuda": torch.version.cuda,
            "cpu_header": _common.header_line(_common.machine_header(threads)),
            "yardstick_n": n, "yardstick_repeats": repeats,
            "gflops": {amp: _common.matmul_gflops(threads, n, repeats, device, dtype)
                       for amp, dtype in (("off", torch.float32), ("bf16", torch.bfloat16))}}


def step_throughput(cfg, device: torch.device, seconds: float, min_steps: int) -> dict:
    """Images through D per second and FLOPs per step of `Trainer.step()` for `cfg`."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run", progress=False)
        for _ in range(WARMUP_STEPS):
            trainer.step()
        with FlopCounterMode(display=False) as counter:
            trainer.step()
        synchronize(device)
        steps, t0 = 0, time.perf_counter()
        while steps < min_steps or time.perf_counter() - t0 < seconds:
            trainer.step()
            steps += 1
        synchronize(device)
        dt = time.perf_counter() - t0
    return {"img_per_s": steps * cfg.batch_size * cfg.n_dis / dt, "gflop_per_step": counter.get_total_flops() / 1e9,
            "steps_per_s": steps / dt}


def quality_run(data: str, device: torch.device, quick: bool, threads: int) -> dict:
    """The default preset for QUALITY_MINUTES (quick: QUICK_STEPS small steps), then `ganforge evaluate
    --json` on the run in a fresh process, as a user would score it."""
    cfg = preset("default").replace(data=data, device=str(device))
    cfg = cfg.replace(steps=QUICK_STEPS, minutes=None, batch_size=8, eval_every=0, log_every=10, sample_every=10,
                      checkpoint_every=10) if quick else cfg.replace(minutes=QUALITY_MINUTES, steps=None, epochs=None)
    n = QUICK_EVAL_SAMPLES if quick else EVAL_SAMPLES
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        train(cfg, run, progress=False)
        logged = [r for r in RunDir(run).read_metrics() if "img_per_s" in r]
        p = subprocess.run([sys.executable, "-m", "ganforge", "evaluate", str(run), "--n", str(n), "--json"],
                           capture_output=True, text=True, env=_common.subprocess_env(threads), timeout=600)
    if p.returncode != 0:
        raise SystemExit(f"error: ganforge evaluate failed: {p.stderr.strip().splitlines()[-1:]}")
    scores = json.loads(p.stdout.strip().splitlines()[-1])
    last = logged[-1] if logged else {}
    budget = f"{QUICK_STEPS} steps at batch 8 (--quick)" if quick else f"{QUALITY_MINUTES:g} minutes"
    return {"budget": budget, "steps": last.get("step"),
            "img_per_s": last.get("img_per_s"), "n": n, **{k: scores.get(k) for k in QUALITY_KEYS}}


def report(info: dict, command: str, rows: list[dict], quality: dict, on_gpu: bool) -> str:
    y = info["gflops"]
    lines = [BEGIN]
    if not on_gpu:
        lines += ["**A rehearsal, not GPU figures**: this block was written by a run on "
                  f"{info['device']}. This script has not run on a GPU yet.", ""]
    lines += [
        f"Device: {info['device']}; torch {info['torch']}" + (f", CUDA {info['cuda']}" if info["cuda"] else "") + ".",
        f"Host: {info['cpu_header']}.",
        f"Matmul yardstick on the device: float32 **{y['off']:,.0f} GFLOP/s**, bfloat16 **{y['bf16']:,.0f} "
        f"GFLOP/s** ({info['yardstick_n']}x{info['yardstick_n']} torch.mm, best of {info['yardstick_repeats']} "
        f"after {_common.MATMUL_WARMUP} warm-up).",
        "",
        "```",
        command,
        "```",
        "",
        "**Training throughput** (`Trainer.step()` alone; images/s = real images through D per second; "
        "% of yardstick: achieved FLOP/s over the matmul rate of the row's precision):",
        "",
        "| preset | batch | amp | img/s | steps/s | GFLOP/step | achieved GFLOP/s | % of yardstick |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        achieved = r["gflop_per_step"] * r["steps_per_s"]
        lines.append(f"| {r['preset']} | {r['batch']} | {r['amp']} | {r['img_per_s']:,.0f} | {r['steps_per_s']:,.1f} "
                     f"| {r['gflop_per_step']:.3f} | {achieved:,.1f} | {100 * achieved / y[r['amp']]:.1f}% |")
    budget = quality["budget"]
    fmt = {k: ("—" if quality[k] is None else f"{quality[k]:.3f}") for k in QUALITY_KEYS}
    lines += [
        "",
        f"**Quality**: the default preset (amp off, no compile) for {budget}, then "
        f"`ganforge evaluate RUN --n {quality['n']} --json` against the MNIST test set:",
        "",
        "| training | steps (last log) | img/s (last log) | FID (digit features) | precision | recall | class accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| {budget} | {quality['steps']} | "
        + ("—" if quality["img_per_s"] is None else f"{quality['img_per_s']:,.0f}")
        + f" | {fmt['fid']} | {fmt['precision']} | {fmt['recall']} | {fmt['class_accuracy']} |",
        END,
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="'cuda', 'cuda:N' or 'cpu' [default: cuda]")
    ap.add_argument("--quick", action="store_true", help="tiny batches and runs: checks the script, measures nothing")
    _common.add_data_arg(ap, _common.default_data(fallback="digits"))
    _common.add_threads_arg(ap)
    ap.add_argument("--out", type=Path, help=f"markdown file whose block is (re)written [default on CUDA: {DOC}]")
    args = ap.parse_args(argv)
    args.device = torch.device(args.device)
    if args.device.type == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA device; "
                 "run on a machine with one, or give --device cpu --quick --out FILE")
    if args.out is None:
        if args.device.type != "cuda":
            ap.error(f"give --out FILE for a run on {args.device}: {DOC.name} holds GPU figures only")
        args.out = DOC
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    threads = _common.set_threads(args.threads)
    command = "python " + " ".join(shlex.quote(a) for a in
                                   ["benchmarks/gpu_check.py", *(sys.argv[1:] if argv is None else argv)])
    info = machine(args.device, threads, args.quick)
    print(f"{info['device']}: matmul yardstick float32 {info['gflops']['off']:,.0f}, bfloat16 "
          f"{info['gflops']['bf16']:,.0f} GFLOP/s", file=sys.stderr, flush=True)
    seconds, min_steps = (0.0, 2) if args.quick else (STEP_SECONDS, 10)
    rows = []
    for name in PRESETS:
        for batch in QUICK_BATCHES if args.quick else BATCHES:
            for amp in AMPS:
                cfg = preset(name).replace(data=args.data, device=str(args.device), batch_size=batch, amp=amp)
                rows.append({"preset": name, "batch": batch, "amp": amp,
                             **step_throughput(cfg, args.device, seconds, min_steps)})
                print(f"  {name} batch {batch} amp {amp}: {rows[-1]['img_per_s']:,.0f} img/s",
                      file=sys.stderr, flush=True)
    with contextlib.redirect_stdout(sys.stderr):  # train's own messages, off the block printed below
        quality = quality_run(args.data, args.device, args.quick, threads)
    block = report(info, command, rows, quality, on_gpu=args.device.type == "cuda")
    print(block)
    _common.write_block(args.out, block, BEGIN, END)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
