"""Results bundles: a finished run's small outputs in one verifiable archive, compared, merged
and rendered anywhere.

* :mod:`klvae.bundle.core` -- the format: the allow-list, create, read and verify, extract.
* :mod:`klvae.bundle.compare` -- every number of two bundles side by side; per-experiment bundles
  merged into one.
* :mod:`klvae.bundle.study` -- the backend study's bundle.
* ``python -m klvae.bundle`` (:mod:`klvae.bundle.__main__`) -- the command line.

Below the report (the report reads bundles; nothing here imports
:mod:`klvae.report`).
"""
