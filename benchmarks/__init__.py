"""Side-by-side benchmarks of syncq against peer libraries.

Run one with ``python -m benchmarks.bench_limiters`` (or ``bench_breaker``,
``bench_pool``) from the repository root, or all of them with
``python -m benchmarks.run_all``. Each takes ``--quick`` for a short smoke run.
"""
