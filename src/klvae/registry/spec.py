"""What one experiment declares to the registry (:class:`Experiment`), and the pieces of it.

Keras-free, pandas-free and free of the rest of ``klvae``: the workflow (``workflow/rules/common.smk``,
the Snakefile's config check), the results bundles, the report and the GPU profile all read these
declarations, and nothing they need is above this module.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import yaml

#: MNIST's training images: what ``n_train: null`` means for an experiment trained on all of MNIST.
MNIST_TRAIN = 60_000
#: The form of an experiment's id: ``e`` and a number. The id names its config section, its
#: rules (``<id>_*``), its folders (``results/<profile>/<id>/``, ``figures/<id>/``), its tables
#: (``tables/<id>_*.csv``) and its modules (``<id>.py``, ``<id>.smk``, ``_<id>.qmd``).
ID = re.compile(r"e[1-9][0-9]*")


def schema(text: str) -> dict:
    """A JSON-schema fragment written as YAML (indented as one block), as in ``workflow/schemas/config.schema.yaml``."""
    return yaml.safe_load(textwrap.dedent(text))


def coef_name(c) -> str:
    """A KL coefficient as paths and titles write it: ``0``, ``0.02``, ``20``."""
    return f"{float(c):g}"


@dataclass(frozen=True)
class TableSpec:
    """One table an experiment writes (``tables/<stem>.csv``) and how two bundles compare it
    (:func:`klvae.bundle.compare.table_values`).

    Attributes:
        keys: columns naming a row (those present are used).
        values: columns compared (None: every other column but
            :data:`klvae.bundle.compare.SKIP_COLUMNS` and the sd columns).
        sd: metric -> its sample-sd column (default ``<metric>_sd`` where present).
        n: the column holding the number of runs.
        shown: the columns the report's comparison with a shipped run shows
            (``report/_compare.qmd``, :mod:`klvae.report.compare`); None: the table is only in its CSV.
        renamed_cells: cell values renamed since results bundles were first made,
            ``{column: {old: new}}`` (:mod:`klvae.legacy`).
    """

    keys: tuple[str, ...]
    values: tuple[str, ...] | None = None
    sd: Mapping[str, str] = field(default_factory=dict)
    n: str | None = None
    shown: tuple[str, ...] | None = None
    renamed_cells: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class GpuJob:
    """A rule's claim on the card of the GPU profile (``workflow/profiles/gpu/config.yaml``, written by
    ``python -m klvae.registry --gpu-profile``).

    Attributes:
        threads: its CPU threads there (``set-threads``); None: the rule's own.
        mem_mb: its host memory there (``set-resources``), MB; None: the rule's own.
        whole_card: it times training steps, so it takes every slot of the card; otherwise one slot.
    """

    threads: int | None = None
    mem_mb: int | None = None
    whole_card: bool = False


@dataclass(frozen=True)
class PaperPart:
    """One part of the paper profile's run (:mod:`klvae.paper`, ``make paper-part PART=<name>``).

    Attributes:
        name: the part's name (the experiment's id, or ``<id>-<suffix>``), also in its bundle's name.
        what: one line for the plan.
        targets: ``(config, results folder) -> [paths]``: the Snakemake targets, the per-run outputs
            that need the trained weights (so the part leaves data, not weights).
        work: ``config -> {rule: jobs}``: how many jobs of each rule it runs; the plan scales each
            by the work of one job (:meth:`Experiment.work_of_job`).
        timing: it times something, so nothing else may run on the machine meanwhile.
        width: ``config -> int``: how many cores its jobs keep busy at once (one training on one
            thread: 1); None: as many as the machine has. The plan's wall time is its CPU-s over
            this, not over the machine's cores. It is given the part's config (``config`` below applied).
        config: what the part changes in the profile's config for its own run, as a nested dict
            laid over it (:func:`klvae.paper.part_config`), e.g. ``{"threads": {"train": 2}}`` for one
            training that would take one core longer than a part. The part bundle records the
            config as used, and the assembly expects exactly this change for this part.
    """

    name: str
    what: str
    targets: Callable[[dict, str], list[str]]
    work: Callable[[dict], dict[str, float]]
    timing: bool = False
    width: Callable[[dict], int] | None = None
    config: dict | None = None


@dataclass(frozen=True)
class Experiment:
    """One experiment, as every part of the project sees it.

    Attributes:
        id: ``e1``, ``e2``, ...: its config section, rule prefix, folders, table prefix and modules (:data:`ID`).
        title: its scorecard table's title.
        settings: the JSON schema of its config section ``<id>`` (an object). The section is
            required in a profile unless the schema gives it a ``default``.
        data_settings: ``{name: schema}`` of the keys ``data.<name>`` it owns (E3: ``celeba``).
        tolerances: ``{key: schema}`` of the scorecard tolerances ``scorecard.<key>`` it owns.
        data_folders: folders of a run's ``data/`` that belong to it (E3's faces).
        tables: ``{stem: TableSpec}``: the tables ``tables/<stem>.csv`` it writes (each stem starts
            with ``<id>_``), how bundles compare them and which the report's comparison shows.
        gpu: ``{rule: GpuJob}``: its jobs on the GPU profile's card (training rules take a slot each,
            benchmarks that time training steps the whole card).
        part_rules: the rules whose code a part bundle's numbers depend on (:mod:`klvae.bundle.part`).
        paper_parts: its parts of the paper profile's run, in the order they run.
        train_images: what ``n_train: null`` means for its training rules' work (MNIST: 60,000);
            None where it depends on the data (no estimate without ``n_train``).
        job_work: ``{rule: (unit, config -> work of one job in that unit)}``: rules whose CPU-seconds
            grow with a setting rather than per job (E3's stand-in: per image drawn), for the paper
            plan's estimates (:meth:`work_of_job`); its training rules need no entry.
        check: ``(config, where) -> [lines]``: problems of a validated config the schema cannot
            express (``where``: `` in <files>`` or empty), one line each.
        renamed_keys: ``(old, new, why)``: keys of its section renamed since bundles were first made.
        renamed_values: ``(dotted key, old, new, why)``: values of its keys renamed since then.
        modules: further files that belong to it (repository-relative; a folder ends in ``/``),
            besides its own modules by name (:meth:`own_files`).
        includes: ``{fragment: ((condition, qmd), ...)}``: its generated includes, the fragments
            ``_generated/<id>_*.md`` of its report rule that choose which of its ``report/_<id>_*.qmd``
            prose files appear (the stand-in faces' warning), each with the condition under which a
            file is included; :data:`klvae.report.includes.INCLUDES` lists them beside the shared
            sections' and says how a condition is written.
        units: the units of its scorecard claims that the shared ones
            (:data:`klvae.report.scorecard.NONNEGATIVE_UNITS`, ``SIGNED_UNITS``) do not cover,
            ``{unit: True if the quantity cannot be negative}`` (its intervals are then log-scale).
    """

    id: str
    title: str
    settings: Mapping
    data_settings: Mapping[str, Mapping] = field(default_factory=dict)
    tolerances: Mapping[str, Mapping] = field(default_factory=dict)
    data_folders: tuple[str, ...] = ()
    tables: Mapping[str, TableSpec] = field(default_factory=dict)
    units: Mapping[str, bool] = field(default_factory=dict)
    gpu: Mapping[str, GpuJob] = field(default_factory=dict)
    part_rules: tuple[str, ...] = ()
    paper_parts: tuple[PaperPart, ...] = ()
    train_images: int | None = None
    job_work: Mapping[str, tuple[str, Callable[[dict], float]]] = field(default_factory=dict)
    check: Callable[[dict, str], list[str]] | None = None
    renamed_keys: tuple[tuple[str, str, str], ...] = ()
    renamed_values: tuple[tuple[str, str, str, str], ...] = ()
    modules: tuple[str, ...] = ()
    includes: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def __post_init__(self):
        where = f"experiment {self.id!r} (src/klvae/registry/{self.id}.py)"
        if not isinstance(self.id, str) or not ID.fullmatch(self.id):
            raise ValueError(f"{where}: an id is 'e' and a number (e4, e12), not {self.id!r}")
        if self.settings.get("type") != "object":
            raise ValueError(f"{where}: settings must be the schema of an object (type: object)")
        for kind, names in (("table", self.tables), ("GPU job", self.gpu)):
            bad = [n for n in names if not n.startswith(f"{self.id}_")]
            if bad:
                raise ValueError(f"{where}: {kind} names start with {self.id}_: {', '.join(bad)}")
        bad = [f"{name}: {qmd}" for name, choices in self.includes.items() for _, qmd in choices
               if not (name.startswith(f"{self.id}_") and name.endswith(".md") and qmd.startswith(f"_{self.id}_")
                       and qmd.endswith(".qmd"))]
        if bad:
            raise ValueError(f"{where}: a generated include is <id>_*.md and includes report/_<id>_*.qmd files: "
                             f"{', '.join(bad)}")
        bad = [p.name for p in self.paper_parts if p.name != self.id and not p.name.startswith(f"{self.id}-")]
        if bad:
            raise ValueError(f"{where}: paper parts are named {self.id} or {self.id}-<suffix>: {', '.join(bad)}")

    @property
    def section(self) -> str:
        """Its config section: ``<id>``."""
        return self.id

    @property
    def label(self) -> str:
        """How tables and the scorecard name it: ``E1``."""
        return self.id.upper()

    @property
    def chapter(self) -> str:
        """Its report chapter, ``report/_<id>.qmd`` (``report/index.qmd`` includes them in the registry's order)."""
        return f"_{self.id}.qmd"

    @property
    def anchor(self) -> str:
        """Where its chapter starts (the chapter's heading id, ``{#sec-<id>}``): the summary links there."""
        return f"sec-{self.id}"

    @property
    def required(self) -> bool:
        """Whether a profile must have its section (its settings' schema gives no default)."""
        return "default" not in self.settings

    @property
    def config_keys(self) -> tuple[str, ...]:
        """The config keys it owns (dotted): its section, its ``data.<name>`` and its scorecard tolerances.
        A merged bundle takes them from the run that made this experiment (:mod:`klvae.bundle.compare`)."""
        return (self.section, *(f"data.{k}" for k in self.data_settings),
                *(f"scorecard.{k}" for k in self.tolerances))

    @property
    def training_rules(self) -> tuple[str, ...]:
        """Its training rules: the GPU jobs that take one slot of the card."""
        return tuple(r for r, job in self.gpu.items() if not job.whole_card)

    def work_of_job(self, rule: str, config: dict | None) -> tuple[str, float | None]:
        """The work one job of ``rule`` does under ``config`` (a validated profile config), and its unit.

        :attr:`job_work`'s where it names the rule; for a training rule (:attr:`training_rules`)
        epochs x training images (``n_train``, else :attr:`train_images`), unit ``"epoch and
        training image"``; else ``("job", 1.0)``.

        Returns:
            ``(unit, work)``; work is None where ``config`` is None or lacks what it needs.
        """
        section = (config or {}).get(self.section) or {}
        try:
            if rule in self.job_work:
                unit, work = self.job_work[rule]
                return unit, (float(work(config)) if config else None)
            if rule in self.training_rules:
                images = section.get("n_train") or self.train_images
                return "epoch and training image", (float(section["epochs"]) * float(images) if images else None)
        except (KeyError, TypeError, ValueError):
            return (self.job_work[rule][0] if rule in self.job_work else "epoch and training image"), None
        return "job", 1.0

    def owns(self, name: str) -> bool:
        """Whether ``name`` (a folder, rule, table stem or file name) is this experiment's:
        ``<id>``, ``<id>_...`` or ``<id>.<ext>``."""
        return name == self.id or name.startswith((f"{self.id}_", f"{self.id}."))

    def own_files(self) -> tuple[str, ...]:
        """The files that belong to it (repository-relative): its registry entry, its modules by name
        (``src/klvae/{experiments,figures,report,bench}/<id>.py``), its rules, its chapter, and :attr:`modules`."""
        return (f"src/klvae/registry/{self.id}.py",
                *(f"src/klvae/{pkg}/{self.id}.py" for pkg in ("experiments", "figures", "report", "bench")),
                f"workflow/rules/{self.id}.smk", f"report/{self.chapter}", *self.modules)


def mnist_batch_check(section: str, post_batch: int) -> Callable[[dict, str], list[str]]:
    """An :attr:`Experiment.check` for an experiment trained on MNIST: a batch larger than its training
    images (``n_train``, or all 60,000) is surely a typo (it would train on one partial batch per epoch).

    Args:
        section: the experiment's config section.
        post_batch: the posts' batch size, quoted in the fix.
    """

    def check(config: dict, where: str) -> list[str]:
        settings = config.get(section, {})
        n = settings.get("n_train") or MNIST_TRAIN
        batch = settings.get("batch_size")
        if n and batch and batch > n:
            return [f"{section}.batch_size = {batch:,} is larger than the {n:,} training images of {section} "
                    f"({section}.n_train{'' if settings.get('n_train') else ', all of MNIST'}). Fix: set "
                    f"{section}.batch_size{where} to at most {n:,} (the posts use {post_batch})."]
        return []

    return check
