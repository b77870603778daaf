# Ichimai: set-up, tests, lint, benches and the demo.
#
#   make test     system packages + venv, then the whole suite (it starts its own pcscd)
#   make lint     ruff check + ruff format --check
#   make bench    every bench/bench_*.py module, one JSON line per measurement
#   make demo     the demo platform with a virtual card
#   make clean    remove the venv and caches

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reinstall only when pyproject.toml changes.
STAMP := $(VENV)/.installed-stamp

.PHONY: venv system-deps test lint bench demo clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev,redis]'
	touch $@

system-deps:
	./scripts/install-system-deps.sh

test: system-deps venv
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: system-deps venv
	$(BIN)/python -m bench.run

demo: system-deps venv
	@if [ -f webapp/demo.py ]; then \
		$(BIN)/python -m webapp.demo; \
	else \
		$(BIN)/flask --app app run; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .coverage *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
