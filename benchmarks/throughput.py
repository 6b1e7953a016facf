"""Speed with a physical yardstick: ganforge's tutorial loop against the classic notebook's, side
by side in one run, and training and generation throughput as fractions of the machine's
measured float32 matmul rate.

    python benchmarks/throughput.py [--threads 2] [--seconds 4] [--pairs 4] [--step-seconds 2]
                                    [--all-nets] [--data DIR] [--out benchmarks/THROUGHPUT.md]
    python benchmarks/throughput.py --amp bf16 [--threads 1] [--pairs 4] ...   # 3. below
    python benchmarks/throughput.py --compile-cache [--threads 1] [--step-seconds 10]  # 4. below

1. Whole loop against whole loop, alternating (notebook, ganforge, notebook, ganforge, ...) so
   that drift in a shared machine's speed falls on both alike:
   - notebook: `notebook_baseline.run_notebook` (per-sample Dataset + DataLoader, D and G steps,
     .item() bookkeeping, tqdm) for `--seconds` of loop time;
   - ganforge: `train()` with the `tutorial` preset as shipped (`--amp auto`: bf16 autocast on a
     CPU that computes bf16 natively, float32 elsewhere; the report says which) on the same data
     for `--seconds` of loop time, into a temporary run directory, with its progress bar on
     (written to /dev/null, as the notebook's is) and its logging, health checks and
     sample/checkpoint cadence as they are.
   Both count real images through D per second of loop time (wall clock minus start-up: data
   loading, building, ganforge's first and last checkpoint) from the end of step 20 to the end of
   the last step, leaving out the warm-up (first-call allocations and kernel choices). For
   ganforge the step ends are recorded by wrapping `Trainer.step` (one perf_counter call each).
   The ratio is the median of the pairs' ratios. Runs of a few seconds contain no sample grid
   (every 500 steps) and no notebook display (every 500 steps) on either side.
2. One training step (`Trainer.step()` alone, no loop around it) of the default and tutorial
   presets (and with --all-nets of the other nets at default settings), for `--step-seconds`
   after 5 warm-up steps: FLOPs per step (matmuls and convolutions, counted by
   torch.utils.flop_counter on a real step), images/s, achieved GFLOP/s and its fraction of the
   yardstick; batched generation (1,000 per call) as a loaded model generates (G in eval mode,
   channels-last, through `generator.folded` where it applies), with FLOPs per image counted the
   same way on the plain G, and single-image latency (median of 200).
3. With --amp bf16, only part 1, each pair growing a third run: the tutorial preset in float32
   and under bf16 autocast, whatever `auto` means here. Each one's ratio to the notebook is reported, with the matmul
   FLOPs of a tutorial step and the milliseconds they take at the float32 and bfloat16
   yardsticks; written to its own block (throughput-amp).
4. With --compile-cache, only benchmarks/compile_cache.py: torch.compile's start-up with a cold
   and a warm inductor cache and its steady steps/s against eager; its own block (compile-cache).
Every row carries the yardstick measured just before it (`_common.row_yardstick`) and the CPU
pressure during it (Linux PSI: the share of time some task waited for a core). Well above what
the benchmark causes alone (BUSY_PCT), other processes were competing, and two-thread timings of
small operations suffer badly; whole-loop pairs measured so are repeated and not counted.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))  # find _common however we are loaded
import _common  # noqa: E402  (puts the repository root first on sys.path)
import notebook_baseline  # noqa: E402

from ganforge import dist  # noqa: E402
from ganforge.config import IMAGE_NETS, preset  # noqa: E402
from ganforge.generator import folded, for_inference  # noqa: E402
from ganforge.training import Trainer, train  # noqa: E402

BEGIN, END = "<!-- throughput:begin -->", "<!-- throughput:end -->"
SKIP_STEPS = 20  # warm-up left out of both loops' images/s (first calls allocate and pick kernels)
GEN_BATCH = 1000
# CPU pressure above which a row is suspect: a process keeping both cores busy alone shows some
# (3-16% on the 2-core machine of THROUGHPUT.md: kernel threads wait behind it); other test suites
# running beside it showed 40-90%.
BUSY_PCT = 25
LATENCY_CALLS = 200


# -- 1. whole loop against whole loop ---------------------------------------------------------
@contextlib.contextmanager
def step_clock():
    """Record when each `Trainer.step()` ends (one perf_counter call per step), so that the warm-up
    can be left out of a run through `train()` at step granularity. Nothing else changes."""
    ends: list[float] = []
    original = Trainer.step

    def step(self):
        stats = original(self)
        ends.append(time.perf_counter())
        return stats

    Trainer.step = step
    try:
        yield ends
    finally:
        Trainer.step = original


def run_ganforge_tutorial(seconds: float, data: str, amp: str | None = None) -> float | None:
    """ganforge's tutorial preset (as shipped, or with `amp`) through `train()`, the real entry
    point, for `seconds` of loop time: real images through D per second from the end of step
    SKIP_STEPS to the end of the last (None if the run did not get past SKIP_STEPS)."""
    cfg = preset("tutorial").replace(data=data, device="cpu", minutes=seconds / 60, steps=None, epochs=None)
    cfg = cfg if amp is None else cfg.replace(amp=amp)
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as devnull:
        with step_clock() as ends, contextlib.redirect_stderr(devnull):  # the progress bar, as the notebook's
            train(cfg, Path(tmp) / "run", progress=True)
    if len(ends) <= SKIP_STEPS:
        return None  # too slow to pass the warm-up: a busy machine, or --seconds too short
    return (len(ends) - SKIP_STEPS) * cfg.batch_size * cfg.n_dis / (ends[-1] - ends[SKIP_STEPS - 1])


def tutorial_name(amp: str | None) -> str:
    """None: the preset as shipped (`--amp auto`); "off": float32; "bf16"."""
    return {None: "ganforge tutorial", "off": "ganforge tutorial (float32)"}.get(amp, f"ganforge tutorial ({amp})")


def shipped_amp() -> str:
    """What the tutorial preset's `--amp auto` means on this machine's CPU."""
    return "bf16" if dist.uses_bf16(preset("tutorial").amp, torch.device("cpu")) else "float32"


def side_by_side(seconds: float, data: str, threads: int, pairs: int, max_pairs: int,
                 amps: tuple[str | None, ...] = (None,)) -> list[dict]:
    """Pairs (notebook, then ganforge with each of `amps`: a "pair" is then a group of
    1 + len(amps) runs) until `pairs` of them ran on a quiet machine (CPU pressure at most
    BUSY_PCT in every run) or `max_pairs` were tried; every run is returned, `kept` saying which
    count. Another process using a core can slow a two-thread loop of small operations many
    times over, and not both loops alike: such a pair says nothing about the ratio."""
    rows, kept = [], 0
    for i in range(max_pairs):
        if kept == pairs:
            break
        pair = []
        for name, amp in [("notebook", None), *((tutorial_name(a), a) for a in amps)]:
            peak = _common.row_yardstick(threads)
            with _common.PressureMeter() as pressure:
                if name == "notebook":
                    rate = notebook_baseline.run_notebook(seconds=seconds, data=data, threads=threads,
                                                          skip_steps=SKIP_STEPS)
                else:
                    rate = run_ganforge_tutorial(seconds, data, amp)
            pair.append({"pair": i + 1, "loop": name, "img_per_s": rate, "matmul_gflops": peak,
                         "pressure_pct": pressure.percent})
            shown = "too few steps" if rate is None else f"{rate:,.0f} img/s"
            print(f"  pair {i + 1}: {name:24s} {shown:>14s}   (matmul yardstick {peak:.0f} GFLOP/s, "
                  f"CPU pressure {_pct(pressure.percent)})", file=sys.stderr, flush=True)
        quiet = all(r["img_per_s"] is not None and (r["pressure_pct"] or 0) <= BUSY_PCT for r in pair)
        kept += quiet
        rows += [dict(r, kept=quiet) for r in pair]
    return rows


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def notebook_flops_per_image() -> float:
    """FLOPs of one notebook step (D and G updates, batch 128), per real image."""
    gen, disc, gen_opt, disc_opt, criterion = notebook_baseline.build()
    real = torch.rand(notebook_baseline.BATCH_SIZE, notebook_baseline.IMAGE_PIXELS)
    notebook_baseline.train_step(gen, disc, gen_opt, disc_opt, criterion, real)  # Adam state exists
    with FlopCounterMode(display=False) as counter:
        notebook_baseline.train_step(gen, disc, gen_opt, disc_opt, criterion, real)
    return counter.get_total_flops() / len(real)


# -- 2. one step, and generation --------------------------------------------------------------
def step_and_generation(cfg, seconds: float, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg.replace(device="cpu"), Path(tmp) / "run", progress=False)
        for _ in range(5):  # warm-up: allocator, oneDNN primitive caches
            trainer.step()
        with FlopCounterMode(display=False) as counter:
            trainer.step()
        step_flops = counter.get_total_flops()
        peak = _common.row_yardstick(threads)
        steps, t0 = 0, time.perf_counter()
        with _common.PressureMeter() as pressure:
            while time.perf_counter() - t0 < seconds:
                trainer.step()
                steps += 1
        dt = time.perf_counter() - t0
        # As a loaded model generates (GAN.from_checkpoint): its folded form where it has one;
        # the FLOPs are the plain G's, the work whichever form does it.
        G = for_inference(copy.deepcopy(trainer.state.sampler), trainer.cfg.model, "cpu")
        k = trainer.cfg.model.num_classes
        with torch.no_grad():
            z = torch.randn(GEN_BATCH, cfg.model.z_dim)
            y = torch.arange(GEN_BATCH) % k if k else None
            with FlopCounterMode(display=False) as counter:
                G(z, y)
            gen_flops = counter.get_total_flops() / GEN_BATCH
            G = folded(G, trainer.cfg.model, "cpu") or G
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds / 2:
                G(z, y)
                n += GEN_BATCH
            gen_rate = n / (time.perf_counter() - t0)
            z1, y1 = z[:1], (y[:1] if y is not None else None)
            latency = []
            for _ in range(LATENCY_CALLS):
                t = time.perf_counter()
                G(z1, y1)
                latency.append(time.perf_counter() - t)
    images_per_step = cfg.batch_size * cfg.n_dis
    return {"img_per_s": steps * images_per_step / dt, "gflop_per_step": step_flops / 1e9,
            "train_gflops": step_flops * steps / dt / 1e9, "gen_mflop_per_img": gen_flops / 1e6,
            "gen_img_per_s": gen_rate, "gen_gflops": gen_flops * gen_rate / 1e9,
            "latency_ms": statistics.median(latency) * 1e3, "matmul_gflops": peak,
            "pressure_pct": pressure.percent}


def report(header: dict, command: str, ab: list[dict], flops: dict[str, float], steps: list[tuple[str, dict]]) -> str:
    counted = [r for r in ab if r["kept"]] or [r for r in ab if r["img_per_s"] is not None]
    nb = [r["img_per_s"] for r in counted if r["loop"] == "notebook"]
    gf = [r["img_per_s"] for r in counted if r["loop"] != "notebook"]
    if not nb or not gf:
        raise SystemExit("no run of one of the loops finished its warm-up: the machine is too busy "
                         "(or --seconds too short) to measure")
    mean_ratio = statistics.mean(gf) / statistics.mean(nb)
    pairs = {}
    for r in counted:
        pairs.setdefault(r["pair"], {})[r["loop"]] = r["img_per_s"]
    pair_ratios = [p["ganforge tutorial"] / p["notebook"] for p in pairs.values() if len(p) == 2]
    ratio = statistics.median(pair_ratios) if pair_ratios else mean_ratio
    over = "quiet pairs" if any(r["kept"] for r in ab) else "runs that finished, **none of them on a quiet machine**"
    lines = [
        BEGIN,
        f"Machine: {_common.header_line(header)}.",
        "",
        "```",
        command,
        "```",
        "",
        "**Whole loop against whole loop** (alternating runs, same data, same threads; images/s = real "
        "images through D per second of loop time; % of matmul uses the FLOPs of each loop's own step):",
        "",
        "| pair | loop | img/s | GFLOP/s | % of matmul | matmul GFLOP/s (yardstick, just before) | CPU pressure "
        "| counted |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in ab:
        key = "notebook" if r["loop"] == "notebook" else "tutorial"
        if r["img_per_s"] is None:
            cells = [f"under {SKIP_STEPS} steps", "—", "—"]
        else:
            gflops = flops[key] * r["img_per_s"] / 1e9
            cells = [f"{r['img_per_s']:,.0f}", f"{gflops:.1f}", f"{100 * gflops / r['matmul_gflops']:.0f}%"]
        lines.append(f"| {r['pair']} | {r['loop']} | " + " | ".join(cells) + f" | {r['matmul_gflops']:.0f} | "
                     f"{_pct(r['pressure_pct'])} | {'yes' if r['kept'] else 'no (busy machine)'} |")
    lines += [
        "",
        f"**ganforge tutorial / notebook: {ratio:.2f}×**, the preset as shipped (`--amp auto`: "
        f"{shipped_amp()} on this CPU) (median of the pairs: "
        f"{', '.join(f'{x:.2f}×' for x in pair_ratios)}; ratio of the means {mean_ratio:.2f}×, "
        f"{statistics.mean(gf):,.0f} against {statistics.mean(nb):,.0f} img/s over the {over}). "
        f"FLOPs per real image: notebook {flops['notebook'] / 1e6:.2f} MFLOP, ganforge tutorial "
        f"{flops['tutorial'] / 1e6:.2f} MFLOP.",
        "",
        "**One training step and generation** (`Trainer.step()` alone; generation in batches of "
        f"{GEN_BATCH:,}; latency: one image, median of {LATENCY_CALLS}):",
        "",
        "| configuration | train img/s | GFLOP/step | achieved GFLOP/s | % of matmul | generate img/s | "
        "MFLOP/image | generate GFLOP/s | % of matmul | 1-image latency ms | matmul GFLOP/s (yardstick) | "
        "CPU pressure |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in steps:
        peak = r["matmul_gflops"]
        lines.append(f"| {name} | {r['img_per_s']:,.0f} | {r['gflop_per_step']:.3f} | {r['train_gflops']:.1f} | "
                     f"{100 * r['train_gflops'] / peak:.0f}% | {r['gen_img_per_s']:,.0f} | "
                     f"{r['gen_mflop_per_img']:.2f} | {r['gen_gflops']:.1f} | {100 * r['gen_gflops'] / peak:.0f}% | "
                     f"{r['latency_ms']:.2f} | {peak:.0f} | {_pct(r['pressure_pct'])} |")
    d = dict(steps)["default preset"]
    lines += [
        "",
        f"Default preset: one training step runs at **{100 * d['train_gflops'] / d['matmul_gflops']:.0f}%** of "
        f"the matmul yardstick; batched generation at **{100 * d['gen_gflops'] / d['matmul_gflops']:.0f}%** "
        f"({d['gen_img_per_s']:,.0f} digits/s at {d['gen_mflop_per_img']:.1f} MFLOP each).",
    ]
    busy = [r["pressure_pct"] for _, r in steps if r["pressure_pct"] is not None]
    if busy and max(busy) > BUSY_PCT:
        lines += ["", f"**Caution:** CPU pressure reached {max(busy):.0f}% during a step or generation "
                  "measurement: other processes were competing for the cores, so those figures are not this "
                  "machine's best."]
    lines.append(END)
    return "\n".join(lines) + "\n"


# -- 3. bf16 autocast: the tutorial in float32 and in bf16 against the notebook ----------------
AMP_BEGIN, AMP_END = "<!-- throughput-amp:begin -->", "<!-- throughput-amp:end -->"


def tutorial_step_gflop(data: str) -> float:
    """GFLOP of one tutorial-preset step (matmuls, counted on a real step)."""
    cfg = preset("tutorial").replace(data=data, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run", progress=False)
        trainer.step()
        with FlopCounterMode(display=False) as counter:
            trainer.step()
    return counter.get_total_flops() / 1e9


def amp_report(header: dict, command: str, ab: list[dict], amps: tuple[str, ...], step_gflop: float,
               bf16_gflops: float) -> str:
    """The side-by-side table with a tutorial run per amp setting, and each one's ratio to the
    notebook (median over the groups) with the milliseconds per step that explain it."""
    counted = [r for r in ab if r["kept"]] or [r for r in ab if r["img_per_s"] is not None]
    groups: dict[int, dict[str, float]] = {}
    for r in counted:
        groups.setdefault(r["pair"], {})[r["loop"]] = r["img_per_s"]
    images_per_step = preset("tutorial").batch_size * preset("tutorial").n_dis  # the notebook's batch too
    lines = [AMP_BEGIN, f"Machine: {_common.header_line(header)}; bfloat16 matmul yardstick "
             f"{bf16_gflops:.0f} GFLOP/s (same product in bfloat16).", "", "```", command, "```", "",
             "| pair | loop | img/s | ms/step | matmul GFLOP/s (yardstick, just before) | CPU pressure | counted |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in ab:
        rate = r["img_per_s"]
        cells = ["too few steps", "—"] if rate is None else [f"{rate:,.0f}", f"{1e3 * images_per_step / rate:.1f}"]
        lines.append(f"| {r['pair']} | {r['loop']} | " + " | ".join(cells) + f" | {r['matmul_gflops']:.0f} | "
                     f"{_pct(r['pressure_pct'])} | {'yes' if r['kept'] else 'no (busy machine)'} |")
    over = "quiet groups" if any(r["kept"] for r in ab) else "groups that finished, **none on a quiet machine**"
    lines.append("")
    for amp in amps:
        name = tutorial_name(amp)
        ratios = [g[name] / g["notebook"] for g in groups.values() if name in g and "notebook" in g]
        if ratios:
            lines.append(f"- **{name} / notebook: {statistics.median(ratios):.2f}×** (median over the {over}: "
                         f"{', '.join(f'{x:.2f}×' for x in ratios)})")
    peak = statistics.median(r["matmul_gflops"] for r in ab)
    lines += [f"- tutorial step: {step_gflop:.2f} GFLOP of matmuls = {1e3 * step_gflop / peak:.1f} ms at the "
              f"float32 yardstick ({peak:.0f} GFLOP/s, median of the rows), "
              f"{1e3 * step_gflop / bf16_gflops:.1f} ms at the bfloat16 one ({bf16_gflops:.0f} GFLOP/s)", AMP_END]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_threads_arg(ap)
    _common.add_data_arg(ap)
    ap.add_argument("--seconds", type=float, default=4.0,
                    help=f"loop time of each whole-loop run, the first {SKIP_STEPS} steps included [default: 4]")
    ap.add_argument("--pairs", type=int, default=4, help="notebook/ganforge pairs to count [default: 4]")
    ap.add_argument("--max-pairs", type=int, help="pairs to try before giving up on a quiet machine "
                    "[default: twice --pairs]")
    ap.add_argument("--step-seconds", type=float, default=2.0,
                    help="length of each step and generation measurement [default: 2]")
    ap.add_argument("--all-nets", action="store_true", help="also time the other nets at default settings")
    ap.add_argument("--amp", choices=("bf16",), help="only the side by side, with a third run per pair: the "
                    "tutorial preset with this autocast (its ratio to the notebook beside the float32 one); "
                    "writes its own block")
    ap.add_argument("--compile-cache", action="store_true", help="only torch.compile's start-up with a cold and "
                    "a warm cache and its steady steps/s (benchmarks/compile_cache.py); writes its own block")
    ap.add_argument("--out", type=Path, default=_common.ROOT / "benchmarks" / "THROUGHPUT.md",
                    help="markdown file whose results block is (re)written")
    args = ap.parse_args()
    threads = _common.set_threads(args.threads)
    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/throughput.py", *sys.argv[1:]])

    header = _common.machine_header(threads)
    print(_common.header_line(header), file=sys.stderr, flush=True)
    if args.compile_cache:
        import compile_cache

        print("torch.compile, cold and warm cache:", file=sys.stderr, flush=True)
        rows = compile_cache.compile_cache(args.data, threads, args.step_seconds)
        return _write(args.out, compile_cache.compile_report(header, command, rows),
                      compile_cache.COMPILE_BEGIN, compile_cache.COMPILE_END)
    print("whole loop against whole loop:", file=sys.stderr, flush=True)
    amps = ("off", args.amp) if args.amp else (None,)
    ab = side_by_side(args.seconds, args.data, threads, args.pairs, args.max_pairs or 2 * args.pairs, amps)
    if args.amp:
        bf16_gflops = _common.matmul_gflops(threads, dtype=torch.bfloat16)
        block = amp_report(header, command, ab, amps, tutorial_step_gflop(args.data), bf16_gflops)
        return _write(args.out, block, AMP_BEGIN, AMP_END)

    default = preset("default").replace(data=args.data)
    configs = [("default preset", default), ("tutorial preset", preset("tutorial").replace(data=args.data))]
    if args.all_nets:
        configs += [(f"net={net} (default settings)", default.replace(net=net))
                    for net in IMAGE_NETS if net != default.model.net]
    steps = []
    for name, cfg in configs:
        steps.append((name, step_and_generation(cfg, args.step_seconds, threads)))
        r = steps[-1][1]
        print(f"  {name}: step {r['img_per_s']:,.0f} img/s ({100 * r['train_gflops'] / r['matmul_gflops']:.0f}% of "
              f"matmul), generate {r['gen_img_per_s']:,.0f} img/s ({100 * r['gen_gflops'] / r['matmul_gflops']:.0f}%), "
              f"yardstick {r['matmul_gflops']:.0f} GFLOP/s", file=sys.stderr, flush=True)

    tutorial_cfg = preset("tutorial").replace(data=args.data)
    flops = {"notebook": notebook_flops_per_image(),
             "tutorial": dict(steps)["tutorial preset"]["gflop_per_step"] * 1e9
             / (tutorial_cfg.batch_size * tutorial_cfg.n_dis)}
    _write(args.out, report(header, command, ab, flops, steps), BEGIN, END)


def _write(path: Path, block: str, begin: str, end: str) -> None:
    print(block)
    _common.write_block(path, block, begin, end)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
