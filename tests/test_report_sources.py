"""The report's prose (report/*.qmd) against the workflow: every rule it names exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Backticked words that name a rule: the per-experiment, data and report rules' prefixes.
RULE_LIKE = re.compile(r"`((?:e\d+|report|mnist|bundle|study|data)_[a-z0-9_]+)`")


def test_rule_names_quoted_in_the_report_exist_in_the_workflow():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--list-rules", "--configfile",
                           str(REPO / "config" / "quick.yaml"), "--snakefile", str(REPO / "workflow" / "Snakefile")],
                          capture_output=True, text=True, check=True, cwd=REPO)
    rules = set(proc.stdout.split())
    assert {"e1_train", "report_render"} <= rules, proc.stdout[-2000:]
    quoted = {(qmd.name, m.group(1)) for qmd in sorted((REPO / "report").glob("*.qmd"))
              for m in RULE_LIKE.finditer(qmd.read_text())}
    assert any(name == "e1_train" for _, name in quoted)  # the check sees the qmd's rule names
    unknown = sorted((f, n) for f, n in quoted if n not in rules)
    assert not unknown, f"the report names rules the workflow does not have: {unknown}"
