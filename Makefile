# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
# torch==2.13.0 is the CPU build this project is developed against. On a Linux machine without a
# GPU, PyPI's default torch wheel is the large CUDA build; get the CPU-only one with
#   make demo TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0

.PHONY: demo test test-quick venv check-python clean

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	    echo "error: ganforge needs Python >= 3.11, but $(PYTHON) is '$$($(PYTHON) --version 2>&1)'; run 'make PYTHON=python3.11 ...' with a newer Python"; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
	    echo "error: $(PYTHON) cannot create virtual environments (no venv/ensurepip); install them (Debian/Ubuntu: apt-get install python3-venv)"; exit 1; }

# The demo needs ganforge and its dependencies only; the tests add the test extra.
$(VENV)/.installed: pyproject.toml | check-python
	$(PYTHON) -m venv $(VENV)
	$(PIP) $(TORCH)
	$(PIP) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/ganforge train --minutes 3

test: $(VENV)/.installed-test
	$(PY) -m pytest

test-quick: $(VENV)/.installed-test
	$(PY) -m pytest -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache
