"""Generic thin rule body: call one klvae library function with the rule's files and params.

A rule sets ``params: **library_call("klvae.module:function"), kwargs={...}``, ``log:`` and
``script: CALL`` (``workflow/rules/call.smk``). The function is called with every named input
and named output of the rule under its name, plus ``params.kwargs`` and ``threads`` when it
accepts that (:func:`call_kwargs`). A named input or output the function has no parameter for
is an error naming the rule, the file's name and the parameters the function accepts -- unless
the input is declared a dependency only (``library_call(..., deps_only=["after"])``, e.g. the
report waiting for every result), which is then passed to no one. An unnamed input (it would
reach no one) and a ``params.kwargs`` key that is also the name of an input or output (one of
the two would be lost) are errors too. Snakemake runs this in its own Python process.

At the end the job's time split (process start-up, imports, compilation, training; see
``klvae.bench.phases``) is written next to its log as ``<log>.phases.json``.

What the job prints (Python's stdout and stderr: progress, Keras logs, tracebacks) goes to the
console as before and is also copied to the rule's log file. Messages that native libraries
write straight to file descriptor 2 (TensorFlow's C++ logging) reach the console only.
"""

import importlib
import inspect
import sys
import time
import traceback


class _Tee:
    """A text stream that writes to the console stream and to the job's log file."""

    def __init__(self, console, log):
        self.console, self.log = console, log

    def write(self, text):
        self.log.write(text)
        return self.console.write(text)

    def flush(self):
        self.log.flush()
        self.console.flush()

    def isatty(self):
        return False

    def __getattr__(self, name):  # encoding, fileno, ... as the console stream has them
        return getattr(self.console, name)


T_CALL = time.time()  # the job's phases (klvae.bench.phases): start-up ends here


class CallError(TypeError):
    """A rule's named files do not match its function's parameters; the message says how to fix it."""


def unnamed_files(all_files, named: dict) -> list[str]:
    """The files of ``all_files`` (a rule's input or output list, in order) that no name covers.

    Args:
        all_files: every path of the rule's input (or output), named or not, as Snakemake lists them.
        named: ``{name: path or list of paths}`` of the named ones.

    Returns:
        The unnamed paths, in order (each occurrence counted once per name that covers it).
    """
    left: dict[str, int] = {}
    for value in named.values():
        for path in ([value] if isinstance(value, str) else list(value)):
            left[str(path)] = left.get(str(path), 0) + 1
    out = []
    for path in map(str, all_files):
        if left.get(path, 0) > 0:
            left[path] -= 1
        else:
            out.append(path)
    return out


def call_kwargs(rule: str, func_name: str, func, inputs: dict, outputs: dict, kwargs: dict | None = None,
                deps_only=(), threads: int | None = None, unnamed_inputs=()) -> dict:
    """The keyword arguments ``func`` is called with for one job of ``rule``.

    Args:
        rule: the rule's name (for messages).
        func_name: ``"klvae.module:function"`` (for messages).
        func: the function; its parameters come from :func:`inspect.signature`.
        inputs, outputs: the rule's named inputs and outputs, ``{name: path or list of paths}``.
        kwargs: ``params.kwargs`` (passed as given; none may share a name with an input or output).
        deps_only: names of inputs the job only depends on: passed to no one.
        threads: the job's threads, passed when ``func`` has a ``threads`` parameter.
        unnamed_inputs: the rule's input files without a name (:func:`unnamed_files`): any is an
            error, since the function would never see it. (Unnamed outputs are allowed: a function
            such as the bundle extraction writes them under a folder it is given.)

    Returns:
        ``{name: value}``: every named input but ``deps_only``, every named output, the kwargs
        and ``threads``.

    Raises:
        CallError: a named input (not in ``deps_only``) or a named output that ``func`` has no
            parameter for (and no ``**kwargs``); a ``deps_only`` name that is not a named input,
            or that ``func`` does have a parameter for; an unnamed input; a
            ``params.kwargs`` key that is also a named input or output. The message names the
            rule, the file or key and the parameters ``func`` accepts.
    """
    params = inspect.signature(func).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    accepted = [n for n, p in params.items() if p.kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                                inspect.Parameter.VAR_KEYWORD)]
    deps = list(deps_only)
    shown = ", ".join(accepted) or "no parameters"
    problems = []
    if unnamed_inputs:
        problems.append(f"unnamed input {', '.join(repr(str(f)) for f in unnamed_inputs)}: {func_name} would never "
                        f"see it. Name it after the parameter that should receive it (input: name=...), or, if the "
                        f"job only waits for it, name it and declare it a dependency only (deps_only)")
    for key in (kwargs or {}):
        for kind, files in (("input", inputs), ("output", outputs)):
            if key in files:
                problems.append(f"params.kwargs[{key!r}] has the name of a named {kind} of the rule: one of the two "
                                f"would be lost. Rename the {kind} or the parameter")
    for name in deps:
        if name not in inputs:
            problems.append(f"deps_only names {name!r}, which is not a named input of the rule (named inputs: "
                            f"{', '.join(inputs) or 'none'})")
        elif name in accepted:
            problems.append(f"input {name!r} is declared deps_only, but {func_name} has a parameter {name!r}: "
                            "drop it from deps_only to pass it, or rename the input")
    if not takes_any:
        extra = [name for name in inputs if name not in accepted and name not in deps]
        if extra:
            names = ", ".join(repr(n) for n in extra)
            what = (f"named input {names} is not a parameter" if len(extra) == 1
                    else f"named inputs {names} are not parameters")
            problems.append(f"{what} of {func_name}. Rename each to the parameter that should receive it, or, if "
                            f"the job only waits for it, declare it a dependency only: "
                            f"**library_call({func_name!r}, deps_only={[*deps, *extra]!r})")
        for name in outputs:
            if name not in accepted:
                problems.append(f"named output {name!r} is not a parameter of {func_name}, so nothing would "
                                "write it. Rename it to the parameter that receives its path")
    if problems:
        raise CallError(f"rule {rule}: " + "; ".join(problems) + f". {func_name} accepts: {shown}.")
    out = {k: v for k, v in inputs.items() if k not in deps}
    out.update(outputs)
    out.update(kwargs or {})
    if threads is not None and ("threads" in accepted or takes_any):
        out["threads"] = threads
    return out


def main(smk) -> None:
    """Run one job: tee its output to the rule's log, call ``params.func`` (:func:`call_kwargs`)."""
    console = sys.stdout, sys.stderr
    log = open(smk.log[0], "w", buffering=1) if smk.log else None  # open for the job's lifetime
    if log is not None:
        sys.stdout, sys.stderr = _Tee(sys.stdout, log), _Tee(sys.stderr, log)
    try:
        module_name, func_name = smk.params.func.split(":")
        func = getattr(importlib.import_module(module_name), func_name)
        t_imported = time.time()
        inputs, outputs = dict(smk.input.items()), dict(smk.output.items())
        kwargs = call_kwargs(smk.rule, smk.params.func, func, inputs, outputs,
                             smk.params.get("kwargs", {}), smk.params.get("deps_only", ()), smk.threads,
                             unnamed_files(list(smk.input), inputs))
        start = time.time()
        print(f"[{smk.rule}] {smk.params.func}({', '.join(sorted(kwargs))})", file=sys.stderr, flush=True)
        func(**kwargs)
        print(f"[{smk.rule}] done in {time.time() - start:.1f} s", file=sys.stderr, flush=True)
        if smk.log:  # <log>.phases.json: start-up, imports, compilation, training (klvae.bench.phases)
            from klvae.bench.phases import record

            record(smk.log[0], smk.rule, dict(smk.wildcards.items()), T_CALL, t_imported)
    except BaseException:
        if log is not None:  # the traceback in the log too (Snakemake prints it on the console)
            log.write(traceback.format_exc())
        raise
    finally:
        if log is not None:
            sys.stdout.flush()
            sys.stderr.flush()
            sys.stdout, sys.stderr = console
            log.close()


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
