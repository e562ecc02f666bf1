"""Which prose files of ``report/`` appear in the report, and when: the one place that decides.

Every sentence of the report is in ``report/*.qmd``. Where the data decide which sentences a
reader sees -- the quick profile's warning, the stand-in faces' warning, the backend study's
results or the paragraph on how to run it, the comparison with a shipped run or the note that
there is none -- a report rule writes a *generated include*: a fragment in ``_generated/`` that
holds nothing but ``{{< include /_<name>.qmd >}}`` lines, one for each prose file whose condition
holds, in the order listed. :data:`INCLUDES` is the table of all of them,
``{fragment: ((condition, qmd), ...)}``, and every writer asks :func:`fragment` for its text, so
the choice is made here and nowhere else (``python -m klvae.report.includes`` prints the table;
``report/index.qmd`` names this module at its top).

The table is :data:`SHARED` (the sections every report has), :data:`CHAPTERS` (the experiments'
chapters, always, in the experiment registry's order) and each registered experiment's own
(:attr:`klvae.registry.Experiment.includes`, in ``src/klvae/registry/<id>.py``: an experiment's
names are kept in its own files).

A condition is ``always`` or ``<fact>=<value>`` (``|`` between several values: any of them) on
the *facts* the writer passes to :func:`fragment`: plain values from the data (a profile name, a
source kind; ``True``/``False`` are written ``yes``/``no``). A fact is data, never a sentence; the
prose files say everything, with numbers through ``{{< var >}}``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from klvae import registry

#: The condition that always holds.
ALWAYS = "always"
#: The generated include of the experiments' chapters (written by :func:`klvae.report.render.render`).
CHAPTERS = "experiments.qmd"

#: The shared sections' generated includes: ``{fragment in _generated/: ((condition, qmd in report/), ...)}``.
SHARED: dict[str, tuple[tuple[str, str], ...]] = {
    # the title page (rule report_methods): where the numbers come from; the quick profile's warning
    "banner.md": (("parts=no", "_banner_run.qmd"), ("parts=yes", "_banner_parts.qmd"),
                  ("profile=quick", "_banner_quick.qmd")),
    # the title page and the methods chapter (klvae.report.render): rendered by the run or from a bundle
    "render_banner.md": (("bundle=yes", "_render_bundle_banner.qmd"),),
    "render_methods.md": (("bundle=no", "_render_run.qmd"), ("bundle=yes", "_render_bundle.qmd")),
    # "Does the framework matter?" (rule report_study): the source of its numbers and its results, or how to run it
    "backend_study.md": (("source=bundle", "_backend_study_source_bundle.qmd"),
                         ("source=results", "_backend_study_source_results.qmd"),
                         ("source=bundle|results", "_backend_study_results.qmd"),
                         ("source=none", "_backend_study_notrun.qmd")),
    # the methods chapter (rule report_methods): the parts a run made in parts was made in
    "methods_parts.md": (("parts=yes", "_methods_parts.qmd"),),
    # "This run against a shipped run" (rule report_compare)
    "compare.md": (("reference=yes", "_compare_results.qmd"), ("parts=yes", "_compare_parts.qmd"),
                   ("reference=no", "_compare_none.qmd"), ("reference=self", "_compare_self.qmd")),
    # the scorecard's column of the shipped run's verdicts (rule report_scorecard), only where there is one
    "scorecard_shipped.md": (("reference=yes", "_scorecard_shipped.qmd"),
                             ("not_held=yes", "_scorecard_shipped_not_held.qmd")),
}


def _all_includes() -> dict[str, tuple[tuple[str, str], ...]]:
    table = {**SHARED, CHAPTERS: tuple((ALWAYS, e.chapter) for e in registry.EXPERIMENTS)}
    for e in registry.EXPERIMENTS:
        for name, choices in e.includes.items():
            if name in table:
                raise ValueError(f"generated include {name!r} of {e.id} is already in the table")
            table[name] = tuple(tuple(c) for c in choices)
    for choices in table.values():
        for condition, _ in choices:
            parse(condition)  # a malformed condition fails here, when the module is imported
    return table


def parse(condition: str) -> tuple[str, frozenset[str]] | None:
    """``"source=bundle|results"`` -> ``("source", {"bundle", "results"})``; :data:`ALWAYS` -> None.

    Raises:
        ValueError: not ``always`` and not ``<fact>=<value>[|<value>...]``.
    """
    if condition == ALWAYS:
        return None
    fact, sep, values = condition.partition("=")
    options = frozenset(v.strip() for v in values.split("|"))
    if not sep or not fact.strip().isidentifier() or "" in options:
        raise ValueError(f"condition {condition!r}: write 'always' or '<fact>=<value>[|<value>...]'")
    return fact.strip(), options


#: Every generated include: ``{fragment in _generated/: ((condition, qmd in report/), ...)}``.
INCLUDES: dict[str, tuple[tuple[str, str], ...]] = _all_includes()


def facts_of(name: str) -> set[str]:
    """The facts the conditions of generated include ``name`` read."""
    return {p[0] for condition, _ in INCLUDES[name] if (p := parse(condition)) is not None}


def _value(value) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def chosen(name: str, **facts) -> list[str]:
    """The prose files (``report/``) generated include ``name`` includes for these ``facts``, in order.

    Raises:
        KeyError: ``name`` is not in :data:`INCLUDES`.
        ValueError: a fact its conditions read is missing, or one they do not read is given.
    """
    if name not in INCLUDES:
        raise KeyError(f"no generated include {name!r} in klvae.report.includes.INCLUDES "
                       f"({', '.join(sorted(INCLUDES))})")
    needed = facts_of(name)
    if set(facts) != needed:
        raise ValueError(f"generated include {name!r} decides on the facts {sorted(needed)}, "
                         f"got {sorted(facts)}")
    out = []
    for condition, qmd in INCLUDES[name]:
        p = parse(condition)
        if p is None or _value(facts[p[0]]) in p[1]:
            out.append(qmd)
    return out


def fragment(name: str, **facts) -> str:
    """The text of generated include ``name``: an include line of each prose file whose condition
    holds (:func:`chosen`), a blank line between them; empty when none does. The paths start with
    ``/``: the project's root, from which Quarto resolves an include inside ``_generated/``."""
    return "\n".join(f"{{{{< include /{qmd} >}}}}\n" for qmd in chosen(name, **facts))


def table(includes: Mapping[str, tuple[tuple[str, str], ...]] | None = None) -> str:
    """:data:`INCLUDES` as text, one line per prose file: fragment, condition, file."""
    includes = INCLUDES if includes is None else includes
    rows = [(f"_generated/{name}", condition, f"report/{qmd}")
            for name, choices in includes.items() for condition, qmd in choices]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table())
