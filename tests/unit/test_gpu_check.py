"""benchmarks/gpu_check.py end to end on the CPU (--quick): every throughput row and the quality
row land between the markers of the document, the prose around them kept; and the shell wrapper
refuses a machine without CUDA in one line."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_cpu_run_writes_every_row_into_the_block(tmp_path, tiny_digits):
    gc = load_gpu_check()
    doc = tmp_path / "gpu.md"
    doc.write_text(f"# prose before\n\n{gc.BEGIN}\nold figures\n{gc.END}\n\nprose after\n")
    gc.main(["--device", "cpu", "--quick", "--threads", "1", "--data", str(tiny_digits), "--out", str(doc)])

    text = doc.read_text()
    assert text.startswith("# prose before\n") and text.endswith("prose after\n")
    assert "old figures" not in text and text.count(gc.BEGIN) == text.count(gc.END) == 1
    block = text[text.index(gc.BEGIN):text.index(gc.END)]
    assert "not GPU figures" in block and "--device cpu --quick" in block
    rows = re.findall(r"^\| (default|tutorial) \| (\d+) \| (off|bf16) \| ([\d,]+) \|", block, re.M)
    assert [(p, int(b), a) for p, b, a, _ in rows] == [
        (p, b, a) for p in gc.PRESETS for b in gc.QUICK_BATCHES for a in gc.AMPS]
    assert all(int(rate.replace(",", "")) > 0 for *_, rate in rows)
    quality = re.search(r"^\| 20 steps at batch 8 \(--quick\) \| 20 \| [\d,]+ \| ([\d.]+) \| ([\d.]+) \| "
                        r"([\d.]+) \| ([\d.]+) \|$", block, re.M)
    assert quality, block
    fid, precision, recall, accuracy = map(float, quality.groups())
    assert fid > 0 and 0 <= precision <= 1 and 0 <= recall <= 1 and 0 <= accuracy <= 1


def test_cpu_run_must_name_its_file(capsys):
    gc = load_gpu_check()
    with pytest.raises(SystemExit) as exit_:
        gc.parse_args(["--device", "cpu", "--quick"])
    assert exit_.value.code == 2
    assert "give --out FILE" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the script would run")
def test_shell_wrapper_refuses_without_cuda_in_one_line():
    p = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("error: no CUDA device")
