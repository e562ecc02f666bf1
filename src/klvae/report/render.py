"""Render the Quarto project in ``report/`` to one self-contained HTML file and one PDF.

Two paths, same sources:

* ``quarto`` -- where the ``quarto`` command exists: ``quarto render`` of the assembled
  project (HTML with embedded resources, PDF through Quarto's Typst format).
* ``pandoc`` -- everywhere else (Quarto cannot be installed on our machines): the include
  and var shortcodes are expanded here, pandoc (from ``pypandoc-binary``) writes the
  self-contained HTML, and pandoc -> Typst -> PDF with the ``typst`` Python package. The
  Lua filter ``crossref.lua`` numbers figures/tables and resolves ``@fig-``/``@tbl-``.

Only features both paths handle are used in the ``.qmd`` files: include and var
shortcodes, ``{#fig-...}``/``{#tbl-...}`` ids, ``@`` references, callout divs, math.

Besides the run's generated fragments, :func:`render` writes two of its own, about the render
itself: ``_generated/render_banner.md`` (title page; empty unless the report is rendered from a
results bundle, :mod:`klvae.bundle`) and ``_generated/render_methods.md`` (methods chapter: the
render machine, and the bundle's file name and manifest hash when there is one).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from klvae.report.provenance import render_record
from klvae.report.tables import markdown_table

CROSSREF_FILTER = Path(__file__).with_name("crossref.lua")
#: The fragments :func:`render` writes about the render itself (names inside the project).
RENDER_BANNER = "_generated/render_banner.md"
RENDER_METHODS = "_generated/render_methods.md"
INCLUDE_RE = re.compile(r"\{\{<\s*include\s+(\S+)\s*>\}\}")
VAR_RE = re.compile(r"\{\{<\s*var\s+([\w.\-]+)\s*>\}\}")


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
             figures_root: str | Path, variables: list[str] = ()) -> Path:
    """Lay out a renderable Quarto project in ``build``.

    Copies ``sources`` (the ``report/`` folder), the generated files (``{name in build:
    path}``, e.g. ``{"_generated/e1.md": ...}``), the figures (kept at their path relative to
    ``figures_root``, under ``build/figures/``) and writes ``_variables.yml`` merged from
    ``variables`` (for Quarto's ``{{< var >}}``).

    Returns:
        ``build`` as a Path. The folder is recreated from scratch.
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
    (build / "_variables.yml").write_text(yaml.safe_dump(merge_variables(list(variables)), sort_keys=False,
                                                         allow_unicode=True))
    return build


def _lookup(variables: dict, key: str, where: str):
    node = variables
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ReportError(f"{where}: {{{{< var {key} >}}}} is not defined in _variables.yml")
        node = node[part]
    return node


def expand_shortcodes(path: Path, variables: dict, depth: int = 0) -> str:
    """Text of ``path`` with ``{{< include f >}}`` (recursive, relative to the including file)
    and ``{{< var a.b >}}`` replaced, as Quarto does.

    Raises:
        ReportError: a missing include file, an undefined variable, or includes nested > 10 deep.
    """
    if depth > 10:
        raise ReportError(f"{path}: includes nested more than 10 deep")
    text = path.read_text()

    def include(m):
        target = path.parent / m.group(1)
        if not target.is_file():
            raise ReportError(f"{path}: included file {m.group(1)} not found (looked at {target})")
        body = expand_shortcodes(target, variables, depth + 1)
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


def render_notes(record: dict, bundle: dict | None = None) -> tuple[str, str]:
    """The title-page banner and the methods paragraph about this render.

    Args:
        record: :func:`klvae.report.provenance.render_record` of the rendering machine.
        bundle: ``None`` for a report rendered by the run itself; else the verified bundle's
            ``name`` (file name), ``manifest_sha256``, ``archive_sha256``, ``members`` (count)
            and ``created_utc``/``created_host`` (when and where it was packed).

    Returns:
        ``(banner_md, methods_md)``; ``banner_md`` is empty without a bundle.
    """
    when = record["rendered_utc"].replace("T", " ").replace("Z", " UTC")
    machine = f"host `{record['host']}` ({record['CPU']}, {record['logical CPUs']} logical CPUs, {record['OS']})"
    if bundle is None:
        return "", (f"This report was rendered by rule `report_render` right after the run, on {machine}, "
                    f"{when}.\n")
    banner = ("::: {.callout-note}\n**Rendered from a results bundle.** This report was rendered on "
              f"{machine}, {when}, from the bundle `{bundle['name']}` (manifest SHA-256 "
              f"`{bundle['manifest_sha256']}`), with no training and no recomputation: every number and figure "
              "comes from the bundle, whose members were all verified against its manifest before use. Where "
              "and how the numbers were made is said above.\n:::\n")
    rows = [["bundle file", f"`{bundle['name']}`"], ["bundle SHA-256", f"`{bundle['archive_sha256']}`"],
            ["manifest SHA-256", f"`{bundle['manifest_sha256']}`"],
            ["members (verified by SHA-256)", str(bundle["members"])],
            ["packed", f"{bundle.get('created_utc', '?')} on host `{bundle.get('created_host', '?')}`"],
            ["rendered", when], ["render host", f"`{record['host']}`"], ["render CPU", record["CPU"]],
            ["render logical CPUs / memory", f"{record['logical CPUs']} / {record['memory']}"],
            ["render OS / Python", f"{record['OS']} / {record['python']}"],
            ["commit of the `report/` sources", f"`{record['git_commit']}`"]]
    methods = ("This report was **rendered from a results bundle** (`make report BUNDLE=...`, `klvae.bundle`) on "
               "another machine or at another time than the run: the tables, figures and generated text are the "
               "run's, byte for byte (@tbl-render).\n\n"
               + markdown_table(["render", "value"], rows,
                                "The bundle this report was rendered from and the machine that rendered it.",
                                "tbl-render", align="ll"))
    return banner, methods


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
    project = assemble(sources, build, generated, figures, figures_root, variables)
    banner, methods = render_notes(render_record(Path(sources).resolve().parent), bundle)
    for name, text in ((RENDER_BANNER, banner), (RENDER_METHODS, methods)):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    print(f"[report] rendering {project} with {renderer}", flush=True)
    RENDERERS[renderer](project, Path(html), Path(pdf))
    print(f"[report] wrote {html} and {pdf}", flush=True)
    return renderer
