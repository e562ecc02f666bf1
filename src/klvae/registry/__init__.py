"""The experiment registry: one description per experiment, read by every part of the project.

Each experiment is one module here, ``klvae.registry.<id>``, whose ``EXPERIMENT`` (an
:class:`~klvae.registry.spec.Experiment`) says everything the rest of the project needs to know
about it without running it: its title and config section, its settings' JSON schema (and the
``data.<name>`` keys and scorecard tolerances it owns), the data folders it owns, its tables and
how two bundles compare them, the tables the report's comparison shows, its chapter and anchor,
its jobs on the GPU profile's card and its parts of the paper run. :data:`EXPERIMENTS` lists them
in the report's order -- one import line each, below. Who reads it:

* the workflow: ``workflow/rules/common.smk`` (which rule files to include, each experiment's
  title, the report's chapters) and the Snakefile, whose config schema is the base schema
  ``workflow/schemas/config.schema.yaml`` plus each experiment's settings (:func:`config_schema`);
* ``config/README.md`` (:mod:`klvae.config_docs`) and the config checks (:mod:`klvae.config`);
* the results bundles: which experiment a file belongs to, which config keys a merge takes from
  each run, how tables are compared (:mod:`klvae.bundle`); part bundles and the paper plan
  (:mod:`klvae.bundle.part`, :mod:`klvae.paper`);
* the report: the summary's links, the comparison's tables, the methods chapter's settings and times;
* the GPU profile ``workflow/profiles/gpu/config.yaml``, written from it (:mod:`klvae.registry.profile`:
  ``python -m klvae.registry --gpu-profile``).

Adding an experiment E4 adds ``src/klvae/registry/e4.py`` and the line ``from klvae.registry import e4``
below (``docs/architecture.md``, "Adding an experiment"). Imports nothing of ``klvae`` but its own
modules: everything else sits above it.
"""

from __future__ import annotations

from types import ModuleType

from klvae.registry.schema import BASE_SCHEMA, compose
from klvae.registry.spec import Experiment, GpuJob, PaperPart, TableSpec

# The experiments, in the report's order: one line each. (Plain import statements, so that the code
# digests of the rules reading the registry cover every experiment's module; klvae.code_digest.)
# isort: off
from klvae.registry import e1  # noqa: F401 -- the KL-coefficient post: KL coefficient sweep on MNIST (MLP VAE)
from klvae.registry import e2  # noqa: F401 -- posts IV-VIII: the KL-loss strategies in Keras 3 (conv VAE)
from klvae.registry import e3  # noqa: F401 -- post IX and the AE-latent post: faces
# isort: on

__all__ = ["EXPERIMENTS", "Experiment", "GpuJob", "PaperPart", "TableSpec", "BASE_SCHEMA", "config_schema", "ids",
           "get", "owner", "tables", "paper_parts"]


def _in_import_order(namespace: dict) -> tuple[Experiment, ...]:
    """The ``EXPERIMENT`` of every registry module imported into ``namespace``, in the order of the imports."""
    found = [v for k, v in namespace.items() if isinstance(v, ModuleType) and v.__name__ == f"{__name__}.{k}"
             and hasattr(v, "EXPERIMENT")]
    for module in found:
        if module.EXPERIMENT.id != module.__name__.rpartition(".")[2]:
            raise ValueError(f"{module.__name__} describes experiment {module.EXPERIMENT.id!r}: the module of "
                             f"experiment <id> is klvae.registry.<id>")
    return tuple(module.EXPERIMENT for module in found)


#: The registered experiments, in the report's order: the ``EXPERIMENT`` of each module imported above.
EXPERIMENTS: tuple[Experiment, ...] = _in_import_order(dict(globals()))


def _check(experiments: tuple[Experiment, ...]) -> None:
    seen: dict[str, str] = {}
    for e in experiments:
        for kind, names in (("id", [e.id]), ("table", list(e.tables)), ("GPU job", list(e.gpu)),
                            ("data folder", list(e.data_folders)), ("config key", list(e.config_keys)),
                            ("paper part", [p.name for p in e.paper_parts])):
            for name in names:
                key = f"{kind} {name}"
                if key in seen and seen[key] != e.id:
                    raise ValueError(f"the {kind} {name!r} is declared by both {seen[key]} and {e.id} "
                                     "(src/klvae/registry/)")
                seen[key] = e.id


_check(EXPERIMENTS)


def ids() -> list[str]:
    """The experiments' ids, in the report's order (``["e1", "e2", "e3"]``)."""
    return [e.id for e in EXPERIMENTS]


def get(experiment_id: str) -> Experiment:
    """The experiment ``experiment_id``.

    Raises:
        KeyError: no such experiment; the message lists the registered ones.
    """
    for e in EXPERIMENTS:
        if e.id == experiment_id:
            return e
    raise KeyError(f"no experiment {experiment_id!r} in the registry (klvae.registry: {', '.join(ids())})")


def owner(name: str) -> Experiment | None:
    """The experiment a folder, rule, table stem or file name belongs to (``e1``, ``e1_train``,
    ``e2_metrics``, ``e3.vars.yml``: :meth:`Experiment.owns`), or None."""
    return next((e for e in EXPERIMENTS if e.owns(name)), None)


def tables() -> dict[str, TableSpec]:
    """Every experiment's tables, ``{stem: TableSpec}``, in the registry's order."""
    return {stem: spec for e in EXPERIMENTS for stem, spec in e.tables.items()}


def units() -> dict[str, bool]:
    """Every experiment's own claim units, ``{unit: cannot be negative}`` (:attr:`Experiment.units`)."""
    return {unit: bool(nonneg) for e in EXPERIMENTS for unit, nonneg in e.units.items()}


def config_schema(base=None, experiments=None) -> dict:
    """The whole config schema the workflow validates with: the base schema ``base`` (default
    ``workflow/schemas/config.schema.yaml``) plus the settings of ``experiments`` (default every
    registered one): :func:`klvae.registry.schema.compose`."""
    return compose(base, EXPERIMENTS if experiments is None else experiments)


def paper_parts() -> list[tuple[Experiment, PaperPart]]:
    """The parts of the paper run, ``(experiment, part)``, in the order they run (the registry's)."""
    return [(e, p) for e in EXPERIMENTS for p in e.paper_parts]
