"""Compare the overhead of a closed circuit breaker in syncq and in peer libraries.

Every contender wraps the same trivial function, which returns None at once,
so the time per call is almost all breaker bookkeeping. The bare call of the
function is the baseline that the overhead is measured from. Every breaker
stays CLOSED throughout, which the benchmark checks before and after timing.

Run from the repository root::

    python -m benchmarks.bench_breaker [--quick] [--rounds N]
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
from collections.abc import Sequence
from typing import Callable

if __package__ in (None, ""):
    # Run as a file: make the repository root importable, as `python -m` does.
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from benchmarks._harness import (
    Case,
    Loop,
    Timing,
    format_ns,
    format_ratio,
    format_table,
    machine_lines,
    parse_settings,
    time_cases,
)
from syncq import CircuitBreaker, CircuitState

PEERS = ("pybreaker", "circuitbreaker")

BARE = "bare call (baseline)"
SYNCQ_CALL = "syncq CircuitBreaker.call(fn)"


def noop() -> None:
    """Return at once: the trivial call that every breaker wraps."""
    return None


@dataclasses.dataclass(frozen=True)
class Contender:
    """A breaker's way of calling `noop`, and a check that it is still closed."""

    name: str
    loop: Loop
    is_closed: Callable[[], bool]


def _call_loop(call: Callable[[], object]) -> Loop:
    def loop(n: int) -> None:
        for _ in range(n):
            call()

    return loop


def _bare() -> list[Contender]:
    return [Contender(BARE, _call_loop(noop), lambda: True)]


def _syncq() -> list[Contender]:
    via_call = CircuitBreaker()
    call = via_call.call

    def call_loop(n: int) -> None:
        for _ in range(n):
            call(noop)

    via_decorator = CircuitBreaker()
    decorated = via_decorator(noop)

    via_with = CircuitBreaker()

    def with_loop(n: int) -> None:
        for _ in range(n):
            with via_with:
                noop()

    return [
        Contender(SYNCQ_CALL, call_loop, lambda: via_call.state is CircuitState.CLOSED),
        Contender(
            "syncq @CircuitBreaker() decorator",
            _call_loop(decorated),
            lambda: via_decorator.state is CircuitState.CLOSED,
        ),
        Contender(
            "syncq with CircuitBreaker():",
            with_loop,
            lambda: via_with.state is CircuitState.CLOSED,
        ),
    ]


# Peers are imported when their contenders are built, so that a peer that is not
# installed drops out of the table instead of stopping the benchmark.


def _pybreaker() -> list[Contender]:
    import pybreaker  # noqa: PLC0415

    via_call = pybreaker.CircuitBreaker()
    call = via_call.call

    def call_loop(n: int) -> None:
        for _ in range(n):
            call(noop)

    via_decorator = pybreaker.CircuitBreaker()
    decorated = via_decorator(noop)
    return [
        Contender(
            "pybreaker CircuitBreaker.call(fn)",
            call_loop,
            lambda: via_call.current_state == pybreaker.STATE_CLOSED,
        ),
        Contender(
            "pybreaker @CircuitBreaker() decorator",
            _call_loop(decorated),
            lambda: via_decorator.current_state == pybreaker.STATE_CLOSED,
        ),
    ]


def _circuitbreaker() -> list[Contender]:
    import circuitbreaker  # type: ignore[import-untyped]  # noqa: PLC0415

    # `@circuit` with no arguments builds this same default breaker.
    breaker = circuitbreaker.CircuitBreaker()
    decorated = breaker(noop)
    return [
        Contender(
            "circuitbreaker @circuit decorator",
            _call_loop(decorated),
            lambda: bool(breaker.closed),
        )
    ]


def _contenders() -> tuple[list[Contender], list[str]]:
    contenders: list[Contender] = []
    missing: list[str] = []
    builders = (_bare, _syncq, _pybreaker, _circuitbreaker)
    for build in builders:
        try:
            contenders.extend(build())
        except ImportError as exc:
            missing.append(str(exc))
    return contenders, missing


def _check_closed(contenders: Sequence[Contender]) -> None:
    for contender in contenders:
        if not contender.is_closed():
            raise RuntimeError(
                f"{contender.name}: the breaker left the CLOSED state, so the "
                "figures do not measure a closed breaker"
            )


def _table(contenders: Sequence[Contender], timings: Sequence[Timing]) -> str:
    names = [contender.name for contender in contenders]
    bare = timings[names.index(BARE)].median
    syncq_overhead = timings[names.index(SYNCQ_CALL)].median - bare
    headers = [
        "call",
        "median ns/call",
        "min ns/call",
        "overhead ns",
        "overhead vs syncq call(fn)",
    ]
    rows = []
    for contender, timing in zip(contenders, timings):
        overhead = timing.median - bare
        rows.append(
            [
                contender.name,
                format_ns(timing.median),
                format_ns(timing.minimum),
                format_ns(overhead),
                format_ratio(overhead, syncq_overhead),
            ]
        )
    return format_table(headers, rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the breaker benchmark, print its table and return the exit status."""
    settings = parse_settings(__doc__.splitlines()[0] if __doc__ else "", argv)
    contenders, missing = _contenders()
    print("# bench_breaker: a closed breaker around a trivial call")
    print()
    for line in machine_lines(PEERS):
        print(f"- {line}")
    print(
        f"- {settings.rounds} rounds of about {settings.round_seconds:g} s per case, "
        "cases interleaved, after a warm-up; median and min of the time per call; "
        "overhead is the median minus the bare call's median"
    )
    for name in missing:
        print(f"- skipped a peer that is not installed ({name})")

    _check_closed(contenders)
    cases = [Case(contender.name, contender.loop) for contender in contenders]
    timings = time_cases(cases, settings)
    _check_closed(contenders)
    print()
    print("## One thread, every call succeeds")
    print()
    print(_table(contenders, timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
