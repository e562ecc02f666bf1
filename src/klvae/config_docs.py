"""``config/README.md``: every configuration key, written from the schema and the profiles.

The schema -- the base schema ``workflow/schemas/config.schema.yaml`` plus each registered
experiment's settings (``src/klvae/registry/<id>.py``, :func:`klvae.registry.config_schema`) -- is
the one source of what a key means, admits and defaults to; this module renders it as a reference
page, one table per top-level section, with the value each shipped profile (``config/*.yaml``)
sets. ``make lint`` checks
that the committed page is current (``python -m klvae.config_docs --check``), so the page
cannot drift from the schema.

Usage::

    python -m klvae.config_docs            # rewrite config/README.md
    python -m klvae.config_docs --check    # exit 1 (and say what to run) if it is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from klvae.config import expected
from klvae.registry import config_schema

ROOT = Path(__file__).resolve().parents[2]
#: The base schema (the experiments' settings are added to it: :func:`schema`).
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
CONFIG_DIR = ROOT / "config"
PAGE = CONFIG_DIR / "README.md"


def _value(v) -> str:
    """A YAML value as it is written in a profile, for a table cell."""
    if v is None:
        return "`null`"
    text = json.dumps(v) if not isinstance(v, str) else v
    return f"`{text}`".replace("|", "\\|")


def _lookup(tree, path):
    for p in path:
        if not isinstance(tree, dict) or p not in tree:
            return None, False
        tree = tree[p]
    return tree, True


def leaves(schema: dict, path: tuple = ()) -> list[tuple[tuple, dict]]:
    """Every key of ``schema`` that is not itself an object of named keys: ``[(path, node)]``,
    depth first in the schema's order."""
    out = []
    for key, node in (schema.get("properties") or {}).items():
        sub = (*path, key)
        if node.get("properties"):
            out += leaves(node, sub)
        else:
            out.append((sub, node))
    return out


def profiles(config_dir: Path = CONFIG_DIR) -> dict[str, dict]:
    """The shipped profiles, ``{name: config}``, in a fixed order (quick, default, paper, others)."""
    found = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(config_dir.glob("*.yaml"))}
    order = [n for n in ("quick", "default", "paper") if n in found] + [n for n in found if n not in
                                                                        ("quick", "default", "paper")]
    return {n: found[n] for n in order}


def schema() -> dict:
    """The whole config schema: :data:`SCHEMA` plus every registered experiment's settings."""
    return config_schema(SCHEMA)


def render(schema: dict, shipped: dict[str, dict]) -> str:
    """The page's markdown: an introduction, then one table per top-level section with
    ``key | admits | schema default | <profile>.yaml ... | meaning`` (top-level scalar keys
    first; a profile's cell is empty where it leaves the key to the default)."""
    names = list(shipped)
    lines = [
        "# Configuration reference",
        "",
        "Every key a profile may set, written from the config schema -- `workflow/schemas/config.schema.yaml`",
        "plus each experiment's settings in `src/klvae/registry/<id>.py` -- by `python -m klvae.config_docs`",
        "(do not edit by hand; `make lint` checks it is current).",
        "A profile is one YAML file in this folder, validated against the schema before any job",
        "runs (unknown keys, wrong types and out-of-range values are refused with the key named);",
        "keys it leaves out take the default. Run one with `make report PROFILE=<name>`.",
        "",
        "Glossary: one name per scale of the KL weight. `c` (`e1.coefficients`, the β of β-VAEs)",
        "multiplies the KL divergence in nats, summed over latent dimensions, against the BCE summed",
        "over pixels (nats per image). `fact` (`e2.fact`, `e3.fact`: the posts' name) multiplies the",
        "posts' KL_mean, averaged over latent dimensions, against the *mean* BCE per pixel value.",
        "`fact = c·z_dim/(2·n_pixels)` relates them (`klvae.losses.c_to_fact`, the one place",
        "that converts), so the posts' `fact` of 6.5e-4 (`e2.fact`) is c ≈ 0.51 at z_dim 2 and",
        "c ≈ 0.085 at z_dim 12 on MNIST's 784 pixels. Models, tables and files use the same names.",
        "",
    ]
    sections: dict[str, list] = {}
    for path, node in leaves(schema):
        sections.setdefault(path[0] if len(path) > 1 else "", []).append((path, node))
    for section, items in sections.items():
        head = (schema["properties"][section].get("description") or "").split() if section else []
        lines += [f"## `{section}`" if section else "## Top-level keys", ""] + ([" ".join(head), ""] if head else [])
        lines.append("| key | admits | schema default | " + " | ".join(f"`{n}.yaml`" for n in names) + " | meaning |")
        lines.append("| --- | --- | --- | " + " | ".join("---" for _ in names) + " | --- |")
        for path, node in items:
            default = _value(node["default"]) if "default" in node else "(required)"
            cells = []
            for n in names:
                v, found = _lookup(shipped[n], path)
                cells.append(_value(v) if found else "")
            meaning = " ".join(str(node.get("description", "")).split()).replace("|", "\\|")
            lines.append(f"| `{'.'.join(path)}` | {expected(node)} | {default} | " + " | ".join(cells)
                         + f" | {meaning} |")
        lines.append("")
    return "\n".join(lines)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv=None) -> int:
    """Write ``config/README.md``, or with ``--check`` compare it and exit 1 if it is stale."""
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--check", action="store_true", help="only check that config/README.md is current")
    args = a.parse_args(argv)
    text = render(schema(), profiles())
    if args.check:
        if not PAGE.is_file() or PAGE.read_text() != text:
            print(f"{_shown(PAGE)} is not current with the schema and the profiles: "
                  "run `.venv/bin/python -m klvae.config_docs` and commit it", file=sys.stderr)
            return 1
        print(f"{_shown(PAGE)} is current")
        return 0
    PAGE.write_text(text)
    print(f"wrote {_shown(PAGE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
