"""Benchmarks: training-step timings of the E2 strategies (:mod:`klvae.bench.timing`)."""
