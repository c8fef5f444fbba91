# S3 Encryption Drift Monitor. `make help` lists the targets.
# Every target installs what it needs first (pinned: requirements.lock, package-lock.json).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT := .demo/cdk.out
# checkov pins libraries (boto3 among them) that clash with ours: it gets a venv of its own.
CHECKOV := .tools/checkov/bin/checkov
# The Powertools layer's contents, for running the functions as Lambda does (local/lambda_runtime.py).
LAYER := .tools/powertools-layer/.installed
# MkDocs and its Material theme, in a venv of their own like checkov (local/docs.lock).
MKDOCS := .tools/docs/bin/mkdocs

# Node 22 from package.json first on PATH: jsii no longer supports the machine's Node 20.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)
# Nothing may phone home: no CDK telemetry or notices, no EC2 metadata probing by boto3.
export CDK_DISABLE_CLI_TELEMETRY := true
export AWS_EC2_METADATA_DISABLED := true
CDK := cdk --no-notices
# W3005: CDK adds a DependsOn that a GetAtt already implies; redundant, not wrong.
CFN_LINT_ARGS := --non-zero-exit-code error --ignore-checks W3005
# --skip-download: no call to the vendor's platform; only what is written in the templates.
CHECKOV_ARGS := --skip-download --framework cloudformation --compact --quiet
# The demo deploys the organization topology: a central account and member accounts, 3 regions.
DEMO_CONTEXT := -c organizationId=o-exampleorg -c memberTargets=r-exmp \
	-c regions=eu-west-1,us-east-1,us-west-2 -c newBucketGraceSeconds=3 \
	-c heartbeat='rate(15 minutes)' \
	-c chat='{"slack":[{"workspaceId":"T0DEMO123","channelId":"C0DEMO456"}]}'
# The stack is environment-agnostic: synth needs no account, and without credentials the CLI does
# not ask STS for a default one (a network call).
OFFLINE := env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
	AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

.PHONY: help setup demo test lint typecheck unit synth deploy scan bench docs lock clean

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

$(CHECKOV): local/checkov.lock
	$(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r local/checkov.lock
	touch $@

$(MKDOCS): local/docs.lock
	$(PYTHON) -m venv .tools/docs
	.tools/docs/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r local/docs.lock
	touch $@

# Installed with the functions' runtime Python (3.13) when this machine has it, from hashes.
$(LAYER): local/powertools-layer.lock $(BIN)/.installed
	$(BIN)/python -m local.lambda_runtime
	touch $@

setup: $(BIN)/.installed node_modules/.installed $(CHECKOV) $(LAYER) $(MKDOCS) ## Create .venv, node_modules, the checkov and docs venvs and the Powertools layer folder from the lock files

demo: setup ## Run the whole pipeline on a local AWS emulator and print the alerts
	$(OFFLINE) $(CDK) synth -q --output $(DEMO_OUT) $(DEMO_CONTEXT) -c policy="$$(tr -d '\n' < local/demo-policy.json)" > /dev/null
	$(BIN)/python -m local.demo $(DEMO_OUT)

test: lint typecheck unit ## Lint, type-check and run every test with coverage

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# The layer contracts of pyproject.toml, on the runtime as Lambda imports it (drift_monitor).
	PYTHONPATH=functions $(BIN)/lint-imports --no-logo --no-cache

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest --cov --cov-report=term

synth: setup ## Synthesize every template (cdk-nag gate), lint them with cfn-lint, scan them with checkov
	$(OFFLINE) $(CDK) synth -q > /dev/null
	$(BIN)/cfn-lint cdk.out/*.template.json $$(ls cdk.out/assembly-*/*.template.json 2>/dev/null) $(CFN_LINT_ARGS)
	$(CHECKOV) $(CHECKOV_ARGS) -d cdk.out

deploy: synth ## Deploy to the AWS account in your environment (every stack: cdk deploy --all)
	$(CDK) deploy --all

scan: setup ## Scan every bucket (a demo account when no AWS credentials); ARGS="..." to the scanner
	@$(BIN)/python -m local.scan $(ARGS)

bench: setup ## Measure sweep throughput, cold start and calls per event; writes bench-results.json
	$(BIN)/python -m local.bench

docs: $(MKDOCS) ## Build the documentation site (docs/, mkdocs.yml) into .build/site, offline and strict
	NO_MKDOCS_2_WARNING=1 $(MKDOCS) build --quiet

lock: ## Re-resolve requirements.lock, the layer's and the docs' locks (needs the package registry)
	$(PYTHON) -m venv .tools/piptools
	.tools/piptools/bin/pip install --quiet pip-tools==7.6.2
	.tools/piptools/bin/pip-compile --quiet --extra dev --generate-hashes --strip-extras \
		--allow-unsafe --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	# The layer folder leaves out the AWS SDK: the functions' asset ships its own, first on the
	# import path, so a layer's copy would never be imported.
	cd local && ../.tools/piptools/bin/pip-compile --quiet --generate-hashes --strip-extras \
		--unsafe-package boto3 --unsafe-package botocore --unsafe-package s3transfer \
		--no-emit-index-url --no-emit-find-links -o powertools-layer.lock powertools-layer.in
	cd local && ../.tools/piptools/bin/pip-compile --quiet --generate-hashes --strip-extras \
		--no-emit-index-url --no-emit-find-links --allow-unsafe -o docs.lock docs.in

clean: ## Remove generated files (keeps .venv and node_modules)
	rm -rf cdk.out .demo .pytest_cache .mypy_cache .ruff_cache .coverage
