"""Rendering treats every bundle as untrusted data (:mod:`klvae.report.escape`).

Fast: :func:`~klvae.report.escape.md_text`, :func:`~klvae.report.escape.md_code`,
:func:`~klvae.report.escape.md_url`, :func:`~klvae.report.tables.markdown_table` and
:func:`~klvae.report.escape.write_variables` through pandoc (pypandoc) to HTML and to Typst: every kind
of markup shows literally, in every place the report puts text (a paragraph's start, running text,
a list item, a table cell, a code span, the title in the front matter, a link's destination); and
the committed backend-study bundle, made hostile, renders its section as text.

Pipeline (the session's quick-profile run): a hostile but self-consistent results bundle -- every
string of every CSV, TSV, JSON and YAML member that the bundle allow-list admits
(:func:`klvae.bundle.core.member_kind`), and of the manifest, replaced by markup (:data:`PAYLOAD`),
numbers, keys and column names kept, the manifest rehashed so that verification passes -- rendered
in bundle mode, set beside itself as the "shipped run"; nothing of the payload becomes an element
of the HTML or code in the PDF, and its characters show as text. Which strings are poisoned is
found by walking the members (:func:`hostile_contents`); the few that are kept are names the
report's code looks up (generated from its source, :func:`looked_up_names`) or config values the
schema constrains, and none of them can hold markup.
"""

from __future__ import annotations

import ast
import copy
import csv
import io
import json
import re
import shutil
import subprocess
import tarfile
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from conftest import QUICK, REPO, run_snakemake
from klvae.bundle import core as kb
from klvae.report.escape import Markdown, md_code, md_text, md_url, write_variables
from klvae.report.render import INCLUDE_RE, VAR_RE, expand_shortcodes
from klvae.report.tables import markdown_table

# ----------------------------------------------------------------------------------------------
# payloads

#: One string with every kind of markup (HTML, links, images, math, emphasis, code, raw Typst and
#: TeX, a shortcode, a citation, super/subscript, a table-breaking pipe, a heading at the start and
#: a list after blank lines), each part marked with a PWN word. It ends in ``/end`` so that a path's
#: last part (``Path(value).name``, shown for some file names) holds none of it.
PAYLOAD = ("# PWNH <script>alert(1)</script><b>PWNB</b> [PWNL](http://e.x) ![PWNI](x.png) $PWNM$ *PWNE* "
           "`PWNC` {{< var profile >}} |PWNP| @PWNCITE ^PWNSUP^ ~PWNSUB~ <http://e.x/PWNA> \\textbf{PWNTEX} "
           "`#set page(fill: red)`{=typst} #text(fill: red)[PWNT] &lt;PWNENT&gt; [PWNSPAN]{.c} -- 'q'"
           "\n\n- PWNLIST\n\n/end")
#: The payload as it must show: one line.
SHOWN = " ".join(PAYLOAD.split())

#: Every kind of markup pandoc (or Quarto, or Typst) would read from text, one payload each.
KINDS = {
    "raw HTML": "<script>alert(1)</script><b>x</b>",
    "HTML comment": "<!-- hidden --> shown",
    "entity": "&lt;b&gt; &amp; &#60;",
    "link": "[l](http://e.x)",
    "autolink": "<http://e.x>",
    "image": "![i](x.png)",
    "inline math": "$x^2$",
    "display math": "$$x$$",
    "emphasis": "*e* _u_ **s** __t__",
    "strikeout, sub- and superscript": "~~s~~ H~2~O x^2^",
    "code span": "`c` ``d``",
    "raw attribute": "`<b>r</b>`{=html} `#set page(fill: red)`{=typst}",
    "raw TeX": "\\textbf{t} \\begin{x}",
    "shortcode": "{{< var v.a >}} {{< include /x.md >}}",
    "span and attributes": "[s]{.c} {#id}",
    "citation": "@cite [@cite; @other]",
    "footnote": "^[note] [^1]",
    "pipe": "a | b |",
    "heading": "# h",
    "setext heading": "t\n===",
    "bullet list": "- item",
    "ordered list": "1. item",
    "fancy list": "(a) item",
    "example list": "(@) item",
    "definition": "term\n: def",
    "block quote": "> quote",
    "indented code": "    indented code",
    "fenced code": "```\ncode\n```",
    "div": "::: {.x}\ntext\n:::",
    "rule": "---",
    "line block": "| line",
    "line breaks": "a\\\nb c  \nd",
    "blank lines": "a\n\n# h2\n\n- li",
    "smart typography": "-- --- ... \"q\" 'q'",
    "Typst": "#set page(fill: red) #text(fill: red)[t] <lbl> @lbl",
    "control characters": "a\x00b\x1bc",
    "YAML string breakers": 'a" b\\ c',
}
#: Kinds whose raw form is harmless in the paragraph, list and table contexts of the check (they are
#: live elsewhere: a YAML string, Quarto's emoji, a title block at the document's start).
HARMLESS_IN_TEXT = {"YAML string breakers", "control characters"}


def shown(text: str) -> str:
    """What a payload must show: one line, control characters as U+FFFD."""
    return " ".join(re.sub(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]", "\ufffd", text).split())


# ----------------------------------------------------------------------------------------------
# reading HTML


class Element:
    def __init__(self, tag: str, attrs: dict):
        self.tag, self.attrs, self.parts, self.inner = tag, attrs, [], set()

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())


class Elements(HTMLParser):
    """Every element of an HTML document's body, with its text (character references decoded) and the
    tags inside it."""

    VOID = {"img", "br", "hr", "meta", "link", "input", "col", "source", "wbr", "area", "base", "embed"}

    def __init__(self, document: str):
        super().__init__(convert_charrefs=True)
        self.all: list[Element] = []
        self.open: list[Element] = []
        self.in_body = "<body" not in document
        self.feed(document)
        self.close()

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.in_body = True
            return
        if not self.in_body:
            return
        el = Element(tag, dict(attrs))
        for parent in self.open:
            parent.inner.add(tag)
        self.all.append(el)
        if tag not in self.VOID:
            self.open.append(el)

    def handle_endtag(self, tag):
        if tag == "body":
            self.in_body = False
        for i in range(len(self.open) - 1, -1, -1):
            if self.open[i].tag == tag:
                del self.open[i:]
                break

    def handle_data(self, data):
        for el in self.open:
            el.parts.append(data)

    def by_id(self, id_: str) -> Element:
        return next(e for e in self.all if e.attrs.get("id") == id_)

    def text(self) -> str:
        """The text of the blocks that hold no other block (paragraphs, cells, items), one line."""
        blocks = {"p", "td", "th", "li", "div", "table", "tr", "tbody", "thead", "section", "ul", "ol", "figure",
                  "header", "body", "main", "nav", "figcaption", "caption"}
        return " ".join(e.text for e in self.all if e.tag in blocks and not e.inner & blocks)


def body_tags(document: str) -> set[str]:
    return {e.tag for e in Elements(document).all}


def live_typst(typ: str) -> list[str]:
    """The payloads' Typst that a Typst source would run: ``#set page(fill: red)`` or
    ``#text(fill: red)`` not escaped (``\\#``) and outside raw text (backticks)."""
    return re.findall(r"(?<!\\)#(?:set page|text)\(fill: red\)", re.sub(r"`[^`\n]*`", "", typ))


def pandoc(text: str, to: str, standalone: bool = False) -> str:
    import pypandoc

    return pypandoc.convert_text(text, to, format="markdown",
                                 extra_args=["--mathml", *(["--standalone"] if standalone else [])])


# ----------------------------------------------------------------------------------------------
# fast checks: each kind of markup, each place


#: The tags the check document makes itself; anything else came from a payload.
SKELETON = {"header", "h1", "div", "p", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "code",
            "colgroup", "col"}


def check_document(values: dict[str, str], codes: dict[str, str], table: str, tmp: Path) -> str:
    """The check document (a qmd) with each payload as a variable at a paragraph's start
    (``#para-i``), in running text (``#mid-i``), as a code span (``#code-i``), as a list item and in
    the title; ``table`` holds them as table cells. Expanded as the report is
    (:func:`klvae.report.render.expand_shortcodes`)."""
    names = list(values)
    title = " ¦ ".join(f"{{{{< var x.p{i} >}}}}" for i in range(len(names)))
    parts = [f'---\ntitle: "{title}"\n---\n']
    for i in range(len(names)):
        parts.append(f"::: {{#para-{i}}}\n{{{{< var x.p{i} >}}}}\n:::\n")
        parts.append(f"::: {{#mid-{i}}}\nbefore {{{{< var x.p{i} >}}}} after\n:::\n")
        parts.append(f"::: {{#code-{i}}}\n{{{{< var y.p{i} >}}}}\n:::\n")
    parts.append("::: {#items}\n" + "".join(f"- {{{{< var x.p{i} >}}}}\n" for i in range(len(names))) + ":::\n")
    parts.append("::: {#cells}\n" + table + ":::\n")
    qmd = tmp / "check.qmd"
    qmd.write_text("\n".join(parts))
    variables = {"x": {f"p{i}": values[n] for i, n in enumerate(names)},
                 "y": {f"p{i}": codes[n] for i, n in enumerate(names)},
                 "v": {"a": "EXPANDED"}, "profile": "quick"}
    return expand_shortcodes(qmd, variables)


def literal_failures(document: str, expected: dict[str, str]) -> dict[str, list[str]]:
    """Per kind, the places where its payload did not show as plain text (empty lists: all literal)."""
    els = Elements(document)
    names = list(expected)
    out = {n: [] for n in names}
    items = [e for e in els.all if e.tag == "li"]
    rows = [e for e in els.all if e.tag == "tr"][1:]
    cells = [e for e in els.all if e.tag == "td"]
    for i, n in enumerate(names):
        want = expected[n]
        for where, allowed, text in (("paragraph start", {"p"}, want), ("running text", {"p"}, f"before {want} after"),
                                     ("code span", {"p", "code"}, want)):
            try:
                el = els.by_id({"paragraph start": "para", "running text": "mid", "code span": "code"}[where] + f"-{i}")
            except StopIteration:
                out[n].append(f"{where}: gone")
                continue
            if el.text != text or not el.inner <= allowed:
                out[n].append(f"{where}: {el.text!r} with {sorted(el.inner)}")
        if i >= len(items) or items[i].text != want or not items[i].inner <= {"p"}:
            out[n].append("list item")
        if len(rows) != len(names) or len(cells) != 3 * len(names):
            out[n].append("table: its rows or cells changed")
        else:
            text_cell, code_cell = cells[3 * i + 1], cells[3 * i + 2]
            if text_cell.text != want or text_cell.inner:
                out[n].append(f"table cell: {text_cell.text!r} with {sorted(text_cell.inner)}")
            if code_cell.text != want or not code_cell.inner <= {"code"}:
                out[n].append(f"table code cell: {code_cell.text!r} with {sorted(code_cell.inner)}")
    return out


def test_every_kind_of_markup_shows_literally_in_every_place(tmp_path):
    """md_text and md_code (through write_variables and markdown_table, as the report's writers use
    them) make each payload plain text in a paragraph's start, running text, a code span, a list
    item, a table cell and the title; the HTML holds no element the payloads made, and the Typst
    source no live Typst."""
    values = write_variables(tmp_path / "v.yml", {"x": KINDS})["x"]
    assert yaml.safe_load((tmp_path / "v.yml").read_text())["x"] == values  # written once, read back as written
    codes = {n: md_code(p) for n, p in KINDS.items()}
    rows = [[f"row-{i}", p, md_code(p)] for i, p in enumerate(KINDS.values())]
    document = check_document(values, codes, markdown_table(["id", "text", "code"], rows, align="lll"), tmp_path)
    expected = {n: shown(p) for n, p in KINDS.items()}
    out = pandoc(document, "html5", standalone=True)
    failures = {n: f for n, f in literal_failures(out, expected).items() if f}
    assert not failures, failures
    assert body_tags(out) <= SKELETON, body_tags(out) - SKELETON
    els = Elements(out)
    assert not [e.attrs for e in els.all if {"href", "src"} & set(e.attrs)]
    assert els.all[0].tag == "header" and next(e for e in els.all if e.tag == "h1").text == " ¦ ".join(
        expected.values())
    assert "EXPANDED" not in out  # no shortcode of the data was expanded
    typ = pandoc(document, "typst")
    assert not live_typst(typ)
    assert "\\#set page(fill: red)" in typ


def test_without_escaping_every_kind_is_live_markup(tmp_path):
    """The payloads are real: written raw (no escaping), each kind but those harmless in running
    text becomes markup in at least one of the places checked above."""
    (tmp_path / "x.md").write_text("INCLUDED\n")  # the shortcode's include would read it
    raw = {n: Markdown(p) for n, p in KINDS.items()}
    rows = [[f"row-{i}", Markdown(p), Markdown(f"`{p}`")] for i, p in enumerate(KINDS.values())]
    table = markdown_table(["id", "text", "code"], rows, align="lll")
    document = check_document(raw, {n: Markdown(f"`{p}`") for n, p in KINDS.items()}, table, tmp_path)
    document = re.sub(r"\A---\n.*?\n---\n", "", document, flags=re.S)  # raw, the title breaks the YAML
    failures = literal_failures(pandoc(document, "html5"), {n: shown(p) for n, p in KINDS.items()})
    assert not [n for n, f in failures.items() if not f and n not in HARMLESS_IN_TEXT], failures


def test_numbers_versions_and_names_read_the_same_in_the_generated_files():
    for text in ("-1,234.5", "1.0e-05", "+0.3", "3.12.0", "2.16.1", "0123abc-dirty", "end_layer", "gpu-node-7",
                 "results/quick/benchmarks/", "0.02 → 0.1", "12.5 %", "c = 1"):
        assert md_text(text) == text, text
    assert md_text(Markdown("**x**")) == "**x**"  # the code's own markup, or text escaped before: once only
    assert md_code("gpu-node-7") == "`gpu-node-7`" and md_code("a`b") == md_text("a`b")
    assert md_code("{{< var x >}}") == md_text("{{< var x >}}") and md_code("a|b") == md_text("a|b")
    assert md_text("  a\n\n b\t") == "a b" and md_text("") == ""


def test_a_link_destination_cannot_be_ended_by_the_data():
    from klvae.report.provenance import made_by_caption, source_link

    link = source_link("klvae.figures.e1:scatter_panel", repository="https://e.x/a)<b>PWNB</b>{{<\tvar\tprofile\t>}}",
                       commit="abc")
    caption = made_by_caption("e1_scatter_panel", "klvae.figures.e1:scatter_panel", ["a.png"], link=link)
    assert not VAR_RE.search(caption) and not INCLUDE_RE.search(caption)
    els = Elements(pandoc(caption, "html5"))
    assert [e.tag for e in els.all if e.tag not in ("p", "code")] == ["a"]
    assert els.all[[e.tag for e in els.all].index("a")].attrs["href"].startswith("https://e.x/a%29%3Cb%3E")
    assert md_url("../../../src/klvae/figures/e1.py#L12") == "../../../src/klvae/figures/e1.py#L12"


def code_spans(text: str) -> list[str]:
    """The inline code spans of a qmd's text outside fenced code blocks (pandoc's rule: a run of
    backticks closed by the same run, no blank line inside)."""
    text = re.sub(r"^(```|~~~).*?^\1[ \t]*$", "", text, flags=re.M | re.S)
    spans, i = [], 0
    while (m := re.compile(r"`+").search(text, i)) is not None:
        close = re.compile(r"(?<!`)" + m.group(0) + r"(?!`)").search(text, m.end())
        if close and not re.search(r"\n[ \t]*\n", text[m.end():close.start()]):
            spans.append(text[m.end():close.start()])
            i = close.end()
        else:
            i = m.end()
    return spans


def test_no_variable_of_the_report_sits_inside_a_code_span():
    """A variable's value is Markdown (text escaped with character references): inside backticks it
    would show its escapes. A value meant as code is a code span itself (md_code)."""
    found = [(q.name, s) for q in sorted((REPO / "report").glob("*.qmd")) for s in code_spans(q.read_text())
             if "{{<" in s]
    assert not found, found


def test_markdown_table_escapes_text_and_keeps_the_codes_markup():
    table = markdown_table(["a|b", "x"], [["<b>x</b> | y", Markdown("**differs**")], [md_code("end_layer"), 3.5]])
    lines = table.splitlines()
    assert lines[0] == "| a&#124;b | x |"
    assert lines[2] == "| &#60;b&#62;x&#60;/b&#62; &#124; y | **differs** |" and lines[3] == "| `end_layer` | 3.5 |"


# ----------------------------------------------------------------------------------------------
# making a hostile bundle

#: The modules that read a bundle for the report: the strings they look up are kept (a changed one
#: would change which rows and files exist, not what the report shows as text).
READERS = ("klvae/report/*.py", "klvae/bundle/*.py", "klvae/legacy.py", "klvae/formatting.py", "klvae/reference.py",
           "klvae/record.py", "klvae/layout.py", "klvae/stats.py")
#: A name: letters, digits and ``_.+-`` only -- nothing that markup is made of (``_`` only inside).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
#: Why a string that names something the report's code looks up is kept.
LOOKED_UP = "a name the report's code looks up"
#: The manifest's fields that say how to read the archive (format, members, which member is what).
MANIFEST_STRUCTURE = {"format", "members", "run_record", "config", "experiments", "missing", "kind"}


def looked_up_names() -> tuple[frozenset[str], tuple[re.Pattern, ...]]:
    """The string constants of :data:`READERS` and their f-strings as patterns (``f"stage_ms_{q}"``:
    ``stage_ms_.+``; only those with three letters or more outside the braces), read with :mod:`ast`."""
    src = REPO / "src"
    literals, patterns = set(), []
    for pattern in READERS:
        for path in sorted(src.glob(pattern)):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    literals.add(node.value)
                elif isinstance(node, ast.JoinedStr):
                    fixed = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
                    if len(re.sub(r"[^A-Za-z]", "", fixed)) >= 3:
                        patterns.append(re.compile("".join(re.escape(v.value) if isinstance(v, ast.Constant) else ".+"
                                                           for v in node.values)))
    return frozenset(literals), tuple(patterns)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class Poisoner:
    """Replaces strings by the payload, recording each place, and each string kept with the reason."""

    def __init__(self, payload: str):
        self.payload = payload
        self.literals, self.patterns = looked_up_names()
        self.poisoned: list[tuple[str, str]] = []
        self.kept: list[tuple[str, str, str, str]] = []
        self.walked: set[str] = set()

    def looked_up(self, value: str) -> bool:
        return bool(NAME.fullmatch(value)) and (value in self.literals or any(p.fullmatch(value)
                                                                               for p in self.patterns))

    def string(self, member: str, where: str, value: str, keep_reason: str | None = None) -> str:
        reason = keep_reason or ("a number" if _is_number(value) else "empty" if not value.strip() else
                                 LOOKED_UP if self.looked_up(value) else None)
        if reason:
            self.kept.append((member, where, value, reason))
            return value
        self.poisoned.append((member, where))
        return self.payload

    def tree(self, member: str, node, where: str = "", keep=None):
        """Every string value of a JSON/YAML tree (keys kept); ``keep(where, value)`` may give a reason to keep."""
        if isinstance(node, dict):
            return {k: self.tree(member, v, f"{where}.{k}" if where else str(k), keep) for k, v in node.items()}
        if isinstance(node, list):
            return [self.tree(member, v, f"{where}[{i}]", keep) for i, v in enumerate(node)]
        if isinstance(node, str):
            return self.string(member, where, node, keep(where, node) if keep else None)
        return node

    def table(self, member: str, data: bytes, delimiter: str) -> bytes:
        """Every cell of a CSV/TSV but the header (column names kept)."""
        rows = list(csv.reader(io.StringIO(data.decode("utf-8")), delimiter=delimiter))
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
        writer.writerow(rows[0] if rows else [])
        for r, row in enumerate(rows[1:], 1):
            header = rows[0]
            writer.writerow([self.string(member, f"row {r}, {header[i] if i < len(header) else i}", cell)
                             for i, cell in enumerate(row)])
        return out.getvalue().encode()


def _config_keep(config: dict, schema: Path):
    """For the run's config: keep a string where the schema refuses the payload (an enum, a
    pattern), or where it is a relative path the workflow builds file names from."""
    from snakemake.utils import validate

    def keep(where: str, value: str) -> str | None:
        if "/" in value and NAME.fullmatch(value.replace("/", "")):
            return "a path the workflow builds file names from"
        trial = copy.deepcopy(config)
        node, parts = trial, re.findall(r"[^.\[\]]+", where)
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        last = parts[-1]
        node[int(last) if isinstance(node, list) else last] = PAYLOAD
        try:
            validate(trial, str(schema), set_default=True)
        except Exception:  # snakemake's WorkflowError: the schema does not allow it
            return "the config schema allows only its own values here"
        return None

    return keep


def _hostile_config(poison: Poisoner, name: str, data: bytes, edits: dict) -> bytes:
    """The run's config with ``edits`` (dotted key -> value) set, then poisoned (:func:`_config_keep`)."""
    config = yaml.safe_load(data)
    for key, value in edits.items():
        node = config
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    keep = _config_keep(config, REPO / "workflow" / "schemas" / "config.schema.yaml")
    tree = poison.tree(name, config, keep=lambda w, v: "set by the test" if w in edits else keep(w, v))
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True).encode()


def hostile_contents(contents: dict[str, bytes], payload: str = PAYLOAD, config_edits: dict | None = None,
                     run_edits: dict | None = None) -> tuple[dict[str, bytes], Poisoner]:
    """A bundle's members with every string of every CSV/TSV, JSON and YAML member the allow-list admits
    replaced by ``payload`` (:class:`Poisoner`); ``config_edits`` (dotted key -> value) set in the run's
    config first (e.g. ``report.compare_with``), ``run_edits`` (key -> value) in its run record (e.g.
    the ``parts`` of a run made in parts, whose strings are then poisoned too)."""
    poison = Poisoner(payload)
    out = {}
    if run_edits:
        run = {**json.loads(contents[kb.RUN_RECORD]), **run_edits}
        contents = {**contents, kb.RUN_RECORD: json.dumps(run).encode()}
    for name, data in contents.items():
        admitted, _ = kb.member_kind(name)
        suffix = Path(name).suffix.lower()
        if not admitted or suffix not in (".csv", ".tsv", ".json", ".yml", ".yaml"):
            out[name] = data
            continue
        poison.walked.add(name)
        if suffix in (".csv", ".tsv"):
            out[name] = poison.table(name, data, "," if suffix == ".csv" else "\t")
        elif suffix == ".json":
            out[name] = (json.dumps(poison.tree(name, json.loads(data)), indent=1) + "\n").encode()
        elif name == kb.RUN_CONFIG:
            out[name] = _hostile_config(poison, name, data, config_edits or {})
        else:
            out[name] = yaml.safe_dump(poison.tree(name, yaml.safe_load(data)), sort_keys=False,
                                       allow_unicode=True).encode()
    return out, poison


def make_hostile_bundle(src: Path, dst: Path, payload: str = PAYLOAD, config_edits: dict | None = None,
                        run_edits: dict | None = None) -> Poisoner:
    """``src`` (a verified bundle) made hostile (:func:`hostile_contents`), its manifest's own strings
    too (but :data:`MANIFEST_STRUCTURE`), rehashed and written to ``dst`` by
    :func:`klvae.bundle.core.write_archive`, so that it verifies."""
    import hashlib

    manifest, contents, _ = kb.read_bundle(src)
    new, poison = hostile_contents(contents, payload, config_edits, run_edits)
    manifest = {k: (v if k in MANIFEST_STRUCTURE else poison.tree(kb.MANIFEST_NAME, v, k)) for k, v in manifest.items()}
    manifest["members"] = [{"path": e["path"], "size": len(new[e["path"]]),
                            "sha256": hashlib.sha256(new[e["path"]]).hexdigest()} for e in manifest["members"]]
    manifest["members_total_bytes"] = sum(e["size"] for e in manifest["members"])
    kb.write_archive(dst, manifest, [(e["path"], new[e["path"]], 0) for e in manifest["members"]])
    kb.verify_bundle(dst)
    return poison


def assert_kept_strings_hold_no_markup(poison: Poisoner) -> None:
    bad = [k for k in poison.kept if k[3] not in ("a number", "empty", "set by the test")
           and not NAME.fullmatch(k[2].replace("/", ""))]
    assert not bad, bad


# ----------------------------------------------------------------------------------------------
# the committed backend-study bundle, made hostile (fast)


class AnyCaption(dict):
    """``made_by.<rule>`` for any rule (the section's captions name rules of the study)."""

    def __contains__(self, key):
        return True

    def __getitem__(self, key):
        return "Made by a rule."


def test_a_hostile_study_bundle_renders_its_section_as_text(tmp_path):
    from klvae.bundle.study import find_study_bundle
    from klvae.report.study import write_study

    committed = find_study_bundle(REPO / "bundles")
    assert committed is not None
    hostile = tmp_path / "bundles" / committed.name
    poison = make_hostile_bundle(committed, hostile)
    assert_kept_strings_hold_no_markup(poison)
    members = {m for m, _ in poison.poisoned}
    assert {"study/backend/run.json", "study/backend/config.yaml", "study/backend/tables/backends.csv",
            kb.MANIFEST_NAME} <= members, members
    build = tmp_path / "build"
    shutil.copytree(REPO / "report", build)
    gen = build / "_generated"
    gen.mkdir()
    write_study(str(gen / "backend_study.md"), str(gen / "study_backends.md"), str(gen / "study_latent.md"),
                str(tmp_path / "v.yml"), "bundle", str(hostile), figure=str(build / "figures/study/losses.png"),
                spreads=str(tmp_path / "spreads.csv"), e1_settings=None)
    variables = {**yaml.safe_load((tmp_path / "v.yml").read_text()), "made_by": AnyCaption()}
    (build / "main.qmd").write_text("{{< include /_backend_study.qmd >}}\n")
    document = expand_shortcodes(build / "main.qmd", variables)
    assert "PWN" in document
    out = pandoc(document, "html5")
    check_html(out, min_literal=1)
    assert not live_typst(pandoc(document, "typst"))


# ----------------------------------------------------------------------------------------------
# checks on a rendered report


#: The payload's marked parts and what each would become if it were read as markup.
MARKERS = ("PWNH", "PWNB", "PWNL", "PWNI", "PWNM", "PWNE", "PWNC", "PWNP", "PWNCITE", "PWNSUP", "PWNSUB", "PWNA",
           "PWNTEX", "PWNT", "PWNENT", "PWNSPAN", "PWNLIST")
#: Elements that markup from the data would make.
MARKUP_TAGS = {"script", "b", "a", "img", "math", "em", "strong", "code", "sup", "sub", "del", "span", "cite",
               "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "ol", "dl", "dt", "dd", "hr", "pre", "style",
               "iframe", "br"}


def check_html(document: str, min_literal: int) -> Elements:
    """No element, link or image of the payload in ``document``; its characters shown as text."""
    els = Elements(document)
    core = SHOWN[:60]
    made = [(e.tag, e.text[:80]) for e in els.all if e.tag in MARKUP_TAGS and "PWN" in e.text.upper()
            and core.upper() not in e.text.upper()]
    assert not made, made
    assert not [e for e in els.all if e.tag == "script" and "alert" in e.text.lower()]
    assert not [(e.tag, e.attrs) for e in els.all
                if any("e.x" in str(v) or "x.png" in str(v).lower() for k, v in e.attrs.items()
                       if k in ("href", "src"))]
    text = els.text()
    assert text.count(SHOWN) >= min_literal, (text.count(SHOWN), text[:2000])
    for part in ("<script>alert(1)</script>", "<b>PWNB</b>", "{{< var profile >}}", "[PWNL](http://e.x)",
                 "`#set page(fill: red)`{=typst}", "\\textbf{PWNTEX}", "&lt;PWNENT&gt;", "$PWNM$"):
        assert part in text, part
    return els


# ----------------------------------------------------------------------------------------------
# pipeline: the quick run's bundle, made hostile, rendered in bundle mode


@pytest.fixture(scope="module")
def hostile_render(quick_run, tmp_path_factory) -> dict:
    """The session's quick run packed (``make bundle``'s function), made hostile, set beside itself
    as the shipped run (config ``report.compare_with``), and rendered with ``--config bundle=...``."""
    tmp = tmp_path_factory.mktemp("hostile")
    src = Path(kb.create_bundle(quick_run / QUICK, out_dir=tmp / "bundle")["path"])
    work = tmp / "work"
    work.mkdir()
    archive = tmp / "klvae-quick-hostile.tar.gz"
    # a run made in parts (the paper run's record), so the tables of its parts are rendered from poison too
    parts = [{"part": p, "commit": "953da1b6313d", "host": "vm", "cpu": "AMD EPYC", "logical_cpus": "2",
              "gpu": "none", "recorded_utc": "2026-12-06T06:15:41Z", "first_start_utc": "2026-12-06T05:15:41+00:00",
              "last_end_utc": "2026-12-06T06:15:00+00:00", "jobs": 52, "cpu_s": 4890.3, "wall_s": 3624.0,
              "cores_busy": 0.67, "resumed": 0, "timing": False} for p in ("e1", "e2-a")]
    poison = make_hostile_bundle(src, archive, config_edits={"report.compare_with": str(archive)},
                                 run_edits={"parts": parts})
    (tmp / "poisoned.json").write_text(json.dumps({"poisoned": poison.poisoned, "kept": poison.kept}, indent=1))
    start = time.time()
    proc = run_snakemake(work, "--config", f"bundle={archive}", check=False, timeout=1500)
    return {"archive": archive, "poison": poison, "proc": proc, "seconds": time.time() - start,
            "out": work / kb.render_dir(archive) / "report"}


@pytest.mark.pipeline
def test_hostile_bundle_is_made_from_every_string_of_every_member(hostile_render):
    poison = hostile_render["poison"]
    members = {m for m, _ in poison.poisoned}
    with tarfile.open(hostile_render["archive"], "r:gz") as tar:
        names = [n for n in tar.getnames() if n != kb.MANIFEST_NAME]
    text_members = [n for n in names if Path(n).suffix in (".csv", ".tsv", ".json", ".yml", ".yaml")]
    reasons = [k[3] for k in poison.kept]
    # members whose every string is a name the code looks up (or a config value the schema fixes)
    named_only = sorted({k[0] for k in poison.kept if k[3] not in ("a number", "empty")} - members)
    print(f"\n[hostile] {len(poison.poisoned)} strings poisoned in {len(members)} of {len(text_members)} text "
          f"members and the manifest; kept: {reasons.count(LOOKED_UP)} looked-up names, "
          f"{len(reasons) - reasons.count(LOOKED_UP) - reasons.count('a number') - reasons.count('empty')} config "
          f"values; members with names only: {named_only}")
    assert_kept_strings_hold_no_markup(poison)
    wheres = {(m, w.split(",")[-1].strip()) for m, w in poison.poisoned}
    assert any(m == kb.RUN_RECORD and "parts" in w and w.endswith("host") for m, w in poison.poisoned), \
        [w for m, w in poison.poisoned if m == kb.RUN_RECORD][:20]
    for needed in ((kb.RUN_RECORD, "host"), (kb.RUN_RECORD, "hardware.CPU"), (kb.RUN_RECORD, "recorded_utc"),
                   (kb.MANIFEST_NAME, "created_host")):
        assert needed in wheres, needed
    assert any(m == kb.RUN_RECORD and w.startswith("versions.") for m, w in poison.poisoned)
    assert any(m.startswith("tables/e2_compat") for m in members), members
    assert any(m.startswith("e2/") and m.endswith("metrics.json") for m in members)
    assert set(text_members) <= poison.walked  # every text member was walked


@pytest.mark.pipeline
def test_hostile_bundle_renders_as_text_in_html_and_pdf(hostile_render):
    proc = hostile_render["proc"]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    print(f"\n[hostile] the hostile bundle rendered in {hostile_render['seconds']:.1f} s")
    out = hostile_render["out"]
    document = (out / "klvae.html").read_text()
    assert 'id="tbl-compare"' in document  # the shipped run's tables (the hostile bundle itself) are shown too
    # a run made in parts: the methods chapter's table of its parts, and the comparison's
    assert 'id="tbl-parts"' in document and 'id="tbl-compare-parts"' in document
    check_html(document, min_literal=10)
    assert not live_typst((out / "build" / "_klvae.typ").read_text())
    assert (out / "klvae.pdf").read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftotext"):
        text = re.sub(r"\s+", "", subprocess.run(["pdftotext", str(out / "klvae.pdf"), "-"], capture_output=True,
                                                  text=True, check=True).stdout)
        for part in ("#setpage(fill:red)", "#text(fill:red)[PWNT]", "<script>alert(1)</script>", "<b>PWNB</b>",
                     "\\textbf{PWNTEX}", "{{<varprofile>}}"):
            assert part in text, part
