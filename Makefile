# The entry point for everything a newcomer runs. `make demo` and `make test` install what they need first.
SHELL := /bin/bash
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
export PATH := $(VENV)/bin:$(ROOT)/node_modules/.bin:$(PATH)
export SOLCX_BINARY_PATH := $(ROOT)/.solcx

.PHONY: setup demo test test-contracts test-python test-slow bench-gas compile clean

setup:
	@bash tools/setup.sh

demo: setup
	efedllm demo --keep

test: setup
	@bash tools/run-tests.sh

test-contracts: setup
	brownie test tests/contracts

test-python: setup
	python -m pytest -p no:pytest-brownie tests/python

# The contracts' hypothesis state machine with 250 examples of up to 50 steps over 5 epochs (the default run: 20 of 25)
test-slow: setup
	EFEDLLM_SLOW=1 brownie test tests/contracts/test_invariants_stateful.py

bench-gas: setup
	python bench/gas.py

compile: setup
	brownie compile

clean:
	rm -rf build .solcx deployments reports
