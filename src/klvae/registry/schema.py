"""The run configuration's JSON schema: the base schema plus every registered experiment's settings.

``workflow/schemas/config.schema.yaml`` (:data:`BASE_SCHEMA`) holds what every run shares (profile,
seed, threads, MNIST, the backend study, the shared scorecard tolerance, the report). Each
experiment brings the rest (:class:`~klvae.registry.spec.Experiment`): its section ``<id>``
(inserted after ``data``, in the registry's order; required unless its schema gives a default),
the ``data.<name>`` keys it owns and its scorecard tolerances. :func:`compose` joins them
(:func:`klvae.registry.config_schema`, with the registered experiments); the workflow validates
with the result (:func:`klvae.config.check_config`), and ``config/README.md`` is written from it
(:mod:`klvae.config_docs`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

#: The repository's root (this file is ``src/klvae/registry/schema.py``).
ROOT = Path(__file__).resolve().parents[3]
#: The base schema: everything but the experiments' own settings.
BASE_SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
#: The base schema's key after which the experiments' sections go.
SECTIONS_AFTER = "data"


def _add(node: dict, where: str, owner: str, items: Mapping) -> None:
    props = node.setdefault("properties", {})
    for key, sub in items.items():
        if key in props:
            raise ValueError(f"{owner} declares {where}.{key}, which the schema has already "
                             f"({BASE_SCHEMA.relative_to(ROOT)} or another experiment)")
        props[key] = copy.deepcopy(dict(sub))


def compose(base: str | Path | Mapping | None, experiments: Iterable) -> dict:
    """The whole config schema: ``base`` (default :data:`BASE_SCHEMA`) with each experiment's
    section after ``data``, its ``data.<name>`` keys and its scorecard tolerances (a fresh dict);
    :func:`klvae.registry.config_schema` with the registry's experiments.

    Args:
        base: the base schema (a file or the loaded dict).
        experiments: the experiments, in the registry's order.

    Raises:
        ValueError: an experiment declares a key the schema has already.
    """
    experiments = tuple(experiments)
    if base is None or not isinstance(base, Mapping):
        base = yaml.safe_load(Path(base or BASE_SCHEMA).read_text())
    schema = copy.deepcopy(dict(base))
    props = schema["properties"]
    sections = {}
    for e in experiments:
        owner = f"experiment {e.id} (src/klvae/registry/{e.id}.py)"
        if e.section in props or e.section in sections:
            raise ValueError(f"{owner}: its config section {e.section!r} is in the schema already")
        sections[e.section] = copy.deepcopy(dict(e.settings))
        if e.data_settings:
            _add(props["data"], "data", owner, e.data_settings)
        if e.tolerances:
            _add(props["scorecard"], "scorecard", owner, e.tolerances)
    keys = list(props)
    cut = keys.index(SECTIONS_AFTER) + 1
    schema["properties"] = {**{k: props[k] for k in keys[:cut]}, **sections, **{k: props[k] for k in keys[cut:]}}
    schema["required"] = [*schema.get("required", []), *(e.section for e in experiments if e.required)]
    return schema
