"""The layering of docs/architecture.md, enforced: who may import whom, no cycles, small modules,
and `ganforge --help` without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ganforge"
MAX_LINES = 400

# Upper floors, and the packages each may import from (besides the ground floor, which anyone may
# use). Only cli/ and the top-level API reach into training/.
GROUND = {"config", "options", "errors", "files", "rundir", "checkpoint", "data", "nets", "losses", "augment", "game",
          "optim", "dist"}
MAY_IMPORT = {
    "police": GROUND,
    "generator": GROUND | {"police"},
    "outputs": GROUND,
    "timelapse": GROUND | {"outputs"},
    "points": GROUND | {"generator"},
    "metrics": GROUND | {"generator"},
    "plots": GROUND | {"generator", "outputs"},
    "export": GROUND | {"generator"},
    "serve": GROUND | {"generator", "outputs", "metrics", "plots", "police"},
    "training": GROUND | {"generator", "outputs", "plots", "metrics", "points", "training"},
    "cli": GROUND | {"generator", "outputs", "plots", "metrics", "export", "serve", "training", "timelapse",
                     "points", "cli"},
    "__main__": {"cli"},
}
MAY_IMPORT[""] = set(MAY_IMPORT) | GROUND  # the package root: the public API, lazily


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path) -> set[str]:
    """Every ganforge module named in an import statement anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ganforge"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ganforge"))
    return {m for m in found if m in modules()}


def floor(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_point_down(module):
    own = floor(module)
    allowed = MAY_IMPORT.get(own, GROUND)
    for target in imports_of(modules()[module]):
        other = floor(target)
        if other in ("", own) or (own in GROUND and other in GROUND):
            continue  # the package root (version, lazy API) and a floor's own modules
        assert other in allowed, f"{module} imports {target}: {own or 'ganforge'} may import only {sorted(allowed)}"


def test_nothing_below_training_imports_it():
    for module, path in modules().items():
        if floor(module) not in ("training", "cli", ""):
            assert not any(floor(t) == "training" for t in imports_of(path)), module


def test_no_import_cycles_between_floors():
    graph = {}
    for module, path in modules().items():
        graph.setdefault(floor(module), set()).update(floor(t) for t in imports_of(path))
    for a, targets in graph.items():
        for b in targets - {a, ""} if a else ():  # the root's imports are lazy, inside functions
            assert a not in graph.get(b, set()) or {a, b} <= GROUND, f"{a} and {b} import each other"


@pytest.mark.parametrize("module", sorted(modules()))
def test_modules_stay_small(module):
    lines = len(modules()[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it (limit {MAX_LINES})"


def test_help_imports_no_torch():
    code = "import sys; from ganforge.cli import cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
