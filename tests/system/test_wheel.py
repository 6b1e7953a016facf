"""The wheel `python -m build` makes installs into a fresh virtual environment, carries its assets
(bundled digits, classifier, reference features, the playground page) and trains."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_wheel_installs_into_a_fresh_venv_and_trains(tmp_path):
    built = run(sys.executable, "-m", "build", "--wheel", "--outdir", tmp_path / "dist", ROOT, cwd=tmp_path)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("ganforge-*.whl")

    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path).returncode == 0
    python = venv / "bin" / "python"
    installed = run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", wheel,
                    cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    # The dependencies (torch alone is hundreds of MB) come from this environment, appended after the
    # fresh venv's own site-packages: ganforge itself must be the installed wheel.
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    where = run(python, "-c", "import ganforge, pathlib; print(pathlib.Path(ganforge.__file__).parent)", cwd=tmp_path)
    package = Path(where.stdout.strip())
    assert package.is_relative_to(venv), where.stdout + where.stderr
    for asset in ("assets/digits/train-images-idx3-ubyte.gz", "assets/digit_classifier.safetensors",
                  "assets/mnist_test_features.safetensors", "serve/static/index.html"):
        assert (package / asset).is_file(), asset

    trained = run(python, "-m", "ganforge", "train", "--steps", "5", "--out", tmp_path / "run", "--quiet",
                  "--device", "cpu", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert (tmp_path / "run" / "checkpoints" / "last.safetensors").is_file()
    generated = run(python, "-m", "ganforge", "generate", tmp_path / "run", "--n", "10", "--out",
                    tmp_path / "g.png", cwd=tmp_path)
    assert generated.returncode == 0 and (tmp_path / "g.png").is_file(), generated.stderr
