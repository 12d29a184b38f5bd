# Gatehouse: every tool this project needs is installed by these targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV_DIR      := .venv
VENV_LOCAL    := $(VENV_DIR)/local
VENV_SAM      := $(VENV_DIR)/sam
VENV_LINT     := $(VENV_DIR)/cfnlint
PYTHON        ?= python3

MOTO_VERSION        := 5.2.5
CARGO_LAMBDA_VERSION:= 1.9.2
SAM_VERSION         := 1.170.0
CFN_LINT_VERSION    := 1.51.0
STRIPE_PY_VERSION   := 16.1.0

include infra/local.env
export

.PHONY: help setup venvs demo dev test bench build deploy watch invoke moto-up moto-down clean lint

help:
	@echo "make demo   - run the main scenario on the local AWS stack (moto)"
	@echo "make test   - fmt, clippy, unit, integration, e2e, template, sam validate, cfn-lint"
	@echo "make dev    - serve every function on $(GATEHOUSE_ADDR) in the foreground"
	@echo "make bench  - benchmarks (cold start, CPU, memory, round trips, bootstrap size)"
	@echo "make build  - release arm64 bootstraps via cargo lambda"
	@echo "make watch  - cargo lambda watch on 127.0.0.1"
	@echo "make invoke FN=kajabi-webhook EVENT=events/kajabi-webhook/offer-purchased.json"

$(VENV_LOCAL)/.installed:
	$(PYTHON) -m venv $(VENV_LOCAL)
	$(VENV_LOCAL)/bin/pip install -q --disable-pip-version-check "moto[server]==$(MOTO_VERSION)" "cargo-lambda==$(CARGO_LAMBDA_VERSION)" "stripe==$(STRIPE_PY_VERSION)" boto3
	touch $@

$(VENV_SAM)/.installed:
	$(PYTHON) -m venv $(VENV_SAM)
	$(VENV_SAM)/bin/pip install -q --disable-pip-version-check "aws-sam-cli==$(SAM_VERSION)"
	touch $@

$(VENV_LINT)/.installed:
	$(PYTHON) -m venv $(VENV_LINT)
	$(VENV_LINT)/bin/pip install -q --disable-pip-version-check "cfn-lint==$(CFN_LINT_VERSION)"
	touch $@

venvs: $(VENV_LOCAL)/.installed $(VENV_SAM)/.installed $(VENV_LINT)/.installed
setup: venvs
