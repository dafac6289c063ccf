"""Slither on contracts/: no high or medium finding may stand unexplained.

Slither compiles through the project's offline solc (``.solcx/solc-v<version>``, the npm solc behind
tools/solc-adapter.js, in standard-JSON mode) with the remappings of brownie-config.yaml. Findings in
OpenZeppelin (node_modules) and in contracts/test (attackers written for the tests, never deployed) are left out.
Every high or medium finding must be listed, with its reason, in slither-triage.json beside this file; an entry
that matches no finding fails too, so the list stays true. The second test shows the check can fail: a
re-entrant contract's finding is reported as unexplained.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from efedllm.chain.compile import compiler_settings, project_root

ROOT = project_root()
TRIAGE = Path(__file__).with_name("slither-triage.json")
SLITHER = Path(sys.executable).with_name("slither")
SERIOUS = ("High", "Medium")


def slither(target: Path, tmp_path: Path) -> list[dict]:
    """Slither's detector results for the contracts in the folder ``target``, compiled offline."""
    settings = compiler_settings(ROOT)
    solc = ROOT / ".solcx" / f"solc-v{settings['version']}"
    if not solc.exists():
        pytest.fail(f"{solc} is missing: run `make setup`")
    out = tmp_path / "slither.json"
    remaps = " ".join(r.replace("=", "=" + str(ROOT) + "/", 1) for r in settings["remappings"])
    result = subprocess.run(
        [
            str(SLITHER),
            str(target),
            "--solc",
            str(solc),
            "--solc-standard-json",
            "--solc-remaps",
            remaps,
            "--filter-paths",
            "node_modules|contracts/test",
            "--json",
            str(out),
            "--disable-color",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(out.read_text()) if out.exists() else {}
    assert report.get("success"), f"slither failed:\n{report.get('error')}\n{result.stderr[-3000:]}"
    return report["results"].get("detectors", [])


def name(finding: dict) -> str:
    """A finding's description without file positions, whitespace collapsed: stable across line moves."""
    text = re.sub(r"\s*\([^()\s]+\.sol#\d+(-\d+)?\)", "", finding["description"])
    return " ".join(text.split())


def unexplained(findings: list[dict], explained: list[dict]) -> list[str]:
    known = {(e["check"], e["finding"]) for e in explained}
    return [
        f"[{f['impact']}] {f['check']}: {name(f)}"
        for f in findings
        if f["impact"] in SERIOUS and (f["check"], name(f)) not in known
    ]


def test_no_high_or_medium_finding_is_left_unexplained(tmp_path):
    explained = json.loads(TRIAGE.read_text())["explained"]
    assert all(len(e["reason"]) > 20 for e in explained), "every entry says why"
    findings = slither(ROOT / "contracts", tmp_path)
    left = unexplained(findings, explained)
    assert not left, "Slither findings without an explanation in tests/static/slither-triage.json:\n" + "\n".join(left)
    found = {(f["check"], name(f)) for f in findings}
    stale = [e["finding"] for e in explained if (e["check"], e["finding"]) not in found]
    assert not stale, f"entries of slither-triage.json that no longer match a finding: {stale}"


VULNERABLE = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

contract Vault {
    mapping(address => uint256) public balance;

    function deposit() external payable { balance[msg.sender] += msg.value; }

    function withdraw() external {
        (bool ok,) = msg.sender.call{value: balance[msg.sender]}("");
        require(ok);
        balance[msg.sender] = 0;
    }
}
"""


def test_an_unexplained_finding_fails_the_check(tmp_path):
    folder = tmp_path / "vulnerable"  # a folder: crytic-compile's standard-JSON mode takes folders
    folder.mkdir()
    (folder / "Vault.sol").write_text(VULNERABLE)
    left = unexplained(slither(folder, tmp_path), json.loads(TRIAGE.read_text())["explained"])
    assert any("reentrancy-eth" in line and "Vault.withdraw()" in line for line in left), left
