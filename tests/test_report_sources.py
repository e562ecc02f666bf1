"""The report's prose (report/*.qmd) against the workflow: every rule it names exists; every prose file is
included, by a chapter or by the one table of generated includes (klvae.report.includes)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


# ----------------------------------------------------------------------------------------------
# Which prose appears: one table (klvae.report.includes), named at the top of report/index.qmd

INCLUDE = re.compile(r"\{\{< include /?(\S+) >\}\}")


def _code_strings(py: Path) -> list[str]:
    """The string constants of a module that are not docstrings (f-strings' literal parts included)."""
    tree = ast.parse(py.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings]


def test_every_prose_file_is_included_by_a_chapter_or_by_the_one_table():
    from klvae.report.includes import INCLUDES

    report = REPO / "report"
    by_qmd = {q.name: INCLUDE.findall(q.read_text()) for q in sorted(report.glob("*.qmd"))}
    direct = {name for names in by_qmd.values() for name in names if not name.startswith("_generated/")}
    chosen = {qmd for choices in INCLUDES.values() for _, qmd in choices}
    prose = {q.name for q in report.glob("_*.qmd")}
    assert chosen <= prose, f"the table names prose files report/ does not have: {sorted(chosen - prose)}"
    assert direct <= prose, sorted(direct - prose)
    # each prose file is included in one way: by a chapter (always there) or by the table (when its condition holds)
    assert not direct & chosen, sorted(direct & chosen)
    assert prose == direct | chosen, f"prose files nothing includes: {sorted(prose - direct - chosen)}"
    # and every generated include of the table is included by a chapter or index.qmd
    generated = {name.removeprefix("_generated/") for names in by_qmd.values() for name in names
                 if name.startswith("_generated/")}
    assert set(INCLUDES) <= generated, sorted(set(INCLUDES) - generated)
    # a newcomer finds the table from the top of index.qmd
    head = (report / "index.qmd").read_text().split("title:")[0]
    assert "src/klvae/report/includes.py" in head and "python -m" in head


def test_no_module_but_the_table_writes_an_include():
    """A report writer asks klvae.report.includes for its generated include; none writes an include of
    its own (docstrings aside), so which prose appears is decided in one place."""
    found = {py.relative_to(REPO).as_posix(): [s for s in _code_strings(py) if "< include" in s]
             for py in sorted((REPO / "src" / "klvae").rglob("*.py"))}
    assert {f for f, s in found.items() if s} == {"src/klvae/report/includes.py"}, found


def test_a_generated_include_holds_the_prose_files_whose_conditions_hold():
    from klvae import registry
    from klvae.report import includes

    assert includes.fragment("banner.md", profile="quick", parts=False) == ("{{< include /_banner_run.qmd >}}\n\n"
                                                               "{{< include /_banner_quick.qmd >}}\n")
    assert includes.fragment("banner.md", profile="paper", parts=False) == "{{< include /_banner_run.qmd >}}\n"
    assert includes.fragment("banner.md", profile="paper", parts=True) == "{{< include /_banner_parts.qmd >}}\n"
    assert includes.chosen("backend_study.md", source="bundle") == ["_backend_study_source_bundle.qmd",
                                                                    "_backend_study_results.qmd"]
    assert includes.chosen("backend_study.md", source="none") == ["_backend_study_notrun.qmd"]
    assert includes.fragment("render_banner.md", bundle=False) == ""  # True/False: yes/no
    assert includes.chosen("render_methods.md", bundle=True) == ["_render_bundle.qmd"]
    assert includes.chosen(includes.CHAPTERS) == [e.chapter for e in registry.EXPERIMENTS]
    # the experiments' own, from their registry entries
    own = {name: e.id for e in registry.EXPERIMENTS for name in e.includes}
    assert own and all(registry.get(e).owns(name) for name, e in own.items()) and set(own) <= set(includes.INCLUDES)
    with pytest.raises(ValueError, match=r"decides on the facts \['parts', 'profile'\], got \['profile', 'x'\]"):
        includes.fragment("banner.md", profile="quick", x=1)
    with pytest.raises(ValueError, match=r"decides on the facts \['parts', 'reference'\], got \[\]"):
        includes.fragment("compare.md")
    with pytest.raises(KeyError, match="no generated include 'nowhere.md'"):
        includes.fragment("nowhere.md")
    with pytest.raises(ValueError, match="write 'always' or"):
        includes.parse("profile quick")
    assert includes.parse("source=bundle|results") == ("source", frozenset({"bundle", "results"}))
    # an experiment's generated include is its own: <id>_*.md including report/_<id>_*.qmd
    with pytest.raises(ValueError, match="a generated include is <id>_\\*.md"):
        registry.Experiment(id="e9", title="x", settings={"type": "object"},
                            includes={"banner.md": (("always", "_e9_x.qmd"),)})
    out = subprocess.run([sys.executable, "-m", "klvae.report.includes"], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout
    assert "_generated/banner.md" in out and "profile=quick" in out and "report/_banner_quick.qmd" in out
