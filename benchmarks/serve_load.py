"""The playground under load: a real `ganforge serve` process on 127.0.0.1, hit from this (second)
process by 16 concurrent clients, with a mix of good, oversize and malformed requests.

    python benchmarks/serve_load.py RUN [--requests 2000] [--concurrency 16]

Reports errors (a good request answered other than 200, a bad one other than 4xx, or a dropped
connection), p50/p99 latency of the good requests, and the server's resident memory before, in
the middle of and after the load (it must not keep growing). Exit status 1 on any error.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import random
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # find _common however we are loaded
import _common  # noqa: E402  (puts the repository root first on sys.path)
from _common import ROOT  # noqa: E402

GOOD = ["/api/generate?cls={c}&seed={s}", "/api/generate?cls={c}&seed={s}&dims=0.5&dims=-1",
        "/api/grid?rows=4&cols=4&seed={s}", "/api/interpolate?class_from=1&class_to={c}&steps=8",
        "/api/info", "/api/training"]
BAD = ["/api/generate?cls=99", "/api/generate?seed=abc", "/api/grid?rows=10000&cols=10000",
       "/api/generate?cls=1&dims=" + "&dims=".join(["1"] * 50), "/api/generate?cls=1&seed=" + "9" * 400,
       "/api/../../etc/passwd", "/api/interpolate?steps=-3", "/api/generate?cls=nan"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


def fetch(base: str, path: str) -> tuple[int, float]:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(base + path, timeout=30) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except OSError:
        status = -1  # connection refused, reset or timed out
    return status, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    header = _common.machine_header()  # torch's default threads, as the server's; before it starts
    print(_common.header_line(header), flush=True)

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "ganforge", "serve", args.run, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if fetch(base, "/api/info")[0] == 200:
                break
            time.sleep(0.1)
        else:
            sys.exit(f"server did not start: {server.stderr.read().decode()[-500:]}")
        rng = random.Random(0)
        jobs = []
        for i in range(args.requests):
            bad = i % 10 == 9  # one request in ten is oversize or malformed
            path = rng.choice(BAD) if bad else rng.choice(GOOD).format(c=rng.randrange(10), s=rng.randrange(10**6))
            jobs.append((bad, path))
        memory = [rss_mb(server.pid)]
        latencies, errors = [], []
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            futures = [pool.submit(fetch, base, path) for _, path in jobs]
            for i, ((bad, path), fut) in enumerate(zip(jobs, futures)):
                status, dt = fut.result()
                ok = 400 <= status < 500 if bad else status == 200
                if not ok:
                    errors.append(f"{path[:60]} -> {status}")
                elif not bad:
                    latencies.append(dt)
                if i == len(jobs) // 2:
                    memory.append(rss_mb(server.pid))
        wall = time.perf_counter() - start
        memory.append(rss_mb(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)

    q = statistics.quantiles(latencies, n=100)
    print(f"{args.requests} requests ({len(latencies)} good, {args.requests - len(latencies) - len(errors)} "
          f"oversize/malformed), {args.concurrency} concurrent, {wall:.1f} s ({args.requests / wall:.0f} req/s)")
    print(f"errors: {len(errors)}" + (f" e.g. {errors[:3]}" if errors else ""))
    print(f"latency of good requests: p50 {1000 * q[49]:.1f} ms, p99 {1000 * q[98]:.1f} ms "
          f"(matmul yardstick {header['matmul_gflops']:.0f} GFLOP/s)")
    print(f"server RSS: start {memory[0]:.0f} MB, half-way {memory[1]:.0f} MB, end {memory[2]:.0f} MB")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
