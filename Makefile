# Two commands do all set-up: `make demo` and `make test` create .venv when missing.
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export FLWR_TELEMETRY_ENABLED := 0

.PHONY: demo test lint

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/fedleak demo --out runs/demo

# The tests read the real offline datasets: $FEDLEAK_DATA_DIR, or shared/data beside the repo.
test: export FEDLEAK_DATA_DIR ?= $(abspath ../shared/data)
test: $(STAMP)
	$(PYTHON) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
