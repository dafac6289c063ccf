"""The lint suite: ruff's lint rules and its formatter over the whole Python tree, configured in pyproject.toml.

Run as a test so that `make test` reports it with the other suites; `ruff check --fix . && ruff format .` repairs
most of what it finds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def ruff() -> list[str]:
    found = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(found).exists():
        pytest.fail("ruff is not installed: run `make setup` (it is one of the dev tools)")
    return [found]


def test_lint_rules_pass():
    result = subprocess.run(
        [*ruff(), "check", "--no-cache", "--output-format", "concise", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, (
        f"ruff check found problems (fix: ruff check --fix .):\n{result.stdout}{result.stderr}"
    )


def test_code_is_formatted():
    result = subprocess.run([*ruff(), "format", "--no-cache", "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"files not formatted (fix: ruff format .):\n{result.stdout}{result.stderr}"
