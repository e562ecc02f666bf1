"""The pandoc render path's shortcode expansion and table helper."""

import ast
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import QUICK, REPO
from klvae.report.render import ReportError, check_sources, expand_shortcodes, math_spans, quarto_incompatibilities
from klvae.report.tables import markdown_table


def test_include_and_var_are_expanded(tmp_path):
    (tmp_path / "_part.qmd").write_text("---\ntitle: x\n---\nepochs: {{< var e1.epochs >}}\n")
    (tmp_path / "index.qmd").write_text("# A\n{{< include _part.qmd >}}\n")
    out = expand_shortcodes(tmp_path / "index.qmd", {"e1": {"epochs": 7}})
    assert "epochs: 7" in out and "title: x" not in out


def test_undefined_variable_names_the_key_and_file(tmp_path):
    (tmp_path / "index.qmd").write_text("{{< var e1.nope >}}")
    with pytest.raises(ReportError, match=r"e1\.nope.*_variables\.yml"):
        expand_shortcodes(tmp_path / "index.qmd", {"e1": {}})


def test_missing_include_is_an_error(tmp_path):
    (tmp_path / "index.qmd").write_text("{{< include _gone.md >}}")
    with pytest.raises(ReportError, match="_gone.md"):
        expand_shortcodes(tmp_path / "index.qmd", {})


def test_shortcode_in_inline_math_is_refused_with_file_and_line(tmp_path):
    """Real Quarto leaves a shortcode inside $...$ unexpanded ("Could not convert TeX math")."""
    (tmp_path / "index.qmd").write_text("# A\n\nA grid in\n$[-{{< var e1.limit >}}, {{< var e1.limit >}}]^2$ here.\n")
    with pytest.raises(ReportError) as err:
        expand_shortcodes(tmp_path / "index.qmd", {"e1": {"limit": 4}})
    assert str(err.value).startswith(f"{tmp_path / 'index.qmd'}:4: a shortcode inside TeX math ")
    assert "put the shortcode outside the math" in str(err.value)


def test_shortcode_in_display_math_of_an_included_file_names_that_file_and_line(tmp_path):
    (tmp_path / "_part.qmd").write_text("---\ntitle: x\n---\nText.\n\n$$\nx = 1,\n\\quad n = {{< var e1.n >}}\n$$\n")
    (tmp_path / "index.qmd").write_text("# A\n{{< include _part.qmd >}}\n")
    with pytest.raises(ReportError, match=r"_part\.qmd:8: a shortcode inside TeX math"):
        expand_shortcodes(tmp_path / "index.qmd", {"e1": {"n": 3}})


def test_triple_brace_escape_is_refused_with_file_and_line(tmp_path):
    """``{{{< var >}}}`` is Quarto's escape for a literal shortcode: shown as text there, expanded here."""
    (tmp_path / "index.qmd").write_text("# A\n\nz_dim in {{{< var e2.z_dims >}}}.\n")
    with pytest.raises(ReportError) as err:
        expand_shortcodes(tmp_path / "index.qmd", {"e2": {"z_dims": "2, 12"}})
    assert str(err.value) == (
        f"{tmp_path / 'index.qmd'}:3: '{{{{{{<' is Quarto's escape for a literal shortcode (shown as text, not "
        "expanded); for braces around a shortcode write them as HTML entities (&#123;{{< var x >}}&#125;), with a "
        "space ({ {{< var x >}} }) or in words")


def test_shortcodes_beside_math_code_and_dollars_are_accepted(tmp_path):
    """Math next to a shortcode, a shortcode in code, and dollar signs that pandoc does not read as
    math ($5 ... $6: a space before the closing $) are fine; braces as entities expand as before."""
    text = ("$c$ = {{< var a >}} and $c > 0$.\n\nIt costs $5 and {{< var a >}} $6.\n\n`$x = {{< var a >}}$`\n\n"
            "```\n$y = {{< var a >}}$\n```\n\nz_dim &#123;{{< var a >}}&#125;\n")
    assert quarto_incompatibilities(text, "t.qmd") == []
    assert [text[i:j] for i, j in math_spans(text)] == ["$c$", "$c > 0$"]
    (tmp_path / "index.qmd").write_text(text)
    assert "z_dim &#123;7&#125;" in expand_shortcodes(tmp_path / "index.qmd", {"a": 7})


def test_the_reports_own_sources_are_clean_under_real_quarto():
    assert check_sources(REPO / "report") == []
    e1, e2 = (REPO / "report" / "_e1.qmd").read_text(), (REPO / "report" / "_e2.qmd").read_text()
    assert "[−{{< var e1.manifold_limit >}}, {{< var e1.manifold_limit >}}]²" in e1
    assert "&#123;{{< var e2.z_dims >}}&#125;" in e2


def test_check_command_exits_1_on_a_bad_file_and_0_on_the_report(tmp_path):
    (tmp_path / "_a.qmd").write_text("ok $x$\n$y_{{< var n >}}$\nset {{{< var n >}}}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    bad = subprocess.run([sys.executable, "-m", "klvae.report.render", "--check", str(tmp_path)], capture_output=True,
                         text=True, env=env)
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [f"{tmp_path / '_a.qmd'}:2", f"{tmp_path / '_a.qmd'}:3"]
    assert "shortcode inside TeX math" in lines[0] and "escape for a literal shortcode" in lines[1]
    good = subprocess.run([sys.executable, "-m", "klvae.report.render", "--check", str(REPO / "report")],
                          capture_output=True, text=True, env=env)
    assert (good.returncode, good.stdout) == (0, "")


def test_markdown_table_is_a_body_without_caption():
    md = markdown_table(["c", "loss"], [["0", "1.50"]])
    lines = md.splitlines()
    assert lines[0] == "| c | loss |" and lines[2] == "| 0 | 1.50 |" and len(lines) == 3 and md.endswith("|\n")
    assert re.fullmatch(r"\|:-+\|-+:\|", lines[1])  # first column left, the others right
    with pytest.raises(ValueError, match="has 1 cells, header has 2"):
        markdown_table(["c", "loss"], [["0"]])


#: Where a table's caption is written in Python: the scorecard has one table per registered
#: experiment, so its tables and their captions are data (klvae.report.scorecard._table).
CAPTIONED_IN_PYTHON = {"scorecard.py": "tbl-scorecard-"}


def test_table_captions_are_in_the_chapters_not_in_python():
    """Python writes a table's body; its caption and {#tbl-...} id are in a report/*.qmd, on the
    paragraph right after the include of that body from _generated/."""
    caption_id = re.compile(r"\{#(tbl-[a-z0-9-]+)")
    assert list(inspect.signature(markdown_table).parameters) == ["header", "rows", "align"]
    for py in sorted((REPO / "src/klvae/report").glob("*.py")):
        tree = ast.parse(py.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                   and id(n) not in docstrings]  # f-strings' literal parts included, {{ unescaped
        # a {#tbl-...} id or a caption line ("\n: ...") in the code's strings
        found = [s for s in strings if re.search(r"\{#tbl-|\n: ", s)]
        if py.name in CAPTIONED_IN_PYTHON:
            assert found and any(CAPTIONED_IN_PYTHON[py.name] in s for s in strings), py.name
        else:
            assert not found, (py.name, found)
    ids = {}
    for qmd in sorted((REPO / "report").glob("*.qmd")):
        text = qmd.read_text()
        for m in re.finditer(r"^\{\{< include (/?_generated/[a-z0-9_]+\.md) >\}\}\n\n: (.+)$", text, re.M):
            label = caption_id.findall(m.group(2))
            if label:
                assert m.group(2).endswith(f"{{#{label[0]}}}"), (qmd.name, m.group(2)[-80:])
                assert "{{< var made_by." in m.group(2) or label[0] == "tbl-render", \
                    f"{qmd.name}: the caption of {label[0]} names no rule"  # (tbl-render: the render itself)
                ids.setdefault(label[0], []).append(qmd.name)
        for label in caption_id.findall(text):  # every table id of a chapter captions an included body
            assert label in ids, f"{qmd.name}: {label} is not the caption of a table included from _generated/"
    assert len(ids) >= 22 and all(len(where) == 1 for where in ids.values()), ids
    referenced = {m for qmd in (REPO / "report").glob("*.qmd")
                  for m in re.findall(r"@(tbl-[a-z0-9-]+)", qmd.read_text())}
    missing = {r for r in referenced if r not in ids and not r.startswith(CAPTIONED_IN_PYTHON["scorecard.py"])}
    assert not missing, f"tables referenced in report/ but captioned nowhere there: {sorted(missing)}"


def test_git_commit_outside_a_checkout_uses_the_exported_commit(tmp_path, monkeypatch):
    """A tree copied to a GPU machine is not our checkout: the commit exported by gpu_run.sh is used."""
    from klvae.record import git_commit

    monkeypatch.delenv("KLVAE_GIT_COMMIT", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_commit(tmp_path) == "not a git checkout"
    monkeypatch.setenv("KLVAE_GIT_COMMIT", "0123456789ab")
    assert git_commit(tmp_path) == "0123456789ab (from KLVAE_GIT_COMMIT)"
    # a copy tool may wrap the tree in a git repository of its own: the export wins there too
    monkeypatch.delenv("GIT_CEILING_DIRECTORIES")
    assert git_commit(REPO) == "0123456789ab (from KLVAE_GIT_COMMIT)"


def test_made_by_caption_links_the_function_source():
    from klvae.report.provenance import made_by_caption

    text = made_by_caption("e1_scatter", "klvae.figures.e1:latent_scatter",
                           ["results/quick/figures/e1/scatter_c{c}.png"])
    assert text == ("Made by rule `e1_scatter` with [`klvae.figures.e1:latent_scatter`]"
                    "(../../../src/klvae/figures/e1.py) (`results/quick/figures/e1/scatter_c<c>.png`).")


def test_repository_links_name_a_file_and_line_of_the_checkout(tmp_path):
    """With report.repository set, every rule's caption links <repository>/blob/<commit>/<path>#L<line>,
    and that path and line are the function's ``def`` in this checkout, at its HEAD."""
    import re

    import yaml

    from klvae.record import head_commit
    from klvae.report.provenance import write_made_by

    commit = head_commit(REPO)
    if commit is None:
        pytest.skip("not a git checkout")
    code = "\n".join(line for smk in (REPO / "workflow/rules").glob("*.smk")
                     for line in smk.read_text().splitlines() if not line.lstrip().startswith("#"))
    funcs = sorted(set(re.findall(r'library_call(?:_backend)?\(\s*"([a-z0-9_.]+:[a-z0-9_]+)"', code)))
    assert len(funcs) >= 40, funcs
    rules = {f"rule_{i}": {"func": f, "outputs": [f"results/x{i}.csv"]} for i, f in enumerate(funcs)}
    repo_url = "https://github.com/example/klvae"
    values = write_made_by(str(tmp_path / "made_by.vars.yml"), rules, str(tmp_path), repository=repo_url,
                           src_dir=REPO / "src")
    assert yaml.safe_load((tmp_path / "made_by.vars.yml").read_text()) == values
    for rule, v in rules.items():
        link = re.search(r"\]\((\S+)\)", values["made_by"][rule]).group(1)
        m = re.fullmatch(re.escape(repo_url) + r"/blob/([0-9a-f]{40})/(src/\S+\.py)#L(\d+)", link)
        assert m and m[1] == commit, link
        line = (REPO / m[2]).read_text().splitlines()[int(m[3]) - 1]
        assert line.startswith(f"def {v['func'].split(':')[1]}("), (link, line)
    with pytest.raises(ValueError, match="klvae.figures.e1:no_such_function not found"):
        write_made_by(str(tmp_path / "x.yml"), {"r": {"func": "klvae.figures.e1:no_such_function", "outputs": []}},
                      str(tmp_path), repository=repo_url, src_dir=REPO / "src")


def test_without_a_repository_links_are_relative_to_the_rendered_report(tmp_path):
    from klvae.report.provenance import write_made_by

    report_dir = tmp_path / "results" / "from_bundle" / "b" / "report"
    values = write_made_by(str(tmp_path / "v.yml"), {"e1_table": {"func": "klvae.experiments.e1:collect_metrics",
                                                                   "outputs": ["results/tables/e1_losses.csv"]}},
                           str(report_dir), src_dir=REPO / "src")
    href = values["made_by"]["e1_table"].split("](", 1)[1].split(")", 1)[0]
    assert (report_dir / href).resolve() == (REPO / "src/klvae/experiments/e1.py").resolve()


@pytest.mark.pipeline
def test_every_figure_and_table_names_the_rule_that_made_it(quick_run):
    """Captions carry {{< var made_by.<rule> >}}, generated from the DAG (rule report_made_by):
    the rule exists, its outputs include the figure, and in the HTML the function links to its
    source file."""
    import re

    import yaml
    from snakemake.io import regex_from_filepattern  # an output with wildcards matches its files

    made = yaml.safe_load((quick_run / QUICK / "report/generated/made_by.vars.yml").read_text())
    outputs = made["made_by_outputs"]
    var = re.compile(r"\{\{< var made_by\.([a-z0-9_]+) >\}\}")
    # the study's figure is drawn by rule study_figure and copied from its bundle or results by report_study
    copied = {"figures/study/backend_losses.png": f"{QUICK.as_posix()}/study/backend/figures/losses.png"}
    figures = 0
    for qmd in sorted((REPO / "report").glob("*.qmd")):
        for caption, path in re.findall(r"!\[(.*?)\]\((figures/[^)]+\.png)\)", qmd.read_text()):
            named = var.findall(caption)
            assert named, f"{qmd.name}: the caption of {path} names no rule"
            patterns = [regex_from_filepattern(o) for o in outputs[named[0]]]
            drawn = copied.get(path, f"{QUICK.as_posix()}/{path}")
            assert any(re.match(p, drawn) for p in patterns), (path, named[0], outputs[named[0]])
            figures += 1
    assert figures >= 13
    # table captions: in the chapters (report/*.qmd), and the scorecard's, generated per experiment
    captions = [(qmd.name, c) for qmd in sorted((REPO / "report").glob("*.qmd"))
                for c in re.findall(r"^: (.*\{#tbl-[a-z0-9-]+\})$", qmd.read_text(), re.M)]
    captions += [("scorecard.md", c) for c in re.findall(r"^: (.*\{#tbl-[a-z0-9-]+\})$",
                                                         (quick_run / QUICK / "report/generated/scorecard.md")
                                                         .read_text(), re.M)]
    tables = 0
    for where, caption in captions:
        if caption.endswith("{#tbl-render}"):  # the render itself, not a rule of the run
            continue
        named = var.findall(caption)
        assert named and all(n in outputs for n in named), f"{where}: {caption[:80]}"
        tables += 1
    assert tables >= 24
    html = re.sub(r"\s+", " ", (quick_run / QUICK / "report/klvae.html").read_text())  # pandoc wraps lines
    link = re.search(r'Made by rule <code>e1_scatter_panel</code> with <a href="([^"]+)">'
                     r"<code>klvae.figures.e1:scatter_panel</code></a>", html)
    assert link, "the caption of E1's scatter panel does not link its function"
    # relative to the rendered report, it reaches the source file of the code that drew it
    import klvae
    drawn_by = Path(klvae.__file__).resolve().parent / "figures" / "e1.py"
    assert (quick_run / QUICK / "report" / link.group(1)).resolve() == drawn_by
    assert "made_by." not in html


def test_rule_and_experiment_times_sum_wall_and_cpu_seconds_from_benchmark_files(tmp_path):
    from klvae.record import experiment_times, rule_times
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    files = {"e1_train/r0_c0.tsv": (100.0, 80.0, 500.0), "e1_train/r0_c1.tsv": (50.0, 40.0, 700.0),
             "e2_timing.tsv": (30.0, 29.5, 900.0), "mnist_download.tsv": (2.0, 1.0, 100.0),
             "report/render.tsv": (9.0, 9.0, 100.0)}
    for name, (s, cpu, rss) in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + f"{s}\t0:00:00\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n")
    times = rule_times(tmp_path)
    assert [r["rule"] for r in times] == ["e1_train", "e2_timing", "mnist_download"]  # report rules left out
    e1 = times[0]
    assert (e1["jobs"], e1["total_s"], e1["median_s"], e1["max_s"], e1["cpu_s"], e1["max_rss_mb"]) == \
        (2, 150.0, 75.0, 100.0, 120.0, 700.0)
    per_experiment = experiment_times(times)
    assert [(e["experiment"], e["jobs"], e["total_s"], e["cpu_s"]) for e in per_experiment] == [
        ("data (MNIST)", 1, 2.0, 1.0), ("E1", 2, 150.0, 120.0), ("E2", 1, 30.0, 29.5)]


def test_includes_resolve_from_the_main_documents_folder_as_in_quarto(tmp_path):
    """Quarto resolves an include inside an included file from the main document's folder (a
    leading / too): a generated fragment in _generated/ can include report prose beside index.qmd."""
    from klvae.report.render import expand_shortcodes

    (tmp_path / "_generated").mkdir()
    (tmp_path / "index.qmd").write_text("A\n\n{{< include _generated/frag.md >}}\n")
    (tmp_path / "_generated" / "frag.md").write_text("B\n\n{{< include /_prose.qmd >}}\n\n{{< include _more.qmd >}}\n")
    (tmp_path / "_prose.qmd").write_text("C {{< var x >}}\n")
    (tmp_path / "_more.qmd").write_text("D\n")
    assert expand_shortcodes(tmp_path / "index.qmd", {"x": 1}).split() == ["A", "B", "C", "1", "D"]
