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

.PHONY: venv system-deps node-deps test lint bench demo clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev,redis]'
	touch $@

system-deps:
	./scripts/install-system-deps.sh

# axe-core for the end-to-end accessibility checks (package.json / package-lock.json).
# (npm gives unpacked files a 1985 mtime, hence a stamp of our own.)
node-deps: node_modules/.installed-stamp

node_modules/.installed-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

test: system-deps venv node-deps
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
