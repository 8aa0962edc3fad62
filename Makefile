# Two entry points for people: `make demo` and `make test`. Both install what is missing first
# (scripts/setup.sh: lab and test tools). On a sensor use `make install-sensor` instead.
VENV := .venv
PY := $(VENV)/bin/python
SG := $(VENV)/bin/scanguard

PREFIX ?= /opt/scanguard
BACKEND ?= auto

.PHONY: setup install-sensor demo test sanitize lint bench clean

setup:
	@bash scripts/setup.sh

# The daemon only, into a venv in $(PREFIX); starts, stops and reconfigures nothing.
install-sensor:
	@bash scripts/install-sensor.sh --prefix $(PREFIX) --backend $(BACKEND)

demo: setup
	@bash scripts/demo.sh

test: setup
	@$(PY) -m pytest -q -p no:cacheprovider tests
	@bash scripts/sanitize.sh

# The C EVE reader under AddressSanitizer + UBSan (part of `make test`, ~25 s).
sanitize: setup
	@bash scripts/sanitize.sh

lint: setup
	@$(VENV)/bin/ruff check scanguard_ids tests bench
	@$(VENV)/bin/mypy scanguard_ids

bench: setup
	@$(PY) -m bench.run

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache scanguard_ids/eve/_fast*.so
