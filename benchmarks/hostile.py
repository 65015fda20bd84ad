"""The hostile-input suite as one figure: cases tried, cases held, rows lost.

Runs every ``tests/test_hostile_*.py`` case with pytest (each test is one case: a hostile input
or run, and what must hold: a recorded rejection, a one-line error, no user file touched, no
hang). A case holds when its test passes. Rows lost are summed from the accounting checks the
cases write to a ledger (rows in minus rows written, duplicate or rejected).

    python benchmarks/hostile.py [--out bench-out/hostile]

Target: every case held, 0 rows lost. Figures go to OUT/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_suite(out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    ledger, report = out / "ledger.jsonl", out / "junit.xml"
    ledger.unlink(missing_ok=True)
    files = sorted(str(p) for p in (ROOT / "tests").glob("test_hostile_*.py"))
    env = {**os.environ, "WEAKLABEL_HOSTILE_LEDGER": str(ledger)}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *files],
                   cwd=ROOT, env=env, check=False)
    cases = ET.parse(report).getroot().iter("testcase")
    outcomes = {f"{c.get('classname')}::{c.get('name')}": _outcome(c) for c in cases}
    checks = [json.loads(line) for line in ledger.read_text().splitlines()] if ledger.exists() else []
    return {
        "cases_tried": sum(o != "skipped" for o in outcomes.values()),
        "cases_held": sum(o == "passed" for o in outcomes.values()),
        "cases_skipped": sum(o == "skipped" for o in outcomes.values()),
        "rows_checked": sum(c["rows_in"] for c in checks),
        "rows_lost": sum(max(c["lost"], 0) for c in checks),
        "broken": sorted(name for name, o in outcomes.items() if o == "failed"),
    }


def _outcome(case: ET.Element) -> str:
    if case.find("skipped") is not None:
        return "skipped"
    return "failed" if case.find("failure") is not None or case.find("error") is not None else "passed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "hostile")
    args = parser.parse_args()
    result = run_suite(args.out)
    met = result["cases_held"] == result["cases_tried"] and result["rows_lost"] == 0
    print(f"\nhostile inputs: {result['cases_tried']} cases tried, {result['cases_held']} held"
          f" ({result['cases_skipped']} skipped), {result['rows_checked']} rows checked, {result['rows_lost']} lost")
    for name in result["broken"]:
        print(f"  broke: {name}")
    print(f"target every case held, 0 rows lost: {'met' if met else 'MISSED'}")
    (args.out / "results.json").write_text(json.dumps({**result, "target_met": met}, indent=2) + "\n")


if __name__ == "__main__":
    main()
