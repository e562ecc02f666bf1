"""The shipped run's verdicts under today's rules: the scorecard's "paper run" column.

The report sets a shipped results bundle beside this run (config ``report.compare_with``,
:func:`klvae.report.compare.choose_reference`: by default the newest paper-profile bundle under
``bundles/``). Its verdicts are not read from a scorecard inside the bundle: the bundle is
verified, the data members that the experiments' scorecard rules read are extracted to
``results/<profile>/shipped/data/`` (rule ``report_shipped_extract``), and each experiment the
bundle holds (its manifest's ``experiments``) gets its own scorecard function run again on them
(rules ``report_shipped_scorecard_<experiment>``, written to ``results/<profile>/shipped/``),
with the shipped run's profile and Keras backend and this run's tolerances (the config's
``scorecard`` section). Rule ``report_scorecard`` then puts those verdicts beside ours
(:func:`klvae.report.scorecard.shipped_columns`, :func:`klvae.report.scorecard.shipped_cell`).

Used by ``workflow/rules/report.smk`` when the workflow is parsed (:func:`reference_facts`,
:func:`shipped_inputs`, :func:`needed_members`). Never imports Keras.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path

from klvae import registry

#: Where the shipped run's extracted data and scorecard parts go, under the results folder.
SHIPPED_FOLDER = "shipped"


def reference_facts(archive: str | Path | None) -> dict | None:
    """What the report needs to know of the shipped bundle when the workflow is parsed, read from
    its verified manifest (:func:`klvae.bundle.core.read_bundle`); None without a bundle.

    Returns:
        ``{"archive", "name" (file name), "manifest_sha256", "profile", "backend" (its Keras
        backend; several joined by ", "), "experiments" (the manifest's experiment ids that the
        registry knows, in the registry's order; for a manifest without that list, those whose
        outputs it holds, :func:`klvae.bundle.core.experiments_in`), "members" (every member's path)}``.

    Raises:
        klvae.bundle.BundleError: the bundle is refused (the message names the member).
    """
    from klvae.bundle import core as kb

    if not archive:
        return None
    manifest, contents, info = kb.read_bundle(archive)
    backend = info.get("keras_backend")
    backend = ", ".join(map(str, backend)) if isinstance(backend, (list, tuple)) else str(backend or "")
    # a bundle made before manifests listed them: the experiments its members hold
    listed = manifest["experiments"] if "experiments" in manifest else kb.experiments_in(contents)
    held = {str(e) for e in listed} if isinstance(listed, (list, tuple)) else set()
    return {"archive": str(archive), "name": info["name"], "manifest_sha256": info["manifest_sha256"],
            "profile": str(info.get("profile") or ""), "backend": backend,
            "experiments": [e for e in registry.ids() if e in held], "members": sorted(contents)}


def _function(func_spec: str):
    module, _, name = func_spec.partition(":")
    return getattr(importlib.import_module(module), name)


def same_kind(paths: Sequence[str], members: Sequence[str]) -> list[str]:
    """The members of the same kind as a list input's files (names relative to the results folder):
    the shipped run's own runs of a setting, which its config may have made more or fewer of.

    The files are grouped by depth; in a group, a path component that is the same in every file
    stays as it is, one that varies matches what it varies over -- a numbered name (``z2``,
    ``z12``: ``z`` and any number) or else one of the values seen (the strategies). A group of one
    file matches that file only. ``e2/z2/end_layer/metrics.json``, ``e2/z12/end_layer/metrics.json``
    and ``e2/post_log/z12/model_add_loss/metrics.json`` give every ``e2/z<n>/end_layer/metrics.json``
    and that one post-log file, where the bundle holds them.

    Returns:
        The matching members, sorted.
    """
    import re

    groups: dict[int, list[list[str]]] = {}
    for p in paths:
        groups.setdefault(len(p.split("/")), []).append(p.split("/"))
    patterns = []
    for parts in groups.values():
        columns = list(zip(*parts, strict=True))
        pieces = []
        for values in map(set, columns):
            if len(values) == 1:
                pieces.append(re.escape(next(iter(values))))
                continue
            numbered = {re.fullmatch(r"([A-Za-z_]*)\d+", v).group(1) if re.fullmatch(r"[A-Za-z_]*\d+", v) else None
                        for v in values}
            pieces.append(re.escape(next(iter(numbered))) + r"\d+" if len(numbered) == 1 and None not in numbered
                          else "(?:" + "|".join(map(re.escape, sorted(values))) + ")")
        patterns.append(re.compile("/".join(pieces)))
    return sorted(m for m in members if any(pat.fullmatch(m) for pat in patterns))


def shipped_inputs(func_spec: str, inputs: Mapping[str, str | Sequence[str]], results: str, dest: str,
                   members: Sequence[str]) -> dict[str, str | list[str]] | None:
    """An experiment's scorecard rule's named inputs, pointed at the shipped run's extracted data.

    A file of the run's results folder (``results/<profile>/tables/e1_losses.csv``) becomes the
    same member under ``dest`` when the bundle holds it; a list of such files (the runs of a
    setting) becomes the bundle's files of the same kind (:func:`same_kind`), so that the shipped
    run is judged on its own runs where its config made other ones (post VII's longer log run
    beside shorter main runs in one profile, not in another). Files the report rules write
    (``<results>/report/...``, e.g. the backend study's spreads) and files outside the results
    folder stay this run's: they are the rules, not the shipped run's data. An input whose
    member the bundle lacks (a list: none of its kind) is left out where the scorecard function
    has a default for it; otherwise the experiment cannot be judged from the bundle (None).

    Args:
        func_spec: the rule's function, ``"klvae.report.<experiment>:write_..._scorecard"``.
        inputs: the rule's named inputs, ``{name: path or list of paths}``.
        results: the run's results folder as the rules name it (``RESULTS``).
        dest: where the bundle's members are extracted (``<results>/shipped/data``).
        members: the bundle's member paths.
    """
    params = inspect.signature(_function(func_spec)).parameters
    have = set(members)
    own = f"{results}/report/"
    out: dict[str, str | list[str]] = {}
    for name, value in inputs.items():
        paths = [value] if isinstance(value, str) else [str(v) for v in value]
        kept = [p for p in paths if p.startswith(own) or not p.startswith(f"{results}/")]
        data = [p[len(results) + 1:] for p in paths if p not in kept]
        if isinstance(value, str):
            found = [m for m in data if m in have]
        else:
            found = same_kind(data, members) if data else []
        if (data and not found) or (isinstance(value, str) and len(found) != len(data)):
            if name in params and params[name].default is not inspect.Parameter.empty:
                continue
            return None
        mapped = kept + [f"{dest}/{m}" for m in found]
        out[name] = mapped[0] if isinstance(value, str) else mapped
    return out


def needed_members(inputs: Mapping[str, Mapping[str, str | Sequence[str]]], dest: str) -> list[str]:
    """The bundle members that :func:`shipped_inputs` pointed at ``dest`` (names relative to the
    run's results folder), sorted: what rule ``report_shipped_extract`` writes."""
    out = set()
    for named in inputs.values():
        for value in named.values():
            for p in [value] if isinstance(value, str) else value:
                if str(p).startswith(f"{dest}/"):
                    out.add(str(p)[len(dest) + 1:])
    return sorted(out)
