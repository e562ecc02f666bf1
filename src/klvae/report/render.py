"""Render the Quarto project in ``report/`` to one self-contained HTML file and one PDF.

Two paths, same sources:

* ``quarto`` -- where the ``quarto`` command exists: ``quarto render`` of the assembled
  project (HTML with embedded resources, PDF through Quarto's Typst format).
* ``pandoc`` -- everywhere else (Quarto cannot be installed on our machines): the include
  and var shortcodes are expanded here, pandoc (from ``pypandoc-binary``) writes the
  self-contained HTML, and pandoc -> Typst -> PDF with the ``typst`` Python package. The
  Lua filter ``crossref.lua`` numbers figures/tables and resolves ``@fig-``/``@tbl-``.

Only features both paths handle are used in the ``.qmd`` files: include and var
shortcodes, ``{#fig-...}``/``{#tbl-...}`` ids, ``@`` references, callout divs, math. Two
patterns that the two paths read differently are refused (:func:`quarto_incompatibilities`,
also run by ``make lint`` as ``python -m klvae.report.render --check report``): a shortcode
inside TeX math (Quarto leaves it unexpanded) and ``{{{<`` (Quarto's escape for a literal
shortcode).

Besides the run's generated fragments, :func:`render` writes its own, about the render itself
(:func:`render_notes`): ``_generated/render_banner.md`` (title page; empty unless the report is
rendered from a results bundle, :mod:`klvae.bundle`), ``_generated/render_methods.md`` (methods
chapter: the render machine, and the bundle when there is one) and ``_generated/render_table.md``
(the bundle and the render machine, a table's body; empty without a bundle), and the ``render``
variables. The sentences are in ``report/_render_*.qmd``, which those fragments include: they are
generated includes, and :mod:`klvae.report.includes` decides which file each includes.

Variables are inserted as they are (Quarto inserts a variable's value as Markdown): the rules that
write them escaped every string from data once (:mod:`klvae.report.escape`), and
:func:`render_notes` does the same for the bundle's manifest and the render machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from klvae.record import render_record
from klvae.report import includes
from klvae.report.escape import Markdown, md_code, md_text, md_values
from klvae.report.tables import markdown_table

CROSSREF_FILTER = Path(__file__).with_name("crossref.lua")
#: The fragments :func:`render` writes about the render itself (names inside the project).
RENDER_BANNER = "_generated/render_banner.md"
RENDER_METHODS = "_generated/render_methods.md"
RENDER_TABLE = "_generated/render_table.md"
#: The experiments' chapters, one include each, in the registry's order (``index.qmd`` includes it;
#: :data:`klvae.report.includes.CHAPTERS`).
RENDER_CHAPTERS = f"_generated/{includes.CHAPTERS}"
INCLUDE_RE = re.compile(r"\{\{<\s*include\s+(\S+)\s*>\}\}")
VAR_RE = re.compile(r"\{\{<\s*var\s+([\w.\-]+)\s*>\}\}")
SHORTCODE_OPEN = "{{<"
ESCAPED_SHORTCODE = "{{{<"
_FENCE_RE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")


class ReportError(RuntimeError):
    """The report could not be assembled or rendered (message says which file or key)."""


def merge_variables(paths: list[str]) -> dict:
    """Merge the chapters' YAML variable files into one mapping for ``_variables.yml``.

    Raises:
        ReportError: two files define the same top-level key.
    """
    merged: dict = {}
    for path in paths:
        values = yaml.safe_load(Path(path).read_text()) or {}
        clash = set(values) & set(merged)
        if clash:
            raise ReportError(f"{path}: variables {sorted(clash)} are already defined by another chapter")
        merged.update(values)
    return merged


def assemble(sources: str | Path, build: str | Path, generated: dict[str, str], figures: list[str],
             figures_root: str | Path, variables: list[str] = (), extra_variables: dict | None = None) -> Path:
    """Lay out a renderable Quarto project in ``build``.

    Copies ``sources`` (the ``report/`` folder), the generated files (``{name in build:
    path}``, e.g. ``{"_generated/e1_losses.md": ...}``), the figures (kept at their path relative to
    ``figures_root``, under ``build/figures/``) and writes ``_variables.yml`` merged from
    ``variables`` and ``extra_variables`` (for Quarto's ``{{< var >}}``).

    Returns:
        ``build`` as a Path. The folder is recreated from scratch.

    Raises:
        ReportError: two sources define the same top-level variable.
    """
    build = Path(build)
    if build.exists():
        shutil.rmtree(build)
    shutil.copytree(sources, build)
    for name, src in generated.items():
        dst = build / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    for fig in figures:
        rel = Path(fig).resolve().relative_to(Path(figures_root).resolve())
        dst = build / "figures" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fig, dst)
    merged = merge_variables(list(variables))
    clash = set(merged) & set(extra_variables or {})
    if clash:
        raise ReportError(f"variables {sorted(clash)} are defined by a chapter and by the render itself")
    (build / "_variables.yml").write_text(yaml.safe_dump({**merged, **(extra_variables or {})}, sort_keys=False,
                                                         allow_unicode=True))
    return build


def _lookup(variables: dict, key: str, where: str):
    node = variables
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ReportError(f"{where}: {{{{< var {key} >}}}} is not defined in _variables.yml")
        node = node[part]
    return node


def _fenced_code(text: str) -> list[bool]:
    """Per character of ``text``: whether it lies in a fenced code block (```` ``` ```` or ``~~~``;
    as in pandoc, a fence opens only after a blank line, not inside a paragraph)."""
    mask = [False] * len(text)
    pos, fence, after_blank = 0, None, True
    for line in text.splitlines(keepends=True):
        m = _FENCE_RE.match(line)
        inside = fence is not None
        if fence is None and m and after_blank:
            fence, inside = m.group(1), True
        elif fence is not None and m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                and not line[m.end():].strip():
            fence = None
        if inside:
            mask[pos:pos + len(line)] = [True] * len(line)
        pos += len(line)
        after_blank = not line.strip() or inside
    return mask


def _inline_math_end(text: str, start: int) -> int | None:
    """End (index after the closing ``$``) of pandoc inline math opened by the ``$`` at
    ``start``, or ``None`` where that ``$`` is plain text: pandoc's rule (extension
    ``tex_math_dollars``) -- no space after the opening ``$``, none before the closing one, no
    digit right after it, no blank line inside, ``\\$`` does not close."""
    i, n = start + 1, len(text)
    if i >= n or text[i].isspace():
        return None
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "$" and i > start + 1:
            return None if i + 1 < n and text[i + 1].isdigit() else i + 1
        if c.isspace():
            j = i
            while j < n and text[j].isspace():
                j += 1
            if j < n and text[j] == "$" or text[i:j].count("\n") > 1:
                return None
            i = j
            continue
        i += 1
    return None


def math_spans(text: str) -> list[tuple[int, int]]:
    """Where pandoc reads TeX math in markdown ``text``: ``(start, end)`` character offsets of
    each ``$$...$$`` (display, no blank line inside) and ``$...$`` (inline, see
    :func:`_inline_math_end`) span, delimiters included. Read left to right as pandoc does:
    fenced code blocks, inline code spans that open before a ``$``, and ``\\$`` hold no math."""
    fenced = _fenced_code(text)
    spans, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if fenced[i]:
            i += 1
        elif c == "\\":
            i += 2
        elif c == "`":
            ticks = re.match(r"`+", text[i:]).group(0)
            close = re.compile(r"(?<!`)" + ticks + r"(?!`)").search(text, i + len(ticks))
            i = close.end() if close and not re.search(r"\n[ \t]*\n", text[i:close.start()]) else i + len(ticks)
        elif text.startswith("$$", i):
            close = text.find("$$", i + 2)
            if close > i + 2 and not re.search(r"\n[ \t]*\n", text[i + 2:close]):
                spans.append((i, close + 2))
                i = close + 2
            else:
                i += 2
        elif c == "$" and (end := _inline_math_end(text, i)) is not None:
            spans.append((i, end))
            i = end
        else:
            i += 1
    return spans


def quarto_incompatibilities(text: str, path: str | Path) -> list[str]:
    """The places in one ``.qmd``/``.md`` file that real Quarto renders differently from the
    pandoc path, each as ``"<path>:<line>: <what to write instead>"`` (line 1-based), in order.

    * a shortcode (``{{<``) inside TeX math (``$...$``, ``$$...$$``): Quarto does not expand
      shortcodes in math ("Could not convert TeX math"), the raw markup shows in its output;
    * ``{{{<`` (anywhere, code included): Quarto's escape for a *literal* shortcode, shown as
      text there but expanded here.

    Args:
        text: the file's text (before shortcodes are expanded).
        path: the file name used in the messages.

    Returns:
        An empty list when the file is clean.
    """
    def line(offset: int) -> int:
        return text.count("\n", 0, offset) + 1

    found: list[tuple[int, str]] = []
    for start, end in math_spans(text):
        at = text.find(SHORTCODE_OPEN, start, end)
        if at >= 0:
            found.append((at, f"{path}:{line(at)}: a shortcode inside TeX math ({text[start:end][:60]!r}) is not "
                              "expanded by Quarto; put the shortcode outside the math, e.g. "
                              "$[-a, a]^2$ -> [−{{< var x >}}, {{< var x >}}]² in plain text, or split the math "
                              "around it"))
    for m in re.finditer(re.escape(ESCAPED_SHORTCODE), text):
        found.append((m.start(), f"{path}:{line(m.start())}: '{{{{{{<' is Quarto's escape for a literal shortcode "
                                 "(shown as text, not expanded); for braces around a shortcode write them as HTML "
                                 "entities (&#123;{{< var x >}}&#125;), with a space ({ {{< var x >}} }) or in words"))
    return [msg for _, msg in sorted(found)]


def expand_shortcodes(path: Path, variables: dict, depth: int = 0, root: Path | None = None) -> str:
    """Text of ``path`` with ``{{< include f >}}`` (recursive) and ``{{< var a.b >}}`` replaced, as
    Quarto does: an include's path is relative to the main document's folder ``root`` (default:
    ``path``'s), also inside an included file, and a leading ``/`` means that folder too (Quarto:
    "relative references inside the included file resolve based on the directory of the main file").

    Raises:
        ReportError: a missing include file, an undefined variable, includes nested > 10 deep, or
            a pattern real Quarto renders differently (:func:`quarto_incompatibilities`: a
            shortcode in TeX math, a ``{{{<`` escape), naming file, line and what to write instead.
    """
    if depth > 10:
        raise ReportError(f"{path}: includes nested more than 10 deep")
    text = path.read_text()
    problems = quarto_incompatibilities(text, path)
    if problems:
        raise ReportError("\n".join(problems))

    root = Path(root) if root is not None else path.parent

    def include(m):
        target = root / m.group(1).lstrip("/")
        if not target.is_file():
            raise ReportError(f"{path}: included file {m.group(1)} not found (looked at {target})")
        body = expand_shortcodes(target, variables, depth + 1, root)
        return re.sub(r"\A---\n.*?\n---\n", "", body, flags=re.S)  # front matter of includes is dropped

    text = INCLUDE_RE.sub(include, text)
    return VAR_RE.sub(lambda m: str(_lookup(variables, m.group(1), str(path))), text)


def _pandoc() -> str:
    import pypandoc
    return pypandoc.get_pandoc_path()


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.stderr.strip():
        print(proc.stderr.strip(), flush=True)
    if proc.returncode != 0:
        raise ReportError(f"`{' '.join(cmd)}` failed with exit code {proc.returncode}:\n{proc.stderr.strip()[-2000:]}")


def render_pandoc(build: Path, html: Path, pdf: Path, index: str = "index.qmd") -> None:
    """The pandoc path: expand shortcodes, then pandoc -> HTML and pandoc -> Typst -> PDF."""
    import typst

    variables = yaml.safe_load((build / "_variables.yml").read_text()) if (build / "_variables.yml").exists() else {}
    md = build / "_klvae.md"
    md.write_text(expand_shortcodes(build / index, variables))
    common = [_pandoc(), md.name, "--from", "markdown", "--standalone", "--lua-filter", str(CROSSREF_FILTER),
              "--toc", "--number-sections", "--resource-path", "."]
    if (build / "references.bib").exists():
        common += ["--citeproc", "--bibliography", "references.bib"]
    css, after = build / "style.css", build / "html-after-body.html"  # reading comforts (Quarto has its own)
    _run(common + ["--to", "html5", "--embed-resources", "--mathml", "--section-divs",
                   *(["--css", css.name] if css.exists() else []),
                   *(["--include-after-body", after.name] if after.exists() else []), "--output", "_klvae.html"],
         build)
    header = ["--include-in-header", "typst-header.typ"] if (build / "typst-header.typ").exists() else []
    _run(common + ["--to", "typst", *header, "--output", "_klvae.typ"], build)
    try:
        typst.compile(str(build / "_klvae.typ"), output=str(build / "_klvae.pdf"), root=str(build))
    except Exception as err:  # typst raises its own error type with the compiler's message
        raise ReportError(f"typst could not compile {build / '_klvae.typ'}: {err}") from err
    for src, dst in ((build / "_klvae.html", html), (build / "_klvae.pdf", pdf)):
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)


def render_quarto(build: Path, html: Path, pdf: Path, index: str = "index.qmd") -> None:
    """The Quarto path: ``quarto render`` to HTML and to Typst-PDF (formats from ``_quarto.yml``)."""
    for fmt, dst in (("html", html), ("typst", pdf)):
        _run(["quarto", "render", index, "--to", fmt, "--output-dir", "_out"], build)
        produced = sorted((build / "_out").glob("*.html" if fmt == "html" else "*.pdf"))
        if not produced:
            raise ReportError(f"quarto render --to {fmt} produced no output in {build / '_out'}")
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(produced[0], dst)


RENDERERS = {"pandoc": render_pandoc, "quarto": render_quarto}


def render_notes(record: dict, bundle: dict | None = None) -> tuple[dict[str, str], dict]:
    """The fragments and variables about this render (the prose is in ``report/_render_*.qmd``).

    Args:
        record: :func:`klvae.record.render_record` of the rendering machine.
        bundle: ``None`` for a report rendered by the run itself; else the verified bundle's
            ``name`` (file name), ``manifest_sha256``, ``archive_sha256``, ``members`` (count)
            and ``created_utc``/``created_host`` (when and where it was packed).

    Returns:
        ``(fragments, variables)``: ``{`` :data:`RENDER_BANNER`: an include of
        ``report/_render_bundle_banner.qmd`` (empty without a bundle), :data:`RENDER_METHODS`: an
        include of ``report/_render_run.qmd`` or ``report/_render_bundle.qmd`` (both generated
        includes, :mod:`klvae.report.includes`), :data:`RENDER_TABLE`: the body of the table of the
        bundle and the render machine (empty without a bundle) ``}``, and ``{"render": ...}``:
        ``host``, ``cpu``, ``logical_cpus``, ``os`` and ``when`` (``YYYY-MM-DD HH:MM:SS UTC``) of
        the render, and with a bundle its ``bundle`` (file name) and ``manifest_sha256``; host,
        file name and hash as code spans, every string escaped (:func:`~klvae.report.escape.md_values`).
    """
    when = record["rendered_utc"].replace("T", " ").replace("Z", " UTC")
    values = {"host": md_code(record["host"]), "cpu": record["CPU"], "logical_cpus": record["logical CPUs"],
              "os": record["OS"], "when": when}
    chosen = {name: includes.fragment(name.removeprefix("_generated/"), bundle=bundle is not None)
              for name in (RENDER_BANNER, RENDER_METHODS)}
    if bundle is None:
        return {**chosen, RENDER_TABLE: ""}, {"render": md_values(values)}
    rows = [["bundle file", md_code(bundle["name"])], ["bundle SHA-256", md_code(bundle["archive_sha256"])],
            ["manifest SHA-256", md_code(bundle["manifest_sha256"])],
            ["members (verified by SHA-256)", str(bundle["members"])],
            ["packed", Markdown(f"{md_text(bundle.get('created_utc', '?'))} on host "
                                f"{md_code(bundle.get('created_host', '?'))}")],
            ["rendered", when], ["render host", md_code(record["host"])], ["render CPU", record["CPU"]],
            ["render logical CPUs / memory", f"{record['logical CPUs']} / {record['memory']}"],
            ["render OS / Python", f"{record['OS']} / {record['python']}"],
            [Markdown("commit of the `report/` sources"), md_code(record["git_commit"])]]
    values.update(bundle=md_code(bundle["name"]), manifest_sha256=md_code(bundle["manifest_sha256"]))
    return {**chosen, RENDER_TABLE: markdown_table(["render", "value"], rows, align="ll")}, \
        {"render": md_values(values)}


def render(html: str, pdf: str, sources: str, build: str, generated: dict[str, str], figures: list[str],
           figures_root: str, variables: list[str] = (), renderer: str = "auto", bundle: dict | None = None) -> str:
    """Assemble the project in ``build`` and render ``html`` (self-contained) and ``pdf``.

    Args:
        html, pdf: output paths.
        sources: the ``report/`` folder (``_quarto.yml``, ``index.qmd``, chapters).
        build: scratch folder for the assembled project (recreated).
        generated: generated files by their name inside the project.
        figures: PNGs to copy, found in the project under ``figures/<path relative to figures_root>``.
        variables: YAML files merged into the project's ``_variables.yml``.
        renderer: ``auto`` (quarto if the command exists, else pandoc), ``quarto`` or ``pandoc``.
        bundle: the verified results bundle the files come from (see :func:`render_notes`), or
            ``None`` when the report is rendered by the run itself.

    Returns:
        The renderer used.

    Raises:
        ReportError: rendering failed (with the tool's message), or ``quarto`` was asked for
            but is not installed.
    """
    if renderer == "auto":
        renderer = "quarto" if shutil.which("quarto") else "pandoc"
    if renderer == "quarto" and not shutil.which("quarto"):
        raise ReportError("report.renderer is 'quarto' but the quarto command is not on PATH; "
                          "install Quarto or set report.renderer: pandoc")
    notes, render_values = render_notes(render_record(Path(sources).resolve().parent), bundle)
    project = assemble(sources, build, generated, figures, figures_root, variables, render_values)
    # the experiments' chapters (_e1.qmd, ...), in the experiment registry's order: index.qmd includes them
    for name, text in (*notes.items(), (RENDER_CHAPTERS, includes.fragment(includes.CHAPTERS))):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    print(f"[report] rendering {project} with {renderer}", flush=True)
    RENDERERS[renderer](project, Path(html), Path(pdf))
    print(f"[report] wrote {html} and {pdf}", flush=True)
    return renderer


def check_sources(folder: str | Path) -> list[str]:
    """:func:`quarto_incompatibilities` of every ``*.qmd`` file in ``folder`` (not recursive; the
    report's chapters), sorted by file name."""
    return [problem for qmd in sorted(Path(folder).glob("*.qmd"))
            for problem in quarto_incompatibilities(qmd.read_text(), qmd)]


def main(argv: list[str] | None = None) -> int:
    """``python -m klvae.report.render --check report``: print each pattern of the report's
    ``.qmd`` sources that real Quarto renders differently (``file:line: message``).

    Returns:
        The exit status: 0 when every file is clean, 1 otherwise (2 for a missing folder).
    """
    parser = argparse.ArgumentParser(prog="python -m klvae.report.render", description=main.__doc__.split("\n")[0])
    parser.add_argument("--check", metavar="FOLDER", required=True,
                        help="check FOLDER/*.qmd for a shortcode in TeX math and for '{{{<'")
    args = parser.parse_args(argv)
    if not Path(args.check).is_dir():
        print(f"{args.check}: not a folder", file=sys.stderr)
        return 2
    problems = check_sources(args.check)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
