# Gatehouse: every tool this project needs is installed by these targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV_DIR      := .venv
VENV_LOCAL    := $(VENV_DIR)/local
VENV_SAM      := $(VENV_DIR)/sam
VENV_LINT     := $(VENV_DIR)/cfnlint
PYTHON        ?= python3

SAM_VERSION         := 1.170.0
CFN_LINT_VERSION    := 1.51.0
# moto, cargo-lambda, stripe, PyJWT and boto3 are pinned in this file:
LOCAL_REQUIREMENTS  := infra/requirements-local.txt

include infra/local.env
export

.PHONY: help setup venvs browser-deps nextest demo dev test bench fuzz build deploy watch invoke moto-up moto-down clean lint

help:
	@echo "make demo   - run the main scenario on the local AWS stack (moto)"
	@echo "make test   - fmt, clippy, unit, integration, e2e, template, sam validate, cfn-lint"
	@echo "make dev    - serve every function on $(GATEHOUSE_ADDR) in the foreground"
	@echo "make bench  - benchmarks (cold start, CPU, memory, round trips, bootstrap size)"
	@echo "make fuzz   - coverage-guided fuzzing of every parser, FUZZ_SECS (60) per target"
	@echo "make build  - release arm64 bootstraps via cargo lambda"
	@echo "make watch  - cargo lambda watch on 127.0.0.1"
	@echo "make invoke FN=kajabi-webhook EVENT=events/kajabi-webhook/offer-purchased.json"

$(VENV_LOCAL)/.installed: $(LOCAL_REQUIREMENTS)
	$(PYTHON) -m venv $(VENV_LOCAL)
	$(VENV_LOCAL)/bin/pip install -q --disable-pip-version-check -r $(LOCAL_REQUIREMENTS)
	touch $@

$(VENV_SAM)/.installed:
	$(PYTHON) -m venv $(VENV_SAM)
	$(VENV_SAM)/bin/pip install -q --disable-pip-version-check "aws-sam-cli==$(SAM_VERSION)"
	touch $@

$(VENV_LINT)/.installed:
	$(PYTHON) -m venv $(VENV_LINT)
	$(VENV_LINT)/bin/pip install -q --disable-pip-version-check "cfn-lint==$(CFN_LINT_VERSION)"
	touch $@

# The browser test drives Debian's Chromium with playwright-core (no browser download).
BROWSER_DIR := tests/browser
SUDO        := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
$(BROWSER_DIR)/node_modules/.installed: $(BROWSER_DIR)/package-lock.json
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	cd $(BROWSER_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@
browser-deps: $(BROWSER_DIR)/node_modules/.installed

# The machine image ships cargo-nextest; install it where it is missing.
nextest:
	@cargo nextest --version >/dev/null 2>&1 || cargo install cargo-nextest --locked

venvs: $(VENV_LOCAL)/.installed $(VENV_SAM)/.installed $(VENV_LINT)/.installed
setup: venvs

# Ports of their own, so `make test` runs beside `make dev`.
MOTO_TEST_PORT ?= 5056
CARGO_LAMBDA  := PATH="$(CURDIR)/$(VENV_LOCAL)/bin:$$PATH" cargo lambda
SAM           := AWS_DEFAULT_REGION=$(AWS_REGION) SAM_CLI_TELEMETRY=0 $(VENV_SAM)/bin/sam

## The main job: the demo scenario on the embedded local AWS stack.
demo: $(VENV_LOCAL)/.installed
	RUST_LOG=warn cargo run -q -p gatehouse-local -- demo

## Serve every function at GATEHOUSE_ADDR until Ctrl-C (starts moto if needed).
dev: $(VENV_LOCAL)/.installed
	cargo run -q -p gatehouse-local -- dev

## Every test: lint, unit, integration and end-to-end against moto, template checks.
test: venvs nextest browser-deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(SAM) validate --lint -t infra/template.yaml
	$(VENV_LINT)/bin/cfn-lint infra/template.yaml
	RUST_LOG=off scripts/with-moto $(MOTO_TEST_PORT) cargo nextest run --workspace --no-fail-fast

## Release bootstraps for Lambda (arm64), as `sam build` makes them.
build: $(VENV_LOCAL)/.installed
	$(CARGO_LAMBDA) build --release --arm64 --workspace

bench: venvs
	scripts/bench

## Coverage-guided fuzzing (cargo fuzz, libFuzzer): FUZZ_SECS per target. Without a sanitizer,
## cargo-fuzz passes no nightly-only flag, so the machine's stable toolchain builds it.
FUZZ_SECS    ?= 60
FUZZ_TARGETS := kajabi_payload stripe_payload paystack_payload signature_headers api_gateway_event
fuzz:
	@cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
	scripts/fuzz-seeds
	cd fuzz && for target in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$target && \
	  cargo fuzz run --sanitizer none $$target corpus/$$target seeds/$$target \
	    -- -max_total_time=$(FUZZ_SECS) -max_len=262144 -print_final_stats=1 || exit 1; \
	done

## cargo lambda's runtime emulator, loopback only.
watch: $(VENV_LOCAL)/.installed
	$(CARGO_LAMBDA) watch -A 127.0.0.1

## make invoke FN=kajabi-webhook EVENT=events/kajabi-webhook/offer-purchased.json
invoke: $(VENV_LOCAL)/.installed
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=<function> EVENT=<events/...json>"; exit 2; }
	cargo run -q -p gatehouse-local -- sign-event $(EVENT) target/events/$(notdir $(EVENT))
	$(CARGO_LAMBDA) invoke $(FN) --invoke-address 127.0.0.1 --data-file target/events/$(notdir $(EVENT))

deploy: $(VENV_SAM)/.installed
	cd infra && $(SAM) build && $(SAM) deploy --guided

clean:
	cargo clean
	rm -rf .moto target/events
