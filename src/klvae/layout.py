"""Where a run's files go: one folder per profile, ``results/<profile>/``.

Every file a run of profile ``<profile>`` writes is under ``results/<profile>/`` (its data as
preprocessed for that profile, models, tables, figures, benchmarks, logs, report), so a quick
run never touches the default run's models and each profile keeps its own report. Shared by all
profiles: the raw downloads under ``data/`` (at the repository root) and the renders of results
bundles under ``results/from_bundle/<bundle>/``.

Before each profile had its own folder, a run wrote straight into ``results/`` (``results/e1``,
``results/report``, ``results/benchmarks/<profile>``, ...). :func:`old_layout_message` finds
such a run and says how to move it into its profile's folder, so the workflow never trains
everything again next to an old run that it no longer sees.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from klvae import registry

#: The folder that holds every profile's folder (relative to the working folder).
RESULTS_ROOT = "results"
#: What a run of the old layout wrote straight into ``results/``: each experiment's folder (the
#: registry's ids) and the shared ones (no profile is named like these).
OLD_TOP = (*registry.ids(), "data", "figures", "tables", "report", "study", "benchmarks", "logs")
#: Old-layout folders that were split by profile already (``results/benchmarks/<profile>/``).
OLD_PER_PROFILE = ("benchmarks", "logs")
#: The profile of ``make backend-study``, whose old results (``results/study/``) go to its own folder.
STUDY_PROFILE = "backend_study"


def results_dir(profile: str, root: str = RESULTS_ROOT) -> str:
    """A profile's results folder, ``results/<profile>``."""
    return f"{root}/{profile}"


def old_layout(root: str | Path = RESULTS_ROOT) -> list[str]:
    """The folders of an old-layout run in ``root`` (``e1``, ``report``, ...; empty when none)."""
    return [name for name in OLD_TOP if (Path(root) / name).is_dir()]


def old_layout_profile(root: str | Path = RESULTS_ROOT) -> str | None:
    """The profile of the old-layout run in ``root``: its run record's, else the only folder of
    ``benchmarks/`` (besides the backend study's); None when neither says."""
    record = Path(root) / "report" / "generated" / "run.json"
    try:
        profile = json.loads(record.read_text()).get("profile")
    except (OSError, ValueError, AttributeError):
        profile = None
    if profile:
        return str(profile)
    bench = Path(root) / "benchmarks"
    folders = sorted(d.name for d in bench.iterdir() if d.is_dir()) if bench.is_dir() else []
    runs = [f for f in folders if f != STUDY_PROFILE] or folders  # the backend study's are its own
    return runs[0] if len(runs) == 1 else None


def _move_commands(root: Path, found: list[str], old: str | None) -> list[str]:
    """The shell commands that move an old-layout run (``found`` in ``root``, of profile ``old``) to
    ``root/<profile>/``; the backend study's results (``study/``, made by the backend_study
    profile) to ``root/backend_study/`` with a copy of the MNIST arrays it was trained on, so that
    it is not trained again."""
    q = lambda p: shlex.quote(str(p))  # noqa: E731
    target = root / (old or "<profile>")
    study_apart = "study" in found and old != STUDY_PROFILE
    moved = [root / n for n in found if n not in OLD_PER_PROFILE and not (n == "study" and study_apart)]
    lines = [f"mkdir -p {q(target)}"]
    if moved:
        lines.append(f"mv {' '.join(q(p) for p in moved)} {q(target)}/")
    for name in OLD_PER_PROFILE:
        if name in found and (old is None or (root / name / old).is_dir()):
            lines.append(f"mv {q(root / name / (old or '<profile>'))} {q(target / name)}")
    if "report" in found:  # Snakemake keeps its records by path: the moved fragments would not be remade
        gen = f"{q(target)}/report/generated"
        lines.append(f"rm -f {gen}/*.md {gen}/*.vars.yml    # the report's text, remade naming the new folder")
    if study_apart:
        study = root / STUDY_PROFILE
        lines += [f"mkdir -p {q(study)}/data", f"mv {q(root / 'study')} {q(study)}/"]
        lines += [f"mv {q(root / name / STUDY_PROFILE)} {q(study / name)}" for name in OLD_PER_PROFILE
                  if (root / name / STUDY_PROFILE).is_dir()]
        if "data" in found:
            lines.append(f"cp -p {q(target)}/data/mnist.npz {q(target)}/data/mnist_provenance.json {q(study)}/data/"
                         "    # the study's MNIST, so it is not trained again")
    return lines


def old_layout_message(root: str | Path = RESULTS_ROOT, profile: str | None = None) -> str | None:
    """What to do about an old-layout run in ``root`` (None when there is none).

    Args:
        root: the ``results`` folder.
        profile: the profile about to run (named in the message).

    Returns:
        A message naming the folders found and the commands that move the run to
        ``results/<its profile>/`` (``benchmarks/<profile>/`` and ``logs/<profile>/`` become
        ``benchmarks/`` and ``logs/`` there) and remove the report's generated text (its
        fragments and variables, not the run record). Snakemake keeps what it knows of how each
        file was made (``.snakemake/metadata``) by path, so after the move it reruns nothing on
        its own -- no training, but no report fragment that names a path either; removed, those
        are remade from the moved data in seconds.
    """
    found = old_layout(root)
    if not found:
        return None
    root = Path(root)
    old = old_layout_profile(root)
    lines = _move_commands(root, found, old)
    leftovers = [f"{root / name}/" for name in OLD_PER_PROFILE if name in found]
    whose = (f"It is a {old}-profile run; move it into that profile's folder first" if old
             else "Its profile is not recorded; move it into its profile's folder first (put the name for <profile>)")
    if "study" in found and old != STUDY_PROFILE:
        whose += f", and the backend study's results into {root / STUDY_PROFILE}/"
    whose += ":"
    running = (f" This {profile} run would not see it: it writes to {root / profile}/ and would train everything anew."
               if profile else "")
    after = ("\n\nthen remove what is left in " + " and ".join(leftovers)
             + " (other profiles' times and logs; that run replaced their outputs)." if leftovers else "")
    return (f"{root}/ holds a run in the old layout ({', '.join(f'{root / n}/' for n in found)}), from before each "
            f"profile had its own folder {root}/<profile>/.{running} {whose}\n\n"
            + "\n".join(f"    {line}" for line in lines) + after
            + "\n\nOr delete the old folders to start afresh. Nothing was run.")
