"""Benchmarks, per experiment: training-step timings of the E2 strategies (:mod:`klvae.bench.e2`)
and the face pipeline's preprocessing, memory and input throughput (:mod:`klvae.bench.e3`)."""
