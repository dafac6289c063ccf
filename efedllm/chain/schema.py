"""Generates ``schema.json``: the contracts' enums, the contract list and the deployment file's format version,
in one committed file that Python (``enums.py``) and the dashboard (``frontend/src/schema.js``) both read, so
neither restates ``Phase``, ``Outcome`` or ``Status`` by hand and a new enum member cannot drift.

The enums come from the Solidity sources themselves (each ``EnumDefinition`` of the compiler's AST, members in
declaration order, which is their on-chain value); the contract list and the format version from
``plan.CONTRACTS`` and ``deployment.FORMAT_VERSION``. ``tests/python/test_schema.py`` regenerates the file and
compares, so editing a contract's enum without running ``python -m efedllm.chain.schema`` fails a test.

    python -m efedllm.chain.schema            rewrite efedllm/chain/schema.json
    python -m efedllm.chain.schema --check    exit 1 if it is stale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from efedllm.chain.compile import compile_ast, project_root
from efedllm.chain.deployment import FORMAT_VERSION
from efedllm.chain.plan import CONTRACTS

SCHEMA_PATH = Path(__file__).with_name("schema.json")
ENUMS = ("Phase", "Outcome", "Status", "SlashingRule", "RewardRule", "State", "ComputeDtype", "WeightFormat")
"""The enums the off-chain code reads (IEpochSchedule.Phase, ITrustScoring.Outcome, IServerRegistry.Status,
ITrustScoring.SlashingRule and RewardRule, IServingChallenges.State, IServerRegistry.ComputeDtype and
WeightFormat)."""


def _enum_definitions(node: Any) -> list[dict]:
    """Every EnumDefinition node under ``node`` (the AST is nested JSON)."""
    found: list[dict] = []
    if isinstance(node, dict):
        if node.get("nodeType") == "EnumDefinition":
            found.append(node)
        for value in node.values():
            found += _enum_definitions(value)
    elif isinstance(node, list):
        for value in node:
            found += _enum_definitions(value)
    return found


def generate(root: Path | None = None) -> dict[str, Any]:
    """The schema as the current sources define it."""
    enums: dict[str, list[str]] = {}
    for path, ast in sorted(compile_ast(root or project_root()).items()):
        for node in _enum_definitions(ast):
            if node["name"] not in ENUMS:
                continue
            members = [m["name"] for m in node["members"]]
            if enums.setdefault(node["name"], members) != members:
                raise ValueError(f"enum {node['name']} is defined twice with different members ({path})")
    missing = [name for name in ENUMS if name not in enums]
    if missing:
        raise ValueError(f"the contracts define no enum {', '.join(missing)}")
    return {"format": FORMAT_VERSION, "contracts": list(CONTRACTS), "enums": {name: enums[name] for name in ENUMS}}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = render(generate())
    if "--check" in argv:
        if SCHEMA_PATH.read_text() != text:
            print(f"{SCHEMA_PATH} is stale: run `python -m efedllm.chain.schema`", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(text)
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
