# One command to set up and run the hub, one to set up and run every check.
#   make serve     create .venv, install m2mhub, run `m2mhub serve -v` with embedded defaults
#   make test      install the test peers (mosquitto, libcoap, ...), then ruff, mypy, pytest
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test setup system-deps lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,fast]'
	touch $(STAMP)

setup: $(STAMP)

serve: $(STAMP)
	$(BIN)/m2mhub serve -v

# Real third-party peers the interop tests talk to (Debian packages).
system-deps:
	@missing=""; \
	for p in mosquitto mosquitto-clients libcoap3-bin; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@# The packaged mosquitto service would hold port 1883; tests start their own brokers.
	@-systemctl stop mosquitto >/dev/null 2>&1; true

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy src

pytest: $(STAMP) system-deps
	$(BIN)/pytest -n 2 -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info
