"""Layers that only look down, enforced both ways: ``klvae.report`` and ``klvae.figures`` read
files; they never import the models, the strategies, the training code, the Keras backend, the
experiments or a deep-learning framework, and the report imports no matplotlib either. And the
mirror: nothing outside ``klvae.report`` imports it (the report is the top floor), and the only
import circle among ``klvae``'s modules is the strategy registry's plug-in loop.

The imports are read with :mod:`ast` (never executed): ``import x``, ``from x import y``,
relative imports, imports inside functions, and ``importlib.import_module("x")`` /
``__import__("x")`` with a literal name. A ``klvae`` module that a checked module imports is
walked too, transitively, with the packages along the way (importing ``klvae.figures.common``
runs ``klvae/figures/__init__.py``), so ``report -> figures.common -> matplotlib`` is caught.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from klvae.code_digest import _module_file  # the same lookup the rules' code digests use

SRC = Path(__file__).resolve().parents[1] / "src"

#: klvae modules that need Keras (or train): below the report and the figures.
KLVAE_BELOW = ("klvae.models", "klvae.strategies", "klvae.training", "klvae.backend", "klvae.experiments",
               "klvae.callbacks")
#: Deep-learning frameworks (import names).
FRAMEWORKS = ("keras", "tensorflow", "jax", "torch", "tf_keras")
#: Layer -> what no module of it may import, directly or through other klvae modules.
LAYERS = {
    "klvae.figures": KLVAE_BELOW + FRAMEWORKS,
    "klvae.report": KLVAE_BELOW + FRAMEWORKS + ("matplotlib",),
}


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def imports(root: Path, module: str) -> list[tuple[int, str]]:
    """``(line, imported module name)`` for every import anywhere in ``module``'s source.

    ``from a.b import c`` gives ``a.b`` and, where ``a/b/c`` is a module under ``root``, ``a.b.c``;
    relative imports are resolved against ``module``'s package.
    """
    path = _module_file(root, module)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names
                      if a.name != "*" and _module_file(root, f"{base}.{a.name}") is not None]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            called = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if called in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value))
    return found


def _matches(name: str, prefixes) -> str | None:
    return next((p for p in prefixes if name == p or name.startswith(p + ".")), None)


def forbidden_imports(root: Path, layer: str, forbidden, package: str = "klvae") -> list[str]:
    """Every forbidden import reachable from a module of ``layer`` (a package under ``root``).

    Returns one line per finding: the layer's module, the file and line where the forbidden
    name is imported, the chain of ``package`` modules that leads there, and the forbidden name.
    """
    layer_dir = root.joinpath(*layer.split("."))
    modules = sorted(
        ".".join(p.relative_to(root).with_suffix("").parts[:-1] if p.name == "__init__.py"
                 else p.relative_to(root).with_suffix("").parts)
        for p in layer_dir.rglob("*.py"))
    out = []
    for start in modules:
        chains = {start: [start]}
        todo = [*[m for m in _with_parents(start)[:-1] if _module_file(root, m)], start]
        for m in todo[:-1]:
            chains[m] = [start, m]
        seen: set[str] = set()
        while todo:
            mod = todo.pop(0)
            if mod in seen:
                continue
            seen.add(mod)
            for line, name in imports(root, mod):
                bad = _matches(name, forbidden)
                where = f"{_module_file(root, mod).relative_to(root.parent)}:{line}"
                if bad:
                    via = " -> ".join(chains[mod])
                    out.append(f"{start}: {where} imports {name} (forbidden: {bad}; via {via})")
                    continue
                if name == package or name.startswith(package + "."):
                    for dep in _with_parents(name):
                        if dep not in seen and dep not in chains and _module_file(root, dep) is not None:
                            chains[dep] = chains[mod] + [dep]
                            todo.append(dep)
    return sorted(set(out))


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_report_and_figures_import_nothing_below_them(layer):
    found = forbidden_imports(SRC, layer, LAYERS[layer])
    assert not found, "\n".join(found)


#: What the experiment registry (klvae.registry) may not import: it sits low -- the workflow, the
#: bundles, the config checks and the report read it -- so it is Keras-free, pandas-free and imports no
#: ``klvae`` module but its own.
REGISTRY_FORBIDDEN = FRAMEWORKS + ("numpy", "pandas", "matplotlib", "snakemake")


def _klvae_outside(root: Path, package: str) -> tuple[str, ...]:
    """Every top-level ``klvae`` module and package but ``package`` (and the ``klvae`` package itself)."""
    return tuple(sorted(f"klvae.{p.stem}" for p in (root / "klvae").iterdir()
                        if p.stem not in (package, "__init__", "__pycache__")
                        and (p.suffix == ".py" or (p / "__init__.py").is_file())))


def test_the_experiment_registry_sits_low():
    found = forbidden_imports(SRC, "klvae.registry", _klvae_outside(SRC, "registry") + REGISTRY_FORBIDDEN)
    assert not found, "klvae.registry imports what sits above it:\n" + "\n".join(found)


#: The top floor: only its own modules may import it.
TOP = "klvae.report"
#: The one import circle that belongs: the strategy registry (and the package's face, which
#: exposes it) imports its built-in plug-ins by name, and each plug-in imports ``register``.
ALLOWED_CIRCLES = ({"klvae.strategies", "klvae.strategies.registry", "klvae.strategies.baseline",
                    "klvae.strategies.encoder_layer", "klvae.strategies.end_layer", "klvae.strategies.gradient_tape",
                    "klvae.strategies.model_add_loss", "klvae.strategies.tensor_transfer"},)


def all_modules(root: Path, package: str = "klvae") -> list[str]:
    """Every module of ``package`` under ``root`` (a package by its dotted name, as ``__init__.py``)."""
    return sorted(".".join(p.relative_to(root).with_suffix("").parts[:-1] if p.name == "__init__.py"
                           else p.relative_to(root).with_suffix("").parts)
                  for p in root.joinpath(package).rglob("*.py"))


def import_graph(root: Path, package: str = "klvae") -> dict[str, dict[str, int]]:
    """``{module: {imported package module: line}}``: every direct import, lazy ones included."""
    graph = {}
    for mod in all_modules(root, package):
        edges: dict[str, int] = {}
        for line, name in imports(root, mod):
            if (name == package or name.startswith(package + ".")) and _module_file(root, name) is not None \
                    and name != mod:
                edges.setdefault(name, line)
        graph[mod] = edges
    return graph


def upward_imports(root: Path, top: str = TOP, package: str = "klvae") -> list[str]:
    """``"<file>:<line> imports <name>"`` for every import of ``top`` by a module outside it."""
    out = []
    for mod, edges in import_graph(root, package).items():
        if _matches(mod, (top,)):
            continue
        for name, line in edges.items():
            if _matches(name, (top,)):
                out.append(f"{_module_file(root, mod).relative_to(root.parent)}:{line} imports {name}")
    return sorted(out)


def import_circles(root: Path, package: str = "klvae") -> list[set[str]]:
    """The strongly connected parts (more than one module) of the import graph: Tarjan's algorithm."""
    graph = import_graph(root, package)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = set()
            while True:
                w = stack.pop()
                on.discard(w)
                part.add(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(part)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_nothing_below_the_report_imports_it():
    found = upward_imports(SRC)
    assert not found, "the report is the top floor; these import it:\n" + "\n".join(found)


def test_the_only_import_circle_is_the_strategy_registry():
    circles = [sorted(c) for c in import_circles(SRC) if c not in ALLOWED_CIRCLES]
    assert not circles, f"import circles: {circles}"
    assert [c for c in import_circles(SRC) if c in ALLOWED_CIRCLES], "the registry's plug-in loop was not seen"


def test_a_planted_upward_import_and_a_planted_circle_are_caught(tmp_path):
    src = _fake_package(tmp_path / "src", {
        "klvae/__init__.py": "",
        "klvae/stats.py": "import math\n",
        "klvae/bundle/__init__.py": "",
        "klvae/bundle/core.py": "def f():\n    from klvae.report.scorecard import LEVEL\n    return LEVEL\n",
        "klvae/bundle/compare.py": "from klvae.bundle import core\n",
        "klvae/a.py": "from klvae import b\n",
        "klvae/b.py": "def g():\n    from klvae import a\n    return a\n",
        "klvae/report/__init__.py": "",
        "klvae/report/scorecard.py": "from klvae.stats import math\n",
        "klvae/report/compare.py": "from klvae.bundle import compare\n",
    })
    assert upward_imports(src) == ["src/klvae/bundle/core.py:2 imports klvae.report.scorecard"]
    assert import_circles(src) == [{"klvae.a", "klvae.b"}]


def _fake_package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_walk_reports_direct_lazy_transitive_and_relative_imports(tmp_path):
    src = _fake_package(tmp_path / "src", {
        "klvae/__init__.py": "",
        "klvae/helper.py": "import os\n\n\ndef f():\n    import keras\n    return keras\n",
        "klvae/clean.py": "import numpy\n",
        "klvae/models/__init__.py": "",
        "klvae/models/faces.py": "import keras\n",
        "klvae/figures/__init__.py": "import matplotlib\n",
        "klvae/figures/common.py": "def fmt(c):\n    return str(c)\n",
        "klvae/report/__init__.py": "",
        "klvae/report/ok.py": "from klvae import clean\nfrom . import tables\n",
        "klvae/report/tables.py": "import math\n",
        "klvae/report/direct.py": "import json\n\nfrom klvae.models.faces import N\n",
        "klvae/report/lazy.py": "def g():\n    from klvae import helper\n    return helper\n",
        "klvae/report/plots.py": "from klvae.figures.common import fmt\n",
        "klvae/report/relative.py": "from ..models import faces\n",
        "klvae/report/dynamic.py": "import importlib\n\nTF = importlib.import_module('tensorflow')\n",
    })
    found = forbidden_imports(src, "klvae.report", LAYERS["klvae.report"])
    assert found == [
        "klvae.report.direct: src/klvae/report/direct.py:3 imports klvae.models.faces "
        "(forbidden: klvae.models; via klvae.report.direct)",
        "klvae.report.dynamic: src/klvae/report/dynamic.py:3 imports tensorflow "
        "(forbidden: tensorflow; via klvae.report.dynamic)",
        "klvae.report.lazy: src/klvae/helper.py:5 imports keras (forbidden: keras; via klvae.report.lazy -> "
        "klvae.helper)",
        "klvae.report.plots: src/klvae/figures/__init__.py:1 imports matplotlib (forbidden: matplotlib; via "
        "klvae.report.plots -> klvae.figures)",
        "klvae.report.relative: src/klvae/report/relative.py:1 imports klvae.models "
        "(forbidden: klvae.models; via klvae.report.relative)",
        "klvae.report.relative: src/klvae/report/relative.py:1 imports klvae.models.faces "
        "(forbidden: klvae.models; via klvae.report.relative)",
    ]
    # the figures may import matplotlib, and nothing of the fake figures package reaches further
    assert forbidden_imports(src, "klvae.figures", LAYERS["klvae.figures"]) == []


# --- facts the report used to import, now read from the files the rules wrote -------------------------
def _matrix_rows():
    from klvae.formatting import KERAS2, KERAS3

    def row(form, flavour, backend, runs, version):
        return {"strategy": "end_layer", "post": "VI", "form": form, "keras_flavour": flavour,
                "backend": backend, "keras_version": version, "tensorflow": "2.19.0", "runs": runs, "stage": "fit",
                "exception": "" if runs == "yes" else "TypeError", "message": "" if runs == "yes" else "no",
                "raised_at": "", "steps": 2, "final_loss": 0.5, "saves_keras": "", "source": ""}

    rows = [row("post", KERAS2, "tensorflow", "yes", "2.19.0")]
    for b in ("tensorflow", "jax", "torch"):
        rows += [row("post", KERAS3, b, "no", "3.10.0"), row("project", KERAS3, b, "yes" if b != "torch" else "n/a",
                                                                  "3.10.0")]
    return rows


def test_compatibility_table_takes_the_backends_from_the_summary_it_reads(tmp_path):
    pytest.importorskip("keras")
    from klvae.io import write_rows
    from klvae.report.e2 import compatibility_table
    from klvae.strategies import compat

    rows = _matrix_rows()
    write_rows(tmp_path / "long.csv", rows)
    write_rows(tmp_path / "summary.csv", compat.summary_table(rows))
    md, values = compatibility_table(tmp_path / "summary.csv", tmp_path / "long.csv")
    assert md["compat"].startswith("| strategy | post | Keras 2 (tf-keras 2.19.0) | Keras 3 3.10.0, TensorFlow | "
                                   "Keras 3 3.10.0, JAX | Keras 3 3.10.0, PyTorch |")
    assert md["compat_backends"].startswith("| strategy | post | Keras 3, TensorFlow | Keras 3, JAX | "
                                            "Keras 3, PyTorch |")
    assert values == {"keras2": "2.19.0", "keras3": "3.10.0", "tensorflow": "2.19.0", "n_fail_keras3": 1,
                      "n_fail_keras2": 0, "n_strategies": 1, "n_project_runs_tensorflow": 1,
                      "n_project_runs_jax": 1, "n_project_runs_torch": 0}
    summary = (tmp_path / "summary.csv").read_text().replace("project_form_", "other_")
    (tmp_path / "bad.csv").write_text(summary)
    with pytest.raises(ValueError, match=r"bad\.csv: no project_form_<backend> column"):
        compatibility_table(tmp_path / "bad.csv", tmp_path / "long.csv")
