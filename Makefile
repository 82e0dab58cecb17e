# netprobe: one entry point for setting up, the demo, the tests and the benchmarks.
# Everything that touches network namespaces needs root: run these with sudo.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp

.PHONY: setup system venv demo test test-unit bench captures clean

setup: system venv

system:
	@bash scripts/setup-system.sh

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard netprobe/_native/*.c netprobe/_native/*.h)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: setup
	$(BIN)/netprobe lab demo

test: setup
	$(BIN)/python -m pytest

test-unit: venv
	$(BIN)/python -m pytest tests/unit tests/k8s

bench: setup
	$(BIN)/python bench/bench_lab.py
	$(BIN)/python bench/bench_replay.py
	$(BIN)/python bench/bench_trace.py
	$(BIN)/python bench/bench_analyze.py

captures: setup
	$(BIN)/python scripts/make_captures.py

clean:
	-$(BIN)/netprobe lab down
	rm -rf $(VENV) build *.egg-info
