"""The notebooks are committed clean: no outputs, no execution counts, so a diff shows only what
was written, the repository carries no images that go stale, and a reader's first run is theirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_has_no_outputs_and_no_execution_counts(path):
    nb = json.loads(path.read_text())
    assert nb["nbformat"] == 4
    dirty = [i for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (f"{path.name}: cells {dirty} hold outputs or execution counts; clear all outputs "
                       "before saving (Jupyter: Edit > Clear Outputs of All Cells; or "
                       f"'jupyter nbconvert --clear-output --inplace {path.name}')")
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
