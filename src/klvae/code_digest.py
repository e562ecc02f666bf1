"""Which ``klvae`` source files a rule's function runs, and one SHA-256 over their contents.

Every Snakemake rule calls one library function (``params.func = "klvae.module:function"``,
``workflow/scripts/call.py``). Snakemake cannot see that code, so each rule also carries
``params.code``: the digest of the function's module and every ``klvae`` module it imports,
transitively (:func:`code_digest`). Snakemake's *params* rerun trigger then reruns a job, and
what depends on it, exactly when that code changed -- by content, so a fresh checkout (new
mtimes, same bytes) reruns no training, analysis or figure. (The workflow profile
``workflow/profiles/default`` leaves Snakemake's own ``code`` trigger out: for ``script:`` rules it
compares the script's mtime.)

Imports are read with :mod:`ast` from the repository's ``src/``, never executed:
``import klvae.x``, ``from klvae.x import y`` (``y`` a module or a name), relative imports, and
imports inside functions (lazy imports count: the function may run them). Packages'
``__init__.py`` files along the way count too, since importing a module runs them. A module
that only ever imports another by a computed name would be missed; the project has none
(:mod:`klvae.strategies.registry` imports its built-in strategies by name on purpose).
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

PACKAGE = "klvae"


def _module_file(root: Path, module: str) -> Path | None:
    """``klvae.a.b`` -> ``root/klvae/a/b.py`` or ``root/klvae/a/b/__init__.py`` (None if neither)."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imported(root: Path, module: str, path: Path) -> set[str]:
    """``klvae`` modules named by the import statements anywhere in ``path`` (and their packages)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from ..y import z
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # ``from pkg import name``: name may be a submodule; keep it when a file says so
            names = [base] + [f"{base}.{a.name}" for a in node.names if a.name != "*"]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                for candidate in (*_parents(name), name):
                    if _module_file(root, candidate) is not None:
                        found.add(candidate)
    return found


@lru_cache(maxsize=None)
def module_closure(root: str, module: str) -> tuple[str, ...]:
    """Sorted ``klvae`` modules that importing ``module`` can run: itself, its packages and
    everything they import, transitively.

    Args:
        root: the folder holding the ``klvae`` package (``<repo>/src``).
        module: dotted name, e.g. ``"klvae.figures.e1"``.

    Raises:
        FileNotFoundError: when ``module`` has no source file under ``root``.
    """
    base = Path(root)
    if _module_file(base, module) is None:
        raise FileNotFoundError(f"no source for module {module!r} under {base}")
    seen: set[str] = set()
    todo = [*_parents(module), module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(base, name)
        if path is not None:
            todo.extend(_imported(base, name, path) - seen)
    return tuple(sorted(n for n in seen if _module_file(base, n) is not None))


def code_digest(func: str, root: str | Path) -> str:
    """SHA-256 (hex, 16 characters) of the sources behind ``func`` = ``"klvae.module:function"``.

    The digest covers each file of :func:`module_closure` as ``<module name> NUL <bytes>``, in
    sorted order, so it changes when any of those files' contents change, a module is added to
    or dropped from the closure, and for nothing else (not mtimes, not the checkout's path).

    Raises:
        ValueError: ``func`` is not ``"module:function"``.
        FileNotFoundError: the module has no source under ``root``.
    """
    module, sep, name = func.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"params.func must be 'module:function', got {func!r}")
    h = hashlib.sha256()
    base = Path(root)
    for mod in module_closure(str(base), module):
        h.update(mod.encode() + b"\0" + _module_file(base, mod).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def rule_params(func: str, sources: str | Path, runner: str | Path | None = None, deps_only=(),
                extra_runners=()) -> dict:
    """A rule's params for calling ``func`` through ``workflow/scripts/call.py``:
    ``{"func": func, "code": <digest>}`` plus ``"deps_only"`` when given (``workflow/rules/call.smk``).

    The digest is :func:`code_digest` of ``func``; with ``runner`` (the path of ``call.py``)
    it also covers that script's bytes, so editing the one script every rule runs reruns every
    job, as Snakemake's mtime-based ``code`` trigger would, but by content; ``extra_runners``
    (e.g. ``call_backend.py``, which runs ``call.py`` on a rule's Keras backend) are covered too.

    Args:
        deps_only: names of the rule's inputs the job only waits for (``call.py`` passes them to
            no one; any other named input the function has no parameter for is an error).

    Raises:
        ValueError, FileNotFoundError: as :func:`code_digest`; FileNotFoundError also for a
        missing ``runner`` or extra runner.
    """
    digest = code_digest(func, sources)
    for script in ([runner] if runner is not None else []) + list(extra_runners):
        digest = hashlib.sha256(digest.encode() + b"\0" + Path(script).read_bytes()).hexdigest()[:16]
    params = {"func": func, "code": digest}
    if deps_only:
        params["deps_only"] = list(deps_only)
    return params


__all__ = ["code_digest", "module_closure", "rule_params"]
