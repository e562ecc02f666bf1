"""Config validation with messages a user can act on.

:func:`check_config` validates with ``snakemake.utils.validate`` (which also fills the
schema's defaults). When that fails, Snakemake's message is jsonschema's raw one (the
first problem only, with the whole schema dumped); instead every problem is listed, one
line each, naming the dotted key (``e1.epochs``), the value given, what is expected (from
the schema's constraint and ``description``) and what to do, e.g.::

    Invalid configuration in config/bad.yaml (1 problem); nothing was run and existing results are unchanged:
      - e1.epochs = -3: must be an integer >= 1 -- Training epochs per coefficient (the post used 40). Fix: edit
        e1.epochs in config/bad.yaml, e.g. 30 (as in config/default.yaml).
    Valid values: workflow/schemas/config.schema.yaml and the experiments' settings (src/klvae/registry/<id>.py);
    a complete valid example: config/default.yaml.

Unknown keys name the key, suggest the closest allowed one and list all allowed ones; a
missing required key says what to add; a value given with ``--config`` is reported as such
(``--config`` passes nested values as text, so nested keys belong in a config file).
"""

from __future__ import annotations

import difflib
import json
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError

from klvae.registry import EXPERIMENTS

__all__ = ["ConfigError", "check_config", "validate_config", "explain", "consistency_problems", "face_counts"]

#: How a message names the composed schema (a dict, :func:`klvae.registry.config_schema`) as its source.
SCHEMA_SOURCES = "workflow/schemas/config.schema.yaml and the experiments' settings (src/klvae/registry/<id>.py)"

_TYPE_WORDS = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
               "array": "a list", "object": "a mapping (key: value)", "null": "null"}


class ConfigError(WorkflowError):
    """The run configuration does not match ``workflow/schemas/config.schema.yaml``."""


def _show(value) -> str:
    """A value as the user would write it in YAML/JSON (strings quoted, lists/dicts compact)."""
    if isinstance(value, str):
        return repr(value)
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 160 else text[:157] + "..."


def _kind(value) -> str:
    for name, types in (("null", type(None)), ("boolean", bool), ("integer", int), ("number", float),
                        ("string", str), ("array", list), ("object", dict)):
        if isinstance(value, types):
            return _TYPE_WORDS[name]
    return type(value).__name__


def _dotted(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _sub(schema: dict, path) -> dict:
    """The subschema for an instance path (str keys via ``properties``, ints via ``items``)."""
    node = schema
    for p in path:
        node = node.get("items", {}) if isinstance(p, int) else node.get("properties", {}).get(p, {})
    return node


def expected(sub: dict) -> str:
    """What a schema node admits, in words: ``an integer >= 1``, ``one of 'a', 'b'``, ..."""
    if "const" in sub:
        return f"exactly {_show(sub['const'])}"
    if "enum" in sub:
        return "one of " + ", ".join(_show(v) for v in sub["enum"])
    types = sub.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    words = []
    for t in (t for t in types if t != "null"):
        if t in ("integer", "number"):
            lo, hi = sub.get("minimum"), sub.get("maximum")
            if lo is not None and lo == hi:
                words.append(f"{_TYPE_WORDS[t]} equal to {lo}")
                continue
            bounds = [f">= {lo}" if lo is not None else None,
                      f"> {sub['exclusiveMinimum']}" if "exclusiveMinimum" in sub else None,
                      f"<= {hi}" if hi is not None else None,
                      f"< {sub['exclusiveMaximum']}" if "exclusiveMaximum" in sub else None]
            words.append(" ".join([_TYPE_WORDS[t], " and ".join(b for b in bounds if b)]).strip())
        elif t == "array":
            n = sub.get("minItems", 0)
            s = "a non-empty list" if n == 1 else (f"a list of at least {n} items" if n else "a list")
            if sub.get("uniqueItems"):
                s += " of distinct values"
            if sub.get("items"):
                s += ", each " + expected(sub["items"])
            if "contains" in sub:
                s += ", that includes " + expected(sub["contains"]).removeprefix("exactly ")
            words.append(s)
        elif t == "string" and sub.get("minLength"):
            words.append("a non-empty string")
        else:
            words.append(_TYPE_WORDS.get(t, t))
    if "null" in types:
        words.append("null")
    return " or ".join(words) if words else "a valid value"


def _description(schema: dict, path) -> str:
    """The ``description`` of the deepest node on ``path`` that has one (whitespace collapsed)."""
    for k in range(len(path), 0, -1):
        text = _sub(schema, path[:k]).get("description")
        if text:
            return " ".join(str(text).split())
    return ""


def _lookup(tree, path):
    node = tree
    for p in path:
        if not isinstance(node, Mapping) or p not in node:
            return None, False
        node = node[p]
    return node, True


def _files_text(files) -> str:
    return " + ".join(str(f) for f in files) if files else "the --config values"


def explain(config: dict, schema: dict, files=(), example: str | Path | None = None,
            overrides: Mapping | None = None) -> list[str]:
    """One line per problem of ``config`` against ``schema`` (empty list when it is valid).

    Args:
        config: the config dict.
        schema: the loaded JSON schema (dict).
        files: the config file(s) the values came from (named in each line's fix).
        example: a complete valid config file (``config/default.yaml``) to quote example values from.
        overrides: the ``--config`` values (``workflow.config_settings.config``); a key set
            there is reported as coming from ``--config``, not from the files.
    """
    from jsonschema import Draft202012Validator

    ex_tree = yaml.safe_load(Path(example).read_text()) if example and Path(example).is_file() else {}
    ex_name = f"{Path(example).parent.name}/{Path(example).name}" if example else "config/default.yaml"
    where = _files_text(files)
    ctx = {"where": where, "ex_tree": ex_tree, "ex_name": ex_name, "overrides": overrides or {}}
    lines: list[str] = []
    grouped: dict[tuple, list] = {}
    for err in Draft202012Validator(schema).iter_errors(config):
        path = list(err.absolute_path)
        if err.validator == "additionalProperties":
            allowed = list(_sub(schema, path).get("properties", {}))
            for key in [k for k in err.instance if k not in allowed]:
                full = _dotted([*path, key])
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {_dotted([*path, close[0]])}?)" if close else ""
                scope = f"{_dotted(path)} accepts" if path else "the top level accepts"
                _, cli = _lookup(ctx["overrides"], [*path, key])
                fix = f"drop {key}=... from --config" if cli else f"rename or remove {full} in {where}"
                lines.append(f"{full}: unknown key{hint}; {scope} only: {', '.join(allowed)}. Fix: {fix}.")
            continue
        if err.validator == "required":
            missing = [k for k in err.validator_value if k not in err.instance]
            for key in missing:
                full_path = [*path, key]
                lines.append(_problem_line(schema, full_path, None, None, ctx, missing=True))
            continue
        # report item problems at the list's key, once per key
        cut = len(path)
        while cut and isinstance(path[cut - 1], int):
            cut -= 1
        grouped.setdefault(tuple(path[:cut]), []).append(err)
    for key_path, errs in grouped.items():
        items = [e for e in errs if len(e.absolute_path) > len(key_path)]
        value, _ = _lookup(config, key_path)
        details = [f"item {_dotted(list(e.absolute_path)[len(key_path):])} = {_show(e.instance)} is not"
                   for e in items[:3]]
        own = {e.validator for e in errs if len(e.absolute_path) == len(key_path)}
        if "uniqueItems" in own:
            details.append("it repeats a value")
        if "contains" in own:
            sub = _sub(schema, list(key_path)).get("contains", {})
            details.append(f"{_show(sub.get('const', '?'))} is missing")
        bad_items = "; ".join(details) or None
        lines.append(_problem_line(schema, list(key_path), value, bad_items, ctx))
    return list(dict.fromkeys(lines))  # jsonschema reports "required" once per missing key


def _problem_line(schema, path, value, bad_items, ctx, missing: bool = False) -> str:
    key = _dotted(path)
    sub = _sub(schema, path)
    want = expected(sub)
    desc = _description(schema, path)
    head = f"{key} is missing" if missing else f"{key} = {_show(value)}"
    if not missing and isinstance(value, (str, bool, type(None))) and not sub.get("enum") and "const" not in sub:
        head += f" ({_kind(value)})"
    line = f"{head}: must be {want}"
    if bad_items:
        line += f" ({bad_items})"
    if desc:
        line += f" -- {desc.rstrip('.')}."
    else:
        line += "."
    types = sub.get("type", [])
    _, cli = _lookup(ctx["overrides"], path)
    if not cli and isinstance(value, str) and ({"integer", "number", "boolean"}
                                               & set([types] if isinstance(types, str) else types)):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = None
        if isinstance(parsed, (int, float, bool)):
            line += " A number or true/false in quotes is text: write it without quotes."
    ex_value, found = _lookup(ctx["ex_tree"], path)
    origin = f"as in {ctx['ex_name']}"
    if not found and "default" in sub:
        ex_value, found, origin = sub["default"], True, "the default"
    example = f", e.g. {_show(ex_value)} ({origin})" if found else ""
    scalar = found and not isinstance(ex_value, (dict, list))
    if cli and len(path) == 1:
        line += f" Fix: change --config {key}=... (given there){example}"
    elif cli:
        line += (f" Fix: set {key} in a config file instead of --config (it passes nested values as text)"
                 f"{example}")
    else:
        line += (f" Fix: add {key} to {ctx['where']}{example}" if missing
                 else f" Fix: edit {key} in {ctx['where']}{example}")
        if len(path) == 1 and scalar:
            line += f"; or pass --config {key}={'' if ex_value is None else ex_value}"
    return line + "."


def _non_finite(tree, path=()) -> list[tuple[str, float]]:
    """Dotted keys (list items as ``key[i]``) whose value is a float NaN or infinity."""
    if isinstance(tree, Mapping):
        return [hit for k, v in tree.items() for hit in _non_finite(v, (*path, str(k)))]
    if isinstance(tree, list):
        return [hit for i, v in enumerate(tree) for hit in
                _non_finite(v, (*path[:-1], f"{path[-1]}[{i}]") if path else (f"[{i}]",))]
    if isinstance(tree, float) and not math.isfinite(tree):
        return [(".".join(path), tree)]
    return []


def consistency_problems(config: dict, files=()) -> list[str]:
    """Problems the schema cannot express, in a validated config (defaults filled): one line each.

    * NaN or infinity anywhere (YAML's ``.nan``/``.inf`` pass JSON-schema ranges, since every
      comparison with NaN is false);
    * then each experiment's own checks, in the registry's order (its ``check``,
      :class:`klvae.registry.Experiment`): e.g. an MNIST batch larger than the experiment's
      training images, surely a typo; more faces than the synthetic stand-in holds.

    Counts against a real CelebA source are checked when the workflow reads it
    (:func:`face_counts`).
    """
    where = f" in {_files_text(files)}" if files else ""
    lines = [f"{key} = {_show(value)}: must be a finite number (NaN and infinity are not). Fix: edit {key}{where}."
             for key, value in _non_finite(config)]
    if lines:
        return lines
    for experiment in EXPERIMENTS:
        if experiment.check is not None:
            lines += experiment.check(config, where)
    return lines


def face_counts(n_images: int, n_train: int | None, n_test: int | None, split: str, source: str) -> str:
    """Check the configured face counts against the ``n_images`` a CelebA source holds.

    Returns:
        A line for the start of the run saying how many images E3 will use.

    Raises:
        ConfigError: with the post's split (first ``n_train`` by file number, then the next
            ``n_test``), when they add up to more than ``n_images``; the message names the keys.
    """
    if split == "post":
        wanted = (n_train or 0) + (n_test or 0)
        if n_train is not None and n_test is not None and wanted > n_images:
            raise ConfigError(f"e3.n_train + e3.n_test = {wanted:,} but {source} holds {n_images:,} face images. "
                              f"Fix: lower e3.n_train and/or e3.n_test (the post: 170,000 + 10,000 of CelebA's "
                              f"202,599); nothing was run.")
        train = n_train if n_train is not None else n_images - (n_test or 0)
        return (f"[e3] {source}: {n_images:,} face images; the post's split uses the first {train:,} for training "
                f"and the next {n_test if n_test is not None else n_images - train:,} for testing")
    return (f"[e3] {source}: {n_images:,} face images; the official split's partitions, capped at e3.n_train = "
            f"{n_train} and e3.n_test = {n_test}")


def validate_config(config: dict, schema: str | Path | Mapping) -> dict:
    """``snakemake.utils.validate(config, schema, set_default=True)`` for a schema file or a schema
    given as a dict (the composed one, :func:`klvae.registry.config_schema`: written to a temporary
    file for Snakemake, which reads schemas from files only).

    Returns:
        ``config`` (validated, the schema's defaults filled in place).

    Raises:
        snakemake.exceptions.WorkflowError: the config does not match (Snakemake's message).
    """
    from snakemake.utils import validate

    if not isinstance(schema, Mapping):
        validate(config, str(schema), set_default=True)
        return config
    with tempfile.TemporaryDirectory(prefix="klvae-schema-") as tmp:
        # YAML, as the schema files are: Snakemake reads a JSON file into OrderedDicts, whose
        # defaults would then land in the config (and a YAML dump of it would fail)
        path = Path(tmp) / "config.schema.yaml"
        path.write_text(yaml.safe_dump(dict(schema), sort_keys=False, allow_unicode=True))
        validate(config, str(path), set_default=True)
    return config


def check_config(config: dict, schema_path: str | Path | Mapping, source=(), example: str | Path | None = None,
                 overrides: Mapping | None = None) -> dict:
    """Validate ``config`` (filling defaults) with ``snakemake.utils.validate``; explain any failure.

    Args:
        config: the workflow's config dict (modified in place: schema defaults are filled).
        schema_path: the schema: a file (absolute, or relative to the cwd), or the schema itself
            (the workflow's: :func:`klvae.registry.config_schema`, the base schema
            ``workflow/schemas/config.schema.yaml`` plus each experiment's settings).
        source: the config file path(s) the values came from (``workflow.configfiles``), or
            one path; named in the message.
        example: a complete valid config (``config/default.yaml``) whose values are quoted
            as examples.
        overrides: the ``--config`` values (``workflow.config_settings.config``), so that a
            bad value given there is reported as such.

    Returns:
        ``config`` (validated, defaults filled).

    Raises:
        ConfigError: (a :class:`snakemake.exceptions.WorkflowError`) one line per problem:
            the dotted key, the value given, what is expected and what to do.
    """
    files = [source] if isinstance(source, (str, Path)) else list(source or [])
    try:
        validate_config(config, schema_path)
        lines = consistency_problems(config, files)
        if lines:
            n = len(lines)
            raise ConfigError(f"Invalid configuration in {_files_text(files) or 'the config'} ({n} problem"
                              f"{'s' if n > 1 else ''}); nothing was run and existing results are unchanged:\n"
                              + "\n".join(f"  - {line}" for line in lines))
        return config
    except ConfigError:
        raise
    except WorkflowError:
        schema = (dict(schema_path) if isinstance(schema_path, Mapping)
                  else yaml.safe_load(Path(schema_path).read_text()))
        lines = explain(config, schema, files, example, overrides)
        if not lines:  # should not happen: fall back to Snakemake's own message
            raise
        n = len(lines)
        origin = _files_text(files) + (" and --config" if files and overrides else "")
        msg = (f"Invalid configuration in {origin} ({n} problem{'s' if n > 1 else ''}); "
               "nothing was run and existing results are unchanged:\n"
               + "\n".join(f"  - {line}" for line in lines)
               + f"\nValid values: {SCHEMA_SOURCES if isinstance(schema_path, Mapping) else schema_path}; "
               + "a complete valid example: "
               + (str(example) if example else "config/default.yaml") + ".")
        raise ConfigError(msg) from None


#: Config keys renamed since results bundles were first made: ``(section, old name, new name, why)``
#: (each experiment's ``renamed_keys``, :class:`klvae.registry.Experiment`). :func:`migrate` applies
#: them to the config a bundle carries, so today's code renders old bundles.
RENAMED_KEYS = tuple((e.section, old, new, why) for e in EXPERIMENTS for old, new, why in e.renamed_keys)

#: Config values renamed since results bundles were first made: ``(dotted key, old value, new value, why)``
#: (each experiment's ``renamed_values``).
RENAMED_VALUES = tuple(renamed for e in EXPERIMENTS for renamed in e.renamed_values)


def migrate(config: dict) -> list[str]:
    """Rename the keys of :data:`RENAMED_KEYS` and the values of :data:`RENAMED_VALUES` in
    ``config`` (in place), for a results bundle's config written by an earlier version.

    Returns:
        One line per renamed key (``"e3.kl_weight -> e3.fact (why)"``); empty when nothing changed.

    Raises:
        ValueError: both the old and the new name are set (the bundle's config is ambiguous).
    """
    done = []
    for section, old, new, why in RENAMED_KEYS:
        part = config.get(section)
        if not isinstance(part, dict) or old not in part:
            continue
        if new in part:
            raise ValueError(f"{section}.{old} and {section}.{new} are both set; {section}.{old} is the old "
                             f"name of {section}.{new} ({why}): keep one")
        part[new] = part.pop(old)
        done.append(f"{section}.{old} -> {section}.{new} ({why})")
    for dotted, old, new, why in RENAMED_VALUES:
        *parents, key = dotted.split(".")
        part = config
        for name in parents:
            part = part.get(name) if isinstance(part, dict) else None
        if isinstance(part, dict) and part.get(key) == old:
            part[key] = new
            done.append(f"{dotted}: {old!r} -> {new!r} ({why})")
    return done
