"""The GPU profile's jobs on the card, written from the registry.

``workflow/profiles/gpu/config.yaml`` (a Snakemake workflow profile; ``docs/gpu.md``) declares the
card a resource of N slots (``resources: [gpu=N, ...]``, hand-written: it is the machine's). Which
rules take a slot, how many CPU threads and how much memory they get there is each experiment's
(:attr:`klvae.registry.spec.Experiment.gpu`): the part between the profile's two marker lines,
``set-resources`` and ``set-threads``, is written from the registry by :func:`render`
(``python -m klvae.registry --gpu-profile``; ``--check`` in ``make lint``), so a new experiment's
training rule gets its slot without a hand edit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from klvae.registry import EXPERIMENTS
from klvae.registry.schema import ROOT

#: The GPU profile.
GPU_PROFILE = ROOT / "workflow" / "profiles" / "gpu" / "config.yaml"
#: The first and last line of the generated part (found by their starts, ``# >>>`` and ``# <<<``).
BEGIN = "# >>> written from the experiment registry by `python -m klvae.registry --gpu-profile`; do not edit by hand"
END = "# <<< end of the part written from the registry"


def card_slots(text: str) -> int:
    """The card's slots, from the profile's ``resources: [gpu=N, ...]``.

    Raises:
        ValueError: the profile declares no ``gpu`` resource.
    """
    m = re.search(r"^resources:.*\bgpu\s*=\s*(\d+)", text, re.M)
    if not m:
        raise ValueError("the GPU profile declares no card (a line `resources: [gpu=<slots>, ...]`)")
    return int(m.group(1))


def jobs_block(experiments: Iterable, slots: int) -> str:
    """The generated part: ``set-resources`` (each training job one slot of ``slots``, each
    benchmark that times training steps all of them) and ``set-threads``."""
    experiments = tuple(experiments)
    jobs = [(rule, job) for e in experiments for rule, job in e.gpu.items()]
    lines = [BEGIN,
             "# Each experiment's jobs on the card (src/klvae/registry/<id>.py, `gpu=`): a training job takes",
             "# one slot; a benchmark that times training steps takes the whole card (and, by its threads,",
             "# all cores).",
             "set-resources:"]
    for whole in (False, True):
        for rule, job in jobs:
            if job.whole_card == whole:
                lines += [f"  {rule}:", f"    gpu: {slots if whole else 1}"]
                lines += [f"    mem_mb: {job.mem_mb}"] if job.mem_mb is not None else []
    threaded = [(rule, job.threads) for rule, job in jobs if job.threads is not None]
    if threaded:
        lines += ["# CPU threads of a training job on the GPU: the Python/XLA dispatch and the input stream;",
                  "# the jobs' threads leave cores for the analysis and figure jobs beside them.",
                  "set-threads:", *(f"  {rule}: {n}" for rule, n in threaded)]
    return "\n".join([*lines, END])


def render(text: str, experiments: Iterable) -> str:
    """``text`` (the GPU profile) with its generated part written anew from ``experiments``.

    Raises:
        ValueError: the profile lacks the marker lines or the card's resource.
    """
    m = re.search(r"^# >>>.*?^# <<<[^\n]*", text, re.M | re.S)
    if not m:
        raise ValueError("the GPU profile has no part written from the registry: add two lines, `# >>>` and "
                         "`# <<<`, where it goes")
    return text[:m.start()] + jobs_block(experiments, card_slots(text)) + text[m.end():]


def write(path: str | Path = GPU_PROFILE, experiments: Iterable | None = None, check: bool = False) -> bool:
    """Write the profile's generated part (or with ``check``, only say whether it is current).

    Returns:
        Whether the file was current.
    """
    path = Path(path)
    text = path.read_text()
    new = render(text, EXPERIMENTS if experiments is None else experiments)
    if not check and new != text:
        path.write_text(new)
    return new == text
