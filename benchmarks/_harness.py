"""Timing, table and machine-description helpers shared by the benchmarks."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import math
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Callable

__all__ = [
    "Case",
    "Loop",
    "Settings",
    "Timing",
    "format_ns",
    "format_ratio",
    "format_table",
    "machine_lines",
    "package_version",
    "parse_settings",
    "run_threads",
    "time_cases",
]

Loop = Callable[[int], object]
"""A benchmark body: performs the measured operation `n` times."""

# The maximum seconds a benchmark thread may run before the run counts as broken.
_THREAD_JOIN_TIMEOUT = 120.0

_REPOSITORY = pathlib.Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Case:
    """One contender in a side-by-side comparison."""

    name: str
    loop: Loop


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds per operation over several rounds of one case."""

    median: float
    minimum: float
    operations: int
    """Operations per round, summed over all threads."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """How long and how often each case runs."""

    quick: bool
    rounds: int
    round_seconds: float
    """The target duration of one round, which sets the operations per round."""


def parse_settings(description: str, argv: Sequence[str] | None = None) -> Settings:
    """Parse the command line that every benchmark accepts.

    Raises:
        SystemExit: The arguments are invalid, or ``--help`` was given.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="run short rounds at small sizes for a smoke test, so figures are rough",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="measured rounds per case (default: 7, or 3 with --quick)",
    )
    args = parser.parse_args(argv)
    rounds = args.rounds
    if rounds is None:
        rounds = 3 if args.quick else 7
    if rounds < 1:
        parser.error(f"--rounds must be at least 1, got {rounds}")
    round_seconds = 0.02 if args.quick else 0.2
    return Settings(quick=args.quick, rounds=rounds, round_seconds=round_seconds)


def run_threads(loop: Loop, n: int, threads: int) -> float:
    """Run `loop(n)` on `threads` threads released together and return the wall time.

    The clock starts when every thread has reached the start barrier and stops
    when the last one has finished.

    Raises:
        RuntimeError: A thread raised, or did not finish within two minutes.
    """
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def body() -> None:
        barrier.wait()
        try:
            loop(n)
        except BaseException as exc:
            errors.append(exc)

    workers = [
        threading.Thread(target=body, name=f"bench-{i}", daemon=True)
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join(_THREAD_JOIN_TIMEOUT)
    elapsed = time.perf_counter() - start
    if any(worker.is_alive() for worker in workers):
        raise RuntimeError(
            f"a benchmark thread did not finish within {_THREAD_JOIN_TIMEOUT:g} s"
        )
    if errors:
        raise RuntimeError("a benchmark thread raised") from errors[0]
    return elapsed


def _run_once(loop: Loop, n: int, threads: int) -> float:
    if threads == 1:
        start = time.perf_counter()
        loop(n)
        return time.perf_counter() - start
    return run_threads(loop, n, threads)


def _calibrate(loop: Loop, threads: int, round_seconds: float) -> int:
    # Grow n until one run lasts a tenth of a round, then scale it up to a round.
    # These runs also warm the case up: caches, lazily built state, branch history.
    n = 100
    while True:
        elapsed = _run_once(loop, n, threads)
        if elapsed >= round_seconds / 10 or n >= 100_000_000:
            break
        n *= 4
    per_call = max(elapsed, 1e-9) / n
    return max(1, math.ceil(round_seconds / per_call))


def time_cases(
    cases: Sequence[Case], settings: Settings, *, threads: int = 1
) -> list[Timing]:
    """Time each case over `settings.rounds` rounds, interleaving the cases.

    Every case is warmed up first. Then each round runs every case once, in
    turn, so a slow drift of the machine's speed affects all cases alike. With
    `threads` above 1, each case's loop runs on that many threads at once and
    the time per operation is the wall time divided by all their operations.

    Returns:
        One `Timing` per case, in the order of `cases`.
    """
    sizes = [_calibrate(case.loop, threads, settings.round_seconds) for case in cases]
    samples: list[list[float]] = [[] for _ in cases]
    for _ in range(settings.rounds):
        for index, case in enumerate(cases):
            n = sizes[index]
            elapsed = _run_once(case.loop, n, threads)
            samples[index].append(elapsed / (n * threads))
    return [
        Timing(
            median=statistics.median(per_op),
            minimum=min(per_op),
            operations=sizes[index] * threads,
        )
        for index, per_op in enumerate(samples)
    ]


def format_ns(seconds: float) -> str:
    """Format a duration in nanoseconds, with thousands separators."""
    return f"{seconds * 1e9:,.0f}"


def format_ratio(value: float, reference: float) -> str:
    """Format `value / reference` as a factor such as ``1.23x``."""
    if reference == 0:
        return "n/a"
    return f"{value / reference:.2f}x"


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, text_columns: int = 1
) -> str:
    """Render a Markdown table.

    The first `text_columns` columns are left-aligned and the rest, which hold
    figures, right-aligned.
    """
    widths = [len(header) for header in headers]
    for row in rows:
        for column, cell in enumerate(row):
            widths[column] = max(widths[column], len(cell))

    def render(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(width) if column < text_columns else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(cells, widths))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        "-" * width if column < text_columns else "-" * (width - 1) + ":"
        for column, width in enumerate(widths)
    ]
    lines = [render(headers), "| " + " | ".join(rule) + " |"]
    lines += [render(row) for row in rows]
    return "\n".join(lines)


def package_version(distribution: str) -> str:
    """Return the installed version of `distribution`, or ``not installed``."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _git(*args: str) -> str | None:
    try:
        completed = subprocess.run(
            ["git", *args],
            cwd=_REPOSITORY,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def _syncq_revision() -> str:
    commit = _git("rev-parse", "--short", "HEAD")
    if commit is None:
        return "unknown (not a git checkout)"
    changes = _git("status", "--porcelain", "--", "syncq")
    if changes:
        return f"commit {commit}, with uncommitted changes under syncq/"
    return f"commit {commit}"


def machine_lines(distributions: Sequence[str]) -> list[str]:
    """Describe the machine, the interpreter, syncq's revision and package versions."""
    versions = ", ".join(
        f"{name} {package_version(name)}" for name in ("syncq", *distributions)
    )
    return [
        f"CPU: {_cpu_model()}, {_usable_cpus()} usable CPUs (nproc)",
        f"OS: {platform.system()} {platform.release()} {platform.machine()}",
        f"Python: {platform.python_implementation()} {platform.python_version()}"
        f" ({sys.executable})",
        f"Packages: {versions}",
        f"syncq source: {_syncq_revision()}",
    ]
