# fraudstream: every target does its own set-up, so each works on a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export FRAUD_HOME ?= $(CURDIR)/.fraudstream

.PHONY: help install demo test unit integration chaos audit lint format services-up services-down status lock clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "fraudstream needs Python 3.11 or newer (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	@touch $@

install: $(INSTALLED) ## create .venv and install the pinned dependencies

demo: install ## services up, then the main flow on the embedded defaults
	$(BIN)/fraudstream demo

test: install ## the whole suite: unit, doctests, integration on real Kafka, Redis, MLflow
	$(BIN)/pytest

unit: install ## only the tests that need no network
	$(BIN)/pytest -m "not integration"

integration: install ## only the tests on the real services
	$(BIN)/pytest -m integration

chaos: install ## only the fault-injection suite (also part of make test)
	$(BIN)/pytest -m chaos

audit: ## pip-audit of the pinned dependencies (needs PyPI's JSON API or OSV; not in CI)
	$(PYTHON) -m venv .audit-venv
	.audit-venv/bin/pip install -q pip-audit==2.10.1
	.audit-venv/bin/pip-audit --strict --disable-pip --no-deps -r constraints.txt

lint: install ## ruff lint and format check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

services-up: install ## start local Kafka (KRaft), Redis and the MLflow store
	$(BIN)/fraudstream services up

services-down: install ## stop what services-up started
	$(BIN)/fraudstream services down

status: install ## say which local services are running
	$(BIN)/fraudstream services status

lock: ## re-resolve the dependencies into constraints.txt
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q --upgrade pip && .lock-venv/bin/pip install -q -e ".[dev]"
	.lock-venv/bin/pip freeze --exclude-editable > constraints.txt && rm -rf .lock-venv

clean: services-down ## stop the services and delete local state (not the jar cache)
	rm -rf $(FRAUD_HOME) $(VENV)
