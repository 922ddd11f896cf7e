# bouncewire — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
KAFKA := deploy/kafka/kafka.sh
DEMO_SECONDS ?= 60
# Send results travel as mail: simulated CleverTap → smtp-gateway → stand-in relay → Kafka.
# DEMO_FLAGS= (empty) publishes them straight to Kafka instead.
DEMO_FLAGS ?= --via-gateway

.DEFAULT_GOAL := help
.PHONY: help install lint format test test-unit test-tools reliability bench kafka-fetch kafka-up kafka-down kafka-reset demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install bouncewire with its test extras

lint: install ## ruff and mypy (strict on the packages); changes nothing
	$(BIN)/ruff check .
	$(BIN)/ruff format --check bouncewire producers consumers schemas kafka_client
	$(BIN)/mypy

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format bouncewire producers consumers schemas kafka_client

kafka-fetch: ## resolve the Kafka broker jars from Maven Central into .cache/
	$(KAFKA) fetch

test-tools: ## Debian's prometheus (promtool), postfix, swaks and chromium; the Go manifest checkers
	bash deploy/scripts/install-tools.sh
	bash deploy/scripts/install-chromium.sh >/dev/null

test: install lint kafka-fetch test-tools ## lint, then every test (unit and integration on the real broker)
	$(BIN)/pytest

test-unit: install ## only the tests that need no broker
	$(BIN)/pytest -m "not integration"

bench: install kafka-fetch ## throughput, latency, memory and scale vs the limits (~12 min) -> bench-results/
	$(BIN)/pip install -q -c constraints.txt -e '.[bench]'
	command -v kcat >/dev/null || (apt-get update -qq && apt-get install -y -qq kcat >/dev/null)
	$(BIN)/python -m bench.run

reliability: install kafka-fetch ## fault suite on real brokers: table + reliability-report.json (~8 min)
	$(BIN)/python -m reliability.run

kafka-up: install ## start (or reuse) the local KRaft broker; KAFKA_PORT overrides 9092
	$(KAFKA) up

kafka-down: ## stop the local broker, keep its data
	$(KAFKA) down

kafka-reset: ## stop the local broker and wipe its data
	$(KAFKA) reset

demo: install kafka-fetch ## the whole pipeline for DEMO_SECONDS (0 = until Ctrl-C), then a summary
	$(BIN)/bouncewire demo --seconds $(DEMO_SECONDS) $(DEMO_FLAGS)

clean: ## remove caches (keeps the Maven download cache in ~/.m2)
	rm -rf .cache .mypy_cache .ruff_cache .pytest_cache .hypothesis
