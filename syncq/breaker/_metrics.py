"""A snapshot of a circuit breaker's counters, taken by `CircuitBreaker.metrics`."""

from __future__ import annotations

import dataclasses

from syncq.breaker._states import CircuitState


@dataclasses.dataclass(frozen=True)
class BreakerMetrics:
    """Counters of one circuit breaker, read together in one lock section.

    The counters start at zero when the breaker is built and count every call,
    whatever the state, including calls whose outcome came after a transition
    and so changed nothing. `reset` leaves them as they are.

    Attributes:
        state: State when the snapshot was taken.
        calls: Calls admitted, including calls still running.
        successes: Admitted calls that have not ended in a counted failure or an
            ignored exception. A call still running counts here until it ends,
            so this count drops by one when a running call then fails.
        failures: Calls that ended in a counted failure, including failures from
            `result_predicate`.
        ignored: Calls whose outcome counted as neither success nor failure: an
            ignored exception, a `BaseException` such as `KeyboardInterrupt`, or
            `Permit.release`.
        rejections: Calls rejected without running.
        slow_calls: Calls that took longer than `slow_call_duration`; always 0
            without one.
        failure_count: Consecutive counted failures, as `failure_count` reads.
        window_calls: Calls in the rate window, or 0 without a rate trigger.
        failure_rate: Share of failures in the rate window, or None without a
            rate trigger or while the window is empty.
        slow_call_rate: Share of slow calls in the rate window, or None as for
            `failure_rate`.
    """

    state: CircuitState
    calls: int
    successes: int
    failures: int
    ignored: int
    rejections: int
    slow_calls: int
    failure_count: int
    window_calls: int
    failure_rate: float | None
    slow_call_rate: float | None
