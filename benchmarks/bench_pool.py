"""Compare syncq's WorkerPool with concurrent.futures.ThreadPoolExecutor.

Two measurements, both with 4 worker threads:

1. Throughput: submit 100,000 no-op tasks, then wait for all of them. The
   pools are created and warmed up once, and each round reuses them.
2. Memory of `map` over 2,000,000 items, as the tracemalloc peak and the growth
   of the process's maximum resident set size. `WorkerPool.map` reads its input
   a bounded distance ahead. `ThreadPoolExecutor.map` submits every item before
   it returns, so its peak grows with the input. Because tracemalloc slows
   allocation several times over, the executor's traced run uses a smaller
   input, and its 2,000,000-item run is measured untraced, by resident set size.

Run from the repository root::

    python -m benchmarks.bench_pool [--quick] [--rounds N]
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import pathlib
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor

if __package__ in (None, ""):
    # Run as a file: make the repository root importable, as `python -m` does.
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from benchmarks._harness import (
    Settings,
    format_ratio,
    format_table,
    machine_lines,
    parse_settings,
)
from syncq import WorkerPool

WORKERS = 4

TASKS = 100_000
TASKS_QUICK = 10_000
WARM_UP_TASKS = 2_000

MAP_ITEMS = 2_000_000
MAP_ITEMS_QUICK = 50_000
# Input size of the executor's traced map run: a tenth of the full input.
EXECUTOR_TRACED_ITEMS = 200_000
EXECUTOR_TRACED_ITEMS_QUICK = 20_000

MIB = 1024 * 1024

WORKER_POOL = f"syncq WorkerPool({WORKERS})"
EXECUTOR = f"ThreadPoolExecutor({WORKERS})"


def noop() -> None:
    """Return at once: the task that the throughput rounds submit."""
    return None


def identity(item: int) -> int:
    """Return `item`: the function that the map runs apply."""
    return item


@dataclasses.dataclass(frozen=True)
class Round:
    """The times of one throughput round, in seconds."""

    submit: float
    """From the first `submit` until the last one returned."""
    total: float
    """From the first `submit` until every future was done."""


def _run_round(pool: Executor, tasks: int) -> Round:
    start = time.perf_counter()
    futures: list[Future[None]] = [pool.submit(noop) for _ in range(tasks)]
    submitted = time.perf_counter()
    concurrent.futures.wait(futures)
    done = time.perf_counter()
    for future in futures:
        # Raises if a task failed, which would make the round meaningless.
        future.result()
    return Round(submit=submitted - start, total=done - start)


def _throughput_table(settings: Settings) -> str:
    tasks = TASKS_QUICK if settings.quick else TASKS
    names = (WORKER_POOL, EXECUTOR)
    rounds: dict[str, list[Round]] = {name: [] for name in names}
    with WorkerPool(WORKERS) as worker_pool, ThreadPoolExecutor(WORKERS) as executor:
        pools: dict[str, Executor] = {WORKER_POOL: worker_pool, EXECUTOR: executor}
        for pool in pools.values():
            _run_round(pool, WARM_UP_TASKS)
        for _ in range(settings.rounds):
            for name in names:
                rounds[name].append(_run_round(pools[name], tasks))

    medians = {name: statistics.median(r.total for r in rounds[name]) for name in names}
    reference = tasks / medians[EXECUTOR]
    headers = [
        "pool",
        "median s",
        "min s",
        "median submit s",
        "tasks/s",
        "µs/task",
        "throughput vs executor",
    ]
    rows = []
    for name in names:
        median = medians[name]
        rows.append(
            [
                name,
                f"{median:.3f}",
                f"{min(r.total for r in rounds[name]):.3f}",
                f"{statistics.median(r.submit for r in rounds[name]):.3f}",
                f"{tasks / median:,.0f}",
                f"{median / tasks * 1e6:.2f}",
                format_ratio(tasks / median, reference),
            ]
        )
    title = (
        f"## Throughput: {tasks:,} no-op tasks, submit all then wait all, "
        f"{settings.rounds} rounds"
    )
    return title + "\n\n" + format_table(headers, rows)


def _max_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclasses.dataclass(frozen=True)
class MapRun:
    """The cost of one `map` over `items` inputs."""

    name: str
    items: int
    traced: bool
    seconds: float
    peak_mib: float | None
    """The tracemalloc peak, or None for an untraced run."""
    rss_growth_mib: float
    """How far the process's maximum resident set size rose during the run."""


def _run_map(name: str, pool: Executor, items: int, *, traced: bool) -> MapRun:
    rss_before = _max_rss_mib()
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    expected = 0
    for result in pool.map(identity, range(items)):
        if result != expected:
            raise RuntimeError(f"{name}.map returned {result!r} for item {expected}")
        expected += 1
    seconds = time.perf_counter() - start
    peak_mib = None
    if traced:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peak_mib = peak / MIB
    if expected != items:
        raise RuntimeError(f"{name}.map returned {expected} results for {items}")
    return MapRun(name, items, traced, seconds, peak_mib, _max_rss_mib() - rss_before)


def _map_runs(settings: Settings) -> list[MapRun]:
    items = MAP_ITEMS_QUICK if settings.quick else MAP_ITEMS
    traced_items = (
        EXECUTOR_TRACED_ITEMS_QUICK if settings.quick else EXECUTOR_TRACED_ITEMS
    )
    # The maximum resident set size only rises, so the pool's run, expected to
    # use the least memory, goes first and the executor's full-size run second.
    # The traced executor run goes last, because its growth is not reported.
    with WorkerPool(WORKERS) as worker_pool:
        runs = [_run_map(WORKER_POOL, worker_pool, items, traced=True)]
    with ThreadPoolExecutor(WORKERS) as executor:
        runs.append(_run_map(EXECUTOR, executor, items, traced=False))
    with ThreadPoolExecutor(WORKERS) as executor:
        runs.append(_run_map(EXECUTOR, executor, traced_items, traced=True))
    return runs


def _map_table(runs: Sequence[MapRun]) -> str:
    headers = [
        "pool",
        "tracemalloc",
        "items",
        "seconds",
        "µs/item",
        "tracemalloc peak MiB",
        "peak bytes/item",
        "max RSS growth MiB",
    ]
    rows = []
    for index, run in enumerate(runs):
        last = index == len(runs) - 1
        peak = "-" if run.peak_mib is None else f"{run.peak_mib:,.2f}"
        per_item = "-"
        if run.peak_mib is not None:
            per_item = f"{run.peak_mib * MIB / run.items:,.1f}"
        rows.append(
            [
                run.name,
                "on" if run.traced else "off",
                f"{run.items:,}",
                f"{run.seconds:.1f}",
                f"{run.seconds / run.items * 1e6:.2f}",
                peak,
                per_item,
                # The last run starts from a high-water mark set by the run before.
                "-" if last else f"{run.rss_growth_mib:,.0f}",
            ]
        )
    title = f"## Memory of map, {WORKERS} workers, results read as they come"
    return title + "\n\n" + format_table(headers, rows, text_columns=2)


def _estimate_line(runs: Sequence[MapRun]) -> str:
    traced = runs[-1]
    full = runs[0].items
    if traced.peak_mib is None:
        return ""
    estimate = traced.peak_mib / traced.items * full
    return (
        f"Estimate, not a measurement: at its traced bytes per item, "
        f"{traced.name}.map over {full:,} items would peak near "
        f"{estimate:,.0f} MiB under tracemalloc."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the pool benchmark, print its tables and return the exit status."""
    settings = parse_settings(__doc__.splitlines()[0] if __doc__ else "", argv)
    print("# bench_pool: WorkerPool against ThreadPoolExecutor")
    print()
    for line in machine_lines(()):
        print(f"- {line}")
    print()
    print(_throughput_table(settings))
    runs = _map_runs(settings)
    print()
    print(_map_table(runs))
    print()
    print(_estimate_line(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
