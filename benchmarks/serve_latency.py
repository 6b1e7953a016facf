"""Playground request latency on the CPU: each API call through FastAPI's in-process client
(generation, the discriminator's verdict, PNG encoding and JSON; no network).

    python benchmarks/serve_latency.py RUN [--repeats 50] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))  # find _common however we are loaded
import _common  # noqa: E402  (puts the repository root first on sys.path)

from ganforge.serve import create_app  # noqa: E402

REQUESTS = {
    "generate (1 image)": ("/api/generate", {"cls": 3, "seed": 1}),
    "generate + 8 sliders": ("/api/generate", [("cls", 3), ("seed", 1)] + [("dims", 0.5)] * 8),
    "grid 10x8": ("/api/grid", {"cols": 8, "seed": 1}),
    "grid 16x16": ("/api/grid", {"rows": 16, "cols": 16, "seed": 1}),
    "interpolate 10": ("/api/interpolate", {"class_from": 1, "class_to": 7, "steps": 10}),
    "training": ("/api/training", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--repeats", type=int, default=50)
    _common.add_threads_arg(parser)
    args = parser.parse_args()
    threads = _common.set_threads(args.threads)
    header = _common.machine_header(threads)  # before the app: nothing else running yet
    client = TestClient(create_app(args.run))
    print(_common.header_line(header))
    print(f"{args.repeats} requests each; milliseconds; matmul: the yardstick in GFLOP/s, measured once before")
    print(f"{'request':24s} {'median':>8s} {'p90':>8s} {'matmul':>8s}")
    for name, (path, params) in REQUESTS.items():
        client.get(path, params=params)  # warm up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            assert client.get(path, params=params).status_code == 200
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        print(f"{name:24s} {statistics.median(times):8.2f} {times[int(0.9 * len(times))]:8.2f} "
              f"{header['matmul_gflops']:8.0f}")


if __name__ == "__main__":
    main()
