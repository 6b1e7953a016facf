"""The playground under load (bounded): a real server process, 16 concurrent clients, a mix of
good, oversize and malformed requests. benchmarks/serve_load.py runs the 2,000-request version."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_server_answers_every_request_under_concurrent_load(tiny_run):
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "serve_load.py"), str(tiny_run),
                        "--requests", "300", "--concurrency", "16"], capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "errors: 0" in p.stdout
    assert re.search(r"300 requests \(270 good, 30 oversize/malformed\)", p.stdout)
