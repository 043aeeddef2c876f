# Two commands do all set-up: `make demo` and `make test` create .venv when missing.
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export FLWR_TELEMETRY_ENABLED := 0

.PHONY: demo test lint browser

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/fedleak demo --out runs/demo

# The tests read the real offline datasets: $FEDLEAK_DATA_DIR, or shared/data beside the repo.
test: export FEDLEAK_DATA_DIR ?= $(abspath ../shared/data)
test: $(STAMP) browser
	$(PYTHON) -m pytest -q --durations=15

# The viewer's browser test drives Debian's Chromium and ChromeDriver: installed with apt-get
# when this user may (root, or sudo without a password), otherwise one line says what to install.
APT_INSTALL := apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium and chromium-driver for the viewer's browser test"; \
	    sh -c '$(APT_INSTALL)'; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
	    echo "installing Debian's chromium and chromium-driver for the viewer's browser test"; \
	    sudo -n sh -c '$(APT_INSTALL)'; \
	  else \
	    echo "make test needs Chromium and ChromeDriver for the viewer's browser test: install them (Debian: apt-get install chromium chromium-driver) and rerun" >&2; \
	    exit 2; \
	  fi; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
