# The entry point for everything a newcomer runs. `make demo` and `make test` install what they need first.
SHELL := /bin/bash
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
export PATH := $(VENV)/bin:$(ROOT)/node_modules/.bin:$(PATH)
export SOLCX_BINARY_PATH := $(ROOT)/.solcx

.PHONY: setup demo test test-contracts test-python bench-gas compile clean

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

bench-gas: setup
	python bench/gas.py

compile: setup
	brownie compile

clean:
	rm -rf build .solcx deployments reports
