"""Speed with a physical yardstick: training and generation throughput against the machine's
measured float32 matmul rate.

    python benchmarks/throughput.py [--threads 2] [--seconds 10] [--out benchmarks/THROUGHPUT.md]

For each network at the default preset's settings, and for the default and tutorial presets
themselves, it measures training images/s (real images through D per second), the FLOPs of one
training step (convolutions and matmuls, counted by torch.utils.flop_counter on a real step),
the achieved GFLOP/s and its ratio to a large square float32 matmul on the same threads,
generation images/s at batch 1,000 and single-image latency (median of 200).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from ganforge.config import IMAGE_NETS, preset  # noqa: E402
from ganforge.training import Trainer  # noqa: E402

CLASSIC_NOTEBOOK_IMG_PER_S = 2030  # the peer figure quoted in the issue, measured on this machine


def matmul_gflops(seconds: float, n: int = 2048) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def train_speed(cfg, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg.replace(device="cpu"), Path(tmp) / "run", progress=False)
        for _ in range(5):  # warm-up: allocator, oneDNN primitive caches
            trainer.step()
        with FlopCounterMode(display=False) as counter:
            trainer.step()
        flops = counter.get_total_flops()
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            trainer.step()
            steps += 1
        dt = time.perf_counter() - t0
        G = trainer.sampler.eval()
        z_dim, k = cfg.model.z_dim, trainer.cfg.model.num_classes
        with torch.no_grad():
            z = torch.randn(1000, z_dim)
            y = torch.arange(1000) % k if k else None
            G(z, y)
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds / 2:
                G(z, y)
                n += 1000
            gen_rate = n / (time.perf_counter() - t0)
            z1, y1 = z[:1], (y[:1] if y is not None else None)
            lat = []
            for _ in range(200):
                t = time.perf_counter()
                G(z1, y1)
                lat.append(time.perf_counter() - t)
    return {"img_per_s": steps * cfg.batch_size * cfg.n_dis / dt, "gflop_per_step": flops / 1e9,
            "gflops": flops * steps / dt / 1e9, "gen_img_per_s": gen_rate,
            "latency_ms": statistics.median(lat) * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "THROUGHPUT.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    peak = matmul_gflops(args.seconds / 2)
    default = preset("default")
    rows = [("default preset", default), ("tutorial preset", preset("tutorial"))]
    rows += [(f"net={net} (default settings)", default.replace(net=net)) for net in IMAGE_NETS if net != default.model.net]
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}, "
        f"{time.strftime('%Y-%m-%d')}. Command: `python benchmarks/throughput.py --threads {args.threads} "
        f"--seconds {args.seconds:g}`.",
        "",
        f"float32 matmul (2048²): **{peak:.0f} GFLOP/s** (the yardstick).",
        "",
        "| configuration | train img/s | GFLOP/step | achieved GFLOP/s | % of matmul | generate img/s (batch 1000) | 1-image latency ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, cfg in rows:
        r = train_speed(cfg, args.seconds)
        lines.append(f"| {name} | {r['img_per_s']:,.0f} | {r['gflop_per_step']:.3f} | {r['gflops']:.1f} | "
                     f"{100 * r['gflops'] / peak:.0f}% | {r['gen_img_per_s']:,.0f} | {r['latency_ms']:.2f} |")
        print(lines[-1], flush=True)
    tut = next(line for line in lines if line.startswith("| tutorial"))
    tut_rate = float(tut.split("|")[2].replace(",", ""))
    lines += ["", f"tutorial preset vs the classic notebook ({CLASSIC_NOTEBOOK_IMG_PER_S:,} img/s on this machine, "
              f"per the issue): **{tut_rate / CLASSIC_NOTEBOOK_IMG_PER_S:.1f}×**."]
    args.out.write_text("# Throughput\n\n" + "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
