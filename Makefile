# Followthrough: the front door. `make run` starts the embedded stack, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint format token catalog bench reliability clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Install into .venv (only when pyproject.toml changed)

run: install ## Start broker, SMTP sink and the three services in the foreground (Ctrl-C stops all)
	$(PY) -m shared.devstack

test: install ## Run the whole test suite (three at a time: most tests wait on processes)
	$(PY) -m pytest -n 3

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

token: install ## Mint a credential: make token TENANT=acme [SCOPES="goals:read goals:write"]
	@test -n "$(TENANT)" || (echo "usage: make token TENANT=name [SCOPES=...]" >&2; exit 2)
	@$(PY) -m services.cli token --tenant "$(TENANT)" $(if $(SCOPES),--scopes "$(SCOPES)",)

bench: install ## Every benchmark scenario (~22 min; PG=1 on PostgreSQL) into bench/results/latest.{json,md}
	$(PY) -m bench.run $(if $(PG),--postgres,)

reliability: install ## Fault injection into real processes (kills, broker outage, crash windows)
	$(PY) -m pytest -m reliability -n 2

catalog: install ## Generate the event catalog (JSON Schemas, AsyncAPI 3.0) into docs/events
	$(PY) -m shared.events.export docs/events

clean:
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache
