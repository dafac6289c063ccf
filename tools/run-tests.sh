#!/usr/bin/env bash
# Every test suite, each in its own invocation (brownie's pytest plugin would otherwise compile the contracts
# and start a chain for the pure-Python tests too), then one closing line with the totals.
# Fails when any suite fails or when a suite ran no test.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RESULTS="$ROOT/build/test-results"
rm -rf "$RESULTS" && mkdir -p "$RESULTS"
status=0

run_suite() {
  local name="$1"; shift
  echo "=== $name: $*"
  "$@" --junitxml="$RESULTS/$name.xml"
  local rc=$?
  if [ $rc -ne 0 ]; then
    echo "=== $name: FAILED (exit $rc)"
    status=1
  fi
}

run_suite lint python -m pytest -p no:pytest-brownie tests/lint "$@"
run_suite contracts brownie test tests/contracts "$@"
run_suite python python -m pytest -p no:pytest-brownie tests/python "$@"
run_suite network python -m pytest -p no:pytest-brownie tests/network "$@"
run_suite browser python -m pytest -p no:pytest-brownie tests/browser "$@"
run_suite fuzz python -m pytest -p no:pytest-brownie tests/fuzz "$@"
run_suite static python -m pytest -p no:pytest-brownie tests/static "$@"

python - "$RESULTS" <<'PY' || status=1
import sys, pathlib, xml.etree.ElementTree as ET
totals = dict(tests=0, failures=0, errors=0, skipped=0)
empty = []
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.xml")):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    ran = 0
    for suite in suites:
        for key in totals:
            totals[key] += int(suite.get(key, 0))
        ran += int(suite.get("tests", 0)) - int(suite.get("skipped", 0))
    if ran == 0:
        empty.append(path.stem)
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
print(f"tests: {passed} passed, {failed} failed, {totals['skipped']} skipped")
if empty:
    print("no test ran in suite(s): " + ", ".join(empty))
sys.exit(1 if failed or empty or totals["tests"] == 0 else 0)
PY
exit $status
