"""The tutorial notebooks and the lab notebook (notebooks/*.ipynb) run top to bottom in a fresh kernel, as a reader
runs them: any error in any cell fails the test, and so does a notebook that outlives its budget.

The kernel is this interpreter, through a kernelspec written to a temporary prefix: a fresh
virtual environment (`make test`) needs no `jupyter kernelspec install`, and a user's own
`python3` kernelspec cannot send the notebooks to another Python."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import install
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
# Each notebook is written to take at most 3 minutes on 2 CPU cores; the limit leaves room for a
# slower or busier machine while still catching a notebook whose budget has grown out of bounds.
NOTEBOOK_SECONDS = 600
KERNEL = "ganforge-notebook-test"


def test_the_tutorial_notebooks_and_the_lab_are_there():
    assert [p.name for p in NOTEBOOKS] == ["01-intuition.ipynb", "02-discriminator.ipynb",
                                           "03-generator.ipynb", "04-training.ipynb", "05-lab.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    install(kernel_name=KERNEL, prefix=str(tmp_path / "kernel"))  # runs sys.executable
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "kernel" / "share" / "jupyter"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("TMPDIR", str(work))  # the notebooks' runs (tempfile) land under tmp_path
    nb = nbformat.read(path, as_version=4)
    deadline = time.monotonic() + NOTEBOOK_SECONDS
    # nbclient's timeout is per cell; giving each cell what is left of the notebook's budget makes
    # it a limit on the whole notebook.
    client = NotebookClient(nb, kernel_name=KERNEL, resources={"metadata": {"path": str(work)}},
                            timeout_func=lambda cell: max(1, int(deadline - time.monotonic())))
    client.execute()  # raises CellExecutionError (with the cell and its traceback) on any error
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "a notebook shows its figures inline"
