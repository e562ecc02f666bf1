"""Which rule and function made each figure and table: the report's "made by" captions.

The run record (versions, hardware, commit, host, rule times) is :mod:`klvae.record`.
This module imports no deep-learning framework.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

from klvae.record import head_commit
from klvae.report.escape import md_url


def function_line(src_dir: str | Path, func: str) -> int | None:
    """The line of ``def <name>(`` for ``func`` (``klvae.figures.e1:scatter_panel``) in the source
    tree ``src_dir`` (read with :mod:`ast`, not imported), or None if the file or function is not there."""
    module, _, name = func.partition(":")
    path = Path(src_dir) / f"{module.replace('.', '/')}.py"
    if not path.is_file():
        path = Path(src_dir) / module.replace(".", "/") / "__init__.py"
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return None
    return next((n.lineno for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and n.name == name), None)


def source_link(func: str, source_root: str = "../../../src", repository: str | None = None,
                commit: str | None = None, line: int | None = None) -> str:
    """Where a caption links ``func``: ``<repository>/blob/<commit>/src/<module path>.py#L<line>``
    when a repository and a commit are given, else ``<source_root>/<module path>.py`` (relative to
    the rendered report)."""
    rel = func.split(":")[0].replace(".", "/") + ".py"
    if repository and commit:
        return f"{repository.rstrip('/')}/blob/{commit}/src/{rel}" + (f"#L{line}" if line else "")
    return f"{source_root}/{rel}"


def made_by_caption(rule: str, func: str, outputs: list[str], source_root: str = "../../../src",
                    link: str | None = None) -> str:
    """The provenance sentence of a figure's or table's caption (markdown).

    ``Made by rule `e1_scatter_panel` with [`klvae.figures.e1:scatter_panel`](../../../src/klvae/figures/e1.py)
    (`results/default/figures/e1/scatter_panel.png`).`` -- the function links to ``link``
    (:func:`source_link`; default its source file relative to the rendered report, under
    ``source_root``); in the PDF the function's name says where it is. Wildcards in an output
    (``{c}``) are shown as ``<c>``. The link is percent-encoded (:func:`klvae.report.escape.md_url`):
    a repository from a bundle's config cannot end it early.
    """
    shown = ", ".join("`" + re.sub(r"\{([a-z_]+)[^}]*\}", r"<\1>", o) + "`" for o in outputs)
    return f"Made by rule `{rule}` with [`{func}`]({md_url(link or source_link(func, source_root))}) ({shown})."


def write_made_by(variables: str, rules: dict, report_dir: str = "results/default/report",
                  repository: str | None = None, src_dir: str | Path | None = None) -> dict:
    """Rule ``report_made_by``: ``made_by.<rule>`` (the caption sentence of
    :func:`made_by_caption`) and ``made_by_outputs.<rule>`` (the rule's output paths) for every
    rule that calls the library, as report variables (``{{< var made_by.e1_scatter_panel >}}``).

    Args:
        variables: output YAML.
        rules: ``{rule: {"func": "klvae.module:function", "outputs": [paths]}}`` read from the
            workflow's DAG (``workflow/rules/report.smk``).
        report_dir: the folder of the rendered HTML (relative to the working directory): local
            links are relative to it, so they resolve from wherever the report was rendered.
        repository: config ``report.repository``: links go to the function's line in that
            repository at this checkout's commit (:func:`source_link`); None: local links.
        src_dir: the source tree the functions are looked up in (default: the one ``klvae`` is
            imported from).

    Raises:
        ValueError: with a repository, a function that is not in ``src_dir`` (the link would be dead).
    """
    import yaml

    import klvae

    src = Path(src_dir) if src_dir else Path(klvae.__file__).resolve().parent.parent
    source_root = os.path.relpath(src, Path(report_dir).resolve())
    commit = head_commit(src.parent) if repository else None
    if repository and commit is None:
        raise ValueError(f"report.repository is set but {src.parent} is not a git checkout: no commit to link to")
    captions = {}
    for r, v in sorted(rules.items()):
        line = function_line(src, v["func"])
        if repository and line is None:
            raise ValueError(f"rule {r}: {v['func']} not found under {src}; a link to it would be dead")
        link = source_link(v["func"], source_root, repository, commit, line)
        captions[r] = made_by_caption(r, v["func"], v["outputs"], link=link)
    values = {"made_by": captions, "made_by_outputs": {r: list(v["outputs"]) for r, v in sorted(rules.items())}}
    Path(variables).parent.mkdir(parents=True, exist_ok=True)
    Path(variables).write_text(yaml.safe_dump(values, sort_keys=False, allow_unicode=True))
    return values

