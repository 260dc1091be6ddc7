# Two entry points on a fresh machine: `make demo` and `make test` (both set up .venv first).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast bench clean graphviz

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt torch
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

graphviz:
	@command -v dot >/dev/null 2>&1 || bash scripts/install-graphviz.sh

setup: $(STAMP) graphviz

demo: setup
	$(BIN)/python examples/quickstart.py

test: setup
	$(BIN)/ruff check tndiag tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/tndiag bench --quick

clean:
	rm -rf $(VENV) build *.egg-info
