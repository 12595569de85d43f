# Two commands do all the set-up on a fresh machine with Python 3.11 and make:
#   make run    create .venv, install, migrate, start the hub with demo traffic
#   make test   create .venv, install, lint, run the whole suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run serve test lint format bench drills clean

$(STAMP): pyproject.toml examples/sms-gateway/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e examples/sms-gateway
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/tongdao migrate
	$(BIN)/tongdao demo

serve: install
	$(BIN)/tongdao migrate
	$(BIN)/tongdao serve

test: lint
	$(BIN)/pytest -n 2

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python -m bench

# The drills' long form (crash, outages, bad input); `make test` runs their short form.
drills: install
	$(BIN)/python -m bench.drills all --long

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache
