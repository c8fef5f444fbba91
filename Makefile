# S3 Encryption Drift Monitor. `make help` lists the targets.
# Every target installs what it needs first (pinned: requirements.lock, package-lock.json).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT := .demo/cdk.out

# Node 22 from package.json first on PATH: jsii no longer supports the machine's Node 20.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)
# Nothing may phone home: no CDK telemetry or notices, no EC2 metadata probing by boto3.
export CDK_DISABLE_CLI_TELEMETRY := true
export AWS_EC2_METADATA_DISABLED := true
CDK := cdk --no-notices
# W3005: CDK adds a DependsOn that a GetAtt already implies; redundant, not wrong.
CFN_LINT_ARGS := --non-zero-exit-code error --ignore-checks W3005
# The stack is environment-agnostic: synth needs no account, and without credentials the CLI does
# not ask STS for a default one (a network call).
OFFLINE := env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
	AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

.PHONY: help setup demo test lint typecheck unit synth deploy scan bench lock clean

help: ## Show this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The locked dependencies, then this project itself (editable, setuptools from the lock) for the
# `s3-encryption-monitor` command.
$(BIN)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(BIN)/.installed node_modules/.installed ## Create .venv and node_modules from the lock files

demo: setup ## Run the whole pipeline on a local AWS emulator and print the alerts
	$(OFFLINE) $(CDK) synth -q --output $(DEMO_OUT) -c policy="$$(tr -d '\n' < local/demo-policy.json)"
	$(BIN)/python -m local.demo $(DEMO_OUT)

test: lint typecheck unit ## Lint, type-check and run every test with coverage

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest --cov --cov-report=term

synth: setup ## Synthesize the CloudFormation template (cdk-nag gate) and lint it with cfn-lint
	$(OFFLINE) $(CDK) synth -q
	$(BIN)/cfn-lint cdk.out/S3EncryptionDriftMonitor.template.json $(CFN_LINT_ARGS)

deploy: synth ## Deploy to the AWS account in your environment (cdk deploy)
	$(CDK) deploy

scan: setup ## Scan every bucket (a demo account when no AWS credentials); ARGS="..." to the scanner
	@$(BIN)/python -m local.scan $(ARGS)

bench: setup ## Measure sweep throughput, cold start and calls per event; writes bench-results.json
	$(BIN)/python -m local.bench

lock: ## Re-resolve requirements.lock from pyproject.toml (needs the package registry)
	$(PYTHON) -m venv .tools/piptools
	.tools/piptools/bin/pip install --quiet pip-tools==7.6.2
	.tools/piptools/bin/pip-compile --quiet --extra dev --generate-hashes --strip-extras \
		--allow-unsafe --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

clean: ## Remove generated files (keeps .venv and node_modules)
	rm -rf cdk.out .demo .pytest_cache .mypy_cache .ruff_cache .coverage
