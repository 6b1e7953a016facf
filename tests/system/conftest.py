"""System tests: real subprocesses, servers, a browser, fault injection and fuzzing. All of them
are marked slow, so `pytest -m "not slow"` is the quick loop; `make test` and CI run them too."""

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/tests/system/" in str(item.fspath):
            item.add_marker(pytest.mark.slow)
