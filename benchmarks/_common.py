"""What every benchmark repeats, in one place: making this checkout's ganforge importable, the
default MNIST directory, the thread count, the machine header with its matmul yardstick, and
training a table of variants a few at a time (the ablation scripts).

A benchmark script starts with

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # find _common however we are loaded
    import _common  # noqa: E402  (puts the repository root first on sys.path)

and imports ganforge only after it. Run as `python benchmarks/X.py` the first line changes nothing
(the script's folder is already sys.path[0]); it is there for `python -m benchmarks.X` and for
tests that load a script by its path.

The yardstick (`matmul_gflops`): the best of several timed float32 2048 x 2048 matmuls on the
threads in use, after warm-up, counted as 2 n^3 FLOPs each. It is what this machine's BLAS can do
with those threads right now, so a throughput divided by it travels between machines (and shows
when a shared machine was busy) where a bare images/s does not. Long benchmarks measure it again
beside each result row; short ones measure it once and print it with every row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import torch

ROOT = Path(__file__).resolve().parent.parent
if sys.path[:1] != [str(ROOT)]:
    sys.path.insert(0, str(ROOT))  # this checkout's ganforge, ahead of any installed one

# The official MNIST IDX files, shared beside the checkouts: ../shared/data/mnist from the root.
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"

MATMUL_N = 2048  # 17.2 GFLOP per product: long enough to time, short enough to repeat
MATMUL_WARMUP = 2
MATMUL_REPEATS = 7
QUICK_REPEATS = 3  # the re-measurement beside a result row (~0.5 s on 2 threads)


def default_data(fallback: str = "mnist") -> str:
    """MNIST_DIR when it holds the files, else `fallback` ("mnist": ganforge's download cache;
    "digits" where nothing may be downloaded)."""
    return str(MNIST_DIR) if (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file() else fallback


def add_data_arg(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument("--data", default=default or default_data(),
                        help="'digits' (bundled), 'mnist' (cache) or a directory of IDX files "
                             f"[default: {default or default_data()}]")


def add_threads_arg(parser: argparse.ArgumentParser, default: int | None = None) -> None:
    default = default or torch.get_num_threads()
    parser.add_argument("--threads", type=int, default=default,
                        help=f"torch intra-op threads [default: {default}]")


def set_threads(threads: int) -> int:
    """torch.set_num_threads(threads); returns threads, for headers."""
    torch.set_num_threads(threads)
    return threads


def subprocess_env(threads: int) -> dict[str, str]:
    """The environment for a child `python -m ganforge ...`: this checkout, `threads` threads."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}


def python_child(*args: str, threads: int = 1) -> subprocess.Popen:
    """`python ARGS` of this checkout on `threads` threads, its output captured as text."""
    return subprocess.Popen([sys.executable, *args], env=subprocess_env(threads),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p: subprocess.Popen, what: str) -> str:
    """The standard output of a finished child; its last error line ends the benchmark if it failed."""
    out, err = p.communicate()
    if p.returncode:
        sys.exit(f"{what} failed: {(err.strip().splitlines() or ['?'])[-1]}")
    return out


def add_variant_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parallel", type=int, default=2, help="Runs at a time, one thread each.")
    parser.add_argument("--only", help="Comma-separated variant numbers (1-based) to run.")


def chosen_variants(variants: dict[str, list[str]], only: str | None) -> list[tuple[str, list[str]]]:
    """(name, extra flags) of the variants --only picks (all without it), in the table's order."""
    chosen = list(variants.items())
    return [chosen[int(i) - 1] for i in only.split(",")] if only else chosen


def train_variants(chosen: list[tuple[str, list[str]]], parallel: int, train_args: Callable[[str, list[str]], list[str]],
                   workdir: Path) -> Iterator[tuple[str, str, float]]:
    """Train the variants `parallel` at a time, one thread each (on a 2-core machine two one-thread
    runs make the most of both cores, and every variant gets the same share), each batch right after
    a one-thread yardstick. `train_args(run, extra)` gives `ganforge train`'s arguments. Yields
    (name, run directory, yardstick) for each variant as soon as its batch has trained, so a caller
    scores them before the next batch starts."""
    for i in range(0, len(chosen), parallel):
        batch = chosen[i:i + parallel]
        peak = row_yardstick(1)
        runs = [str(workdir / str(i + j)) for j in range(len(batch))]
        procs = [python_child("-m", "ganforge", "train", *train_args(run, extra)) for run, (_, extra) in zip(runs, batch)]
        for p in procs:
            finish(p, "training")
        yield from ((name, run, peak) for run, (name, _) in zip(runs, batch))


def _matmul_seconds(threads: int, n: int = MATMUL_N, repeats: int = MATMUL_REPEATS,
                    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> list[float]:
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        a, b = (torch.randn(n, n, generator=gen).to(device, dtype) for _ in range(2))
        out = torch.empty(n, n, device=device, dtype=dtype)
        for _ in range(MATMUL_WARMUP):  # BLAS thread pool start-up, page faults of `out`, cuBLAS handles
            torch.mm(a, b, out=out)
        sync()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            torch.mm(a, b, out=out)
            sync()  # a GPU product is only queued by the call: wait for it
            times.append(time.perf_counter() - t)
        return times
    finally:
        torch.set_num_threads(before)


def matmul_gflops(threads: int, n: int = MATMUL_N, repeats: int = MATMUL_REPEATS,
                  device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> float:
    """The yardstick: n x n matmul GFLOP/s (float32 unless `dtype`, on `device`) with `threads`
    CPU threads, best of `repeats` after MATMUL_WARMUP untimed ones (best, because other processes
    only ever slow a run down). On a GPU, give an n that keeps it busy for milliseconds (8192):
    2048 takes tens of microseconds there, and the timing would measure the launch."""
    return 2 * n**3 / min(_matmul_seconds(threads, n, repeats, device, dtype)) / 1e9


def row_yardstick(threads: int) -> float:
    """The yardstick re-measured quickly, to print beside one result row."""
    return matmul_gflops(threads, repeats=QUICK_REPEATS)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _psi_some() -> list[str] | None:
    try:
        # "some avg10=0.00 avg60=0.00 avg300=0.00 total=<microseconds>"
        return Path("/proc/pressure/cpu").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None


def cpu_pressure() -> float | None:
    """The share of the last 10 s in which some runnable task waited for a CPU (Linux PSI), in
    percent; None where the kernel does not report it. Above a few percent, other processes are
    competing for the cores, and timings on all of them suffer (small multi-threaded operations
    most: each waits for its slowest thread)."""
    fields = _psi_some()
    try:
        return float(fields[1].split("=")[1]) if fields else None
    except (IndexError, ValueError):
        return None


class PressureMeter:
    """CPU pressure over a stretch of time, in percent (None without Linux PSI):

        with PressureMeter() as meter:
            measure()
        meter.percent
    """

    def __enter__(self) -> PressureMeter:
        self._stall, self._t = self._stall_s(), time.perf_counter()
        self.percent = None
        return self

    def __exit__(self, *exc) -> None:
        stall = self._stall_s()
        if stall is not None and self._stall is not None:
            self.percent = 100 * (stall - self._stall) / (time.perf_counter() - self._t)

    @staticmethod
    def _stall_s() -> float | None:
        fields = _psi_some()
        try:
            return int(fields[4].split("=")[1]) / 1e6 if fields else None
        except (IndexError, ValueError):
            return None


def machine_header(threads: int | None = None) -> dict:
    """CPU, cores, threads, versions, UTC date, how busy the machine is, and the yardstick (best
    and median: a median far below the best means other processes were using the cores during
    the measurement). `threads`: those the benchmark uses [default: torch's current setting]."""
    threads = threads or torch.get_num_threads()
    pressure = cpu_pressure()
    times = _matmul_seconds(threads)
    flops = 2 * MATMUL_N**3
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "cpu_pressure_pct": pressure,
        "matmul_gflops": round(flops / min(times) / 1e9, 1),
        "matmul_gflops_median": round(flops / statistics.median(times) / 1e9, 1),
        "matmul_method": f"float32 {MATMUL_N}x{MATMUL_N} torch.mm, best of {MATMUL_REPEATS} after "
                         f"{MATMUL_WARMUP} warm-up, {threads} thread(s)",
    }


def header_line(h: dict) -> str:
    """The one-line printable form of `machine_header`."""
    gpu = f", GPU {h['gpu']}" if h["gpu"] else ""
    pressure = "" if h.get("cpu_pressure_pct") is None else f", CPU pressure {h['cpu_pressure_pct']:g}%"
    return (f"{h['cpu']}, {h['cores']} logical CPUs{gpu}, {h['threads']} torch thread(s); torch {h['torch']}, "
            f"Python {h['python']}; {h['date_utc']} UTC; load average {h['load_avg'][0]:g}{pressure}; "
            f"matmul yardstick {h['matmul_gflops']:.0f} GFLOP/s (median {h['matmul_gflops_median']:.0f}; "
            f"{h['matmul_method']})")


def write_block(path: Path, block: str, begin: str, end: str) -> None:
    """Replace the results block of `path` (from `begin` to `end`, the markers `block` starts and
    ends with), keeping the prose around it; append the block where the markers are missing."""
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        text = text[:text.index(begin)] + block.rstrip("\n") + text[text.index(end) + len(end):]
    else:
        text = text + ("\n" if text else "") + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
