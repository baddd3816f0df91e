# One command to set up and run the hub, one to set up and run every check.
#   make serve     create .venv, install m2mhub, run `m2mhub serve -v` with embedded defaults
#   make test      install the test peers (mosquitto, libcoap, ...), then ruff, mypy, pytest
# Both work on a fresh Debian/Ubuntu machine (as root, or with sudo): missing Debian packages
# are installed with apt-get first.
#
# Variables: PYTHON (python3), SERVE_ARGS (extra `m2mhub serve` flags, e.g. SERVE_ARGS="-p 1884"),
# PYTEST_ARGS (extra pytest arguments, e.g. PYTEST_ARGS="-k serve"), PYTEST_WORKERS (2).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVE_ARGS ?=
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2

# What building the venv needs, and the real third-party peers the interop tests talk to.
PYTHON_PACKAGES := python3 python3-venv
PEER_PACKAGES := mosquitto mosquitto-clients libcoap3-bin tshark chromium

.PHONY: serve test setup python-deps system-deps lint typecheck pytest bench clean

# Shell snippet: apt-get install the Debian packages in $$need that dpkg does not have yet;
# sets $$installed to what it installed.
APT_INSTALL = installed=""; \
	for p in $$need; do dpkg -s $$p >/dev/null 2>&1 || installed="$$installed $$p"; done; \
	if [ -n "$$installed" ]; then \
	  command -v apt-get >/dev/null 2>&1 || { echo "please install:$$installed"; exit 1; }; \
	  echo "installing Debian packages:$$installed"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq || exit 1; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    $$installed >/dev/null || exit 1; \
	fi

# Python with venv support (Debian splits ensurepip out into python3-venv).
python-deps:
	@if $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1; then exit 0; fi; \
	need="$(PYTHON_PACKAGES)"; $(APT_INSTALL)

# The packaged mosquitto service would hold port 1883 (what `make serve` uses): when this
# target has just installed it, stop and disable that service. Tests start their own brokers.
system-deps:
	@need="$(PEER_PACKAGES)"; $(APT_INSTALL); \
	case " $$installed " in *" mosquitto "*) \
	  systemctl disable --now mosquitto >/dev/null 2>&1 || \
	  service mosquitto stop >/dev/null 2>&1 || true;; \
	esac

$(STAMP): pyproject.toml | python-deps
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "m2mhub needs Python 3.11 or newer (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,fast]'
	touch $(STAMP)

setup: $(STAMP)

serve: $(STAMP)
	$(BIN)/m2mhub serve -v $(SERVE_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check $(wildcard src tests benchmarks examples)
	$(BIN)/ruff format --check $(wildcard src tests benchmarks examples)

typecheck: $(STAMP)
	$(BIN)/mypy src

# pytest exits 5 when it collected no test at all. For the whole suite that means collection
# is broken, so it fails; for a PYTEST_ARGS selection it only means nothing matched.
pytest: $(STAMP) system-deps
	@status=0; $(BIN)/pytest -n $(PYTEST_WORKERS) -q $(PYTEST_ARGS) || status=$$?; \
	if [ $$status = 5 ]; then \
	  if [ -n "$(strip $(PYTEST_ARGS))" ]; then \
	    echo "pytest: no test matches PYTEST_ARGS=$(PYTEST_ARGS)"; status=0; \
	  else \
	    echo "pytest: no tests were collected; the test suite is broken"; \
	  fi; \
	fi; \
	exit $$status

# Every check runs even when an earlier one fails; the exit status says whether all passed.
test: $(STAMP) system-deps
	@status=0; \
	$(MAKE) --no-print-directory lint || status=1; \
	$(MAKE) --no-print-directory typecheck || status=1; \
	$(MAKE) --no-print-directory pytest || status=1; \
	if [ $$status = 0 ]; then echo "make test: all checks passed"; \
	else echo "make test: some checks FAILED (see above)"; fi; \
	exit $$status

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
