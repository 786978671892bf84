# Tandem — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv browser-deps demo test unit integration lint format schemas up down status bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -q -e ".[dev,rocksdb]"
	@touch $(STAMP)

venv: $(STAMP) ## create the virtualenv and install Tandem with its dev tools

# The dashboard's browser tests drive Debian's headless Chromium (no Playwright download, which
# offline machines cannot do). `apt-get update` only when the plain install fails: it is slow.
browser-deps: ## install headless Chromium for the browser tests (Debian/Ubuntu, as root)
	@test -x /usr/bin/chromium || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
	  || { $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }; }

demo: venv ## start Kafka, Redis and a worker, publish sample journeys, show hand-offs (Ctrl-C stops)
	@$(BIN)/tandem demo

# Three processes on two cores: one runs the tests of the shared stack (integration, browser)
# in order; the others take the tests with a deployment of their own (the crash loop, the
# outages, several workers, live = replay, ...) and the unit and property tests meanwhile. An
# integration test spends much of its time waiting (outages, quiet periods, a group's session
# timeout), which a third process fills: 10.8 minutes measured against 13.3 with two.
test: venv browser-deps ## start Kafka and Redis, run the whole suite, stop what it started
	@$(BIN)/lint-imports
	@$(BIN)/python -m pytest tests -n 3 --durations=15

unit: venv ## only the tests that need no broker (unit + property)
	@$(BIN)/python -m pytest tests -m "not integration" -q

lint: venv ## ruff, mypy (strict on the core and the contract), import contracts
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy events schemas streams/journey streams/workflow streams/adapters streams/app.py
	@$(BIN)/lint-imports

format: venv ## format the code
	@$(BIN)/ruff format .
	@$(BIN)/ruff check --fix .

schemas: venv ## regenerate the JSON Schemas in schemas/json
	@$(BIN)/python -m schemas.generate

up: venv ## start Kafka (KRaft) and Redis locally, without Docker
	@$(BIN)/tandem infra up

down: venv ## stop the Kafka and Redis that `make up` started
	@$(BIN)/tandem infra down

status: venv ## is Kafka / Redis running?
	@$(BIN)/tandem infra status

bench: venv ## issue 9 benchmarks on the real broker: bench-results.json and a table (not in make test)
	@$(BIN)/python -m benchmarks

clean: ## remove the virtualenv and local state (jars, broker data, logs)
	rm -rf $(VENV) .tandem
