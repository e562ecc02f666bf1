"""``python -m klvae.registry``: the registered experiments; the GPU profile's part written from them.

Usage::

    python -m klvae.registry                        # list the experiments
    python -m klvae.registry --gpu-profile          # rewrite workflow/profiles/gpu/config.yaml's jobs
    python -m klvae.registry --gpu-profile --check  # exit 1 (and say what to run) if it is stale
    python -m klvae.registry --schema               # the whole config schema (YAML)
"""

from __future__ import annotations

import argparse
import sys

import yaml

from klvae.registry import EXPERIMENTS, config_schema
from klvae.registry.profile import GPU_PROFILE, write
from klvae.registry.schema import ROOT


def main(argv=None) -> int:
    a = argparse.ArgumentParser(prog="python -m klvae.registry", description=__doc__.splitlines()[0])
    a.add_argument("--gpu-profile", action="store_true", help="write the GPU profile's jobs from the registry")
    a.add_argument("--check", action="store_true", help="with --gpu-profile: only check that it is current")
    a.add_argument("--schema", action="store_true", help="print the whole config schema")
    args = a.parse_args(argv)
    shown = GPU_PROFILE.relative_to(ROOT) if GPU_PROFILE.is_relative_to(ROOT) else GPU_PROFILE
    if args.gpu_profile:
        current = write(check=args.check)
        if args.check and not current:
            print(f"{shown} is not current with the experiment registry: run "
                  "`.venv/bin/python -m klvae.registry --gpu-profile` and commit it", file=sys.stderr)
            return 1
        print(f"{shown} is current" if current else f"wrote {shown}")
        return 0
    if args.schema:
        print(yaml.safe_dump(config_schema(), sort_keys=False, allow_unicode=True), end="")
        return 0
    for e in EXPERIMENTS:
        print(f"{e.id}: {e.title} (tables: {', '.join(e.tables) or 'none'}; GPU jobs: {', '.join(e.gpu) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
