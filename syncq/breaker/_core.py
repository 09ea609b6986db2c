"""BreakerCore: a circuit breaker's state, its outcome recording and transitions."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable

from syncq.breaker._listeners import Dispatcher
from syncq.breaker._metrics import BreakerMetrics
from syncq.breaker._states import (
    CircuitState,
    ClosedState,
    DisabledState,
    ForcedOpenState,
    HalfOpenState,
    OpenState,
    Outcome,
    State,
    Transition,
)

if TYPE_CHECKING:
    from typing_extensions import Self

    from syncq.breaker._options import BreakerOptions
    from syncq.breaker._permit import Permit

__all__ = ["BreakerCore"]

logger = logging.getLogger(__name__)


def _rate(part: int, whole: int) -> float | None:
    if whole == 0:
        return None
    return part / whole


def _allows_manual_change(current: CircuitState, requested: CircuitState) -> bool:
    # Only reset() leaves DISABLED, and open() leaves FORCED_OPEN alone.
    if current is requested or current is CircuitState.DISABLED:
        return False
    return not (requested is CircuitState.OPEN and current is CircuitState.FORCED_OPEN)


class BreakerCore:
    """The state of one circuit breaker, and every change made to it.

    `CircuitBreaker` derives from this class instead of holding it as a helper
    object, so that its call path reads the lock, the state and the counters
    as attributes of the breaker itself, with no extra lookup per call. A
    method commented "Runs with the lock held" expects its caller to hold
    `_lock`. No method holds the lock while user code, a log call or a
    listener runs.
    """

    def __init__(self, options: BreakerOptions) -> None:
        self._failure_threshold = options.failure_threshold
        self._reset_timeout = options.reset_timeout
        self._trial_timeout = options.trial_timeout
        self._reset_timeout_multiplier = options.reset_timeout_multiplier
        self._max_reset_timeout = options.max_reset_timeout
        self._half_open_max_calls = options.half_open_max_calls
        self._success_threshold = options.success_threshold
        self._failure_exceptions = options.failure_exceptions
        self._ignore_exceptions = options.ignore_exceptions
        self._failure_predicate = options.failure_predicate
        self._result_predicate = options.result_predicate
        self._slow_call_duration = options.slow_call_duration
        self._rule = options.rule
        self._label = "(unnamed)" if options.name is None else repr(options.name)
        self._clock = options.clock

        # Guards _state, _generation, _failure_count, the window in _rule, the
        # listeners and queued transitions in _dispatcher, and the _settled flag
        # of every permit this breaker issues.
        self._lock = threading.Lock()
        self._dispatcher: Dispatcher[Self] = Dispatcher(
            self._lock,
            self._label,
            self._half_open_max_calls,
            self._success_threshold,
        )
        self._state: State = ClosedState(self._failure_threshold, self._rule)
        self._generation = 0
        self._failure_count = 0
        # Metrics counters, read by metrics(); successes are derived from them.
        self._admitted = 0
        self._failures = 0
        self._ignored = 0
        self._rejections = 0
        self._slow_calls = 0
        # Seconds the next opening lasts: grows on each reopening after a failed
        # trial and returns to reset_timeout on close.
        self._open_seconds = self._reset_timeout

    def _metrics_snapshot(self) -> BreakerMetrics:
        # The body of CircuitBreaker.metrics().
        now = self._clock.monotonic()
        with self._lock:
            self._expire_state(now)
            rule = self._rule
            window_calls = failures_in_window = slow_in_window = 0
            if rule is not None:
                rule.window.expire(now)
                window_calls = rule.window.calls
                failures_in_window = rule.window.failures
                slow_in_window = rule.window.slow_calls
            snapshot = BreakerMetrics(
                state=self._state.kind,
                calls=self._admitted,
                successes=self._admitted - self._failures - self._ignored,
                failures=self._failures,
                ignored=self._ignored,
                rejections=self._rejections,
                slow_calls=self._slow_calls,
                failure_count=self._failure_count,
                window_calls=window_calls,
                failure_rate=_rate(failures_in_window, window_calls),
                slow_call_rate=_rate(slow_in_window, window_calls),
            )
            deliver = self._dispatcher.claim()
        if deliver:
            self._deliver()
        return snapshot

    def _reset(self) -> None:
        # The body of CircuitBreaker.reset().
        now = self._clock.monotonic()
        with self._lock:
            if self._state.kind is CircuitState.CLOSED:
                self._clear_counts()
            else:
                self._transition(CircuitState.CLOSED, now, "reset")
            deliver = self._dispatcher.claim()
        if deliver:
            self._deliver()

    def _change_by_hand(self, kind: CircuitState, method: str) -> None:
        now = self._clock.monotonic()
        with self._lock:
            self._expire_state(now)
            if _allows_manual_change(self._state.kind, kind):
                self._transition(kind, now, method)
            deliver = self._dispatcher.claim()
        if deliver:
            self._deliver()

    def _classify(self, exc: BaseException) -> Outcome:
        # Runs without the lock, because it may call the user's predicate.
        if not isinstance(exc, Exception) or isinstance(exc, self._ignore_exceptions):
            return Outcome.NEUTRAL
        if not isinstance(exc, self._failure_exceptions):
            return Outcome.SUCCESS
        if self._failure_predicate is None:
            return Outcome.FAILURE
        if self._ask("failure_predicate", self._failure_predicate, exc):
            return Outcome.FAILURE
        return Outcome.SUCCESS

    def _judge_result(self, result: object) -> Outcome:
        # Runs without the lock, because it may call the user's predicate.
        if self._result_predicate is None:
            return Outcome.SUCCESS
        if self._ask("result_predicate", self._result_predicate, result):
            return Outcome.FAILURE
        return Outcome.SUCCESS

    def _ask(
        self, option: str, predicate: Callable[[Any], bool], value: object
    ) -> bool:
        try:
            return bool(predicate(value))
        except Exception:
            logger.exception(
                "%s of circuit breaker %s failed on a %s value, so the breaker "
                "treats its answer as False",
                option,
                self._label,
                type(value).__name__,
            )
            return False

    def _settle(self, permit: Permit, outcome: Outcome) -> None:
        # Called by Permit. Applies its outcome unless the permit is settled or stale.
        now = self._clock.monotonic()
        slow = self._slow_call_duration is not None and self._is_slow(
            permit._started, now
        )
        with self._lock:
            if permit._settled:
                return
            permit._settled = True
            if slow or outcome is not Outcome.SUCCESS:
                self._count(outcome, slow)
            if permit.generation != self._generation:
                return
            self._apply(outcome, now, slow)
            deliver = self._dispatcher.claim()
        if deliver:
            self._deliver()

    def _record(
        self, generation: int, outcome: Outcome, started: float | None = None
    ) -> None:
        # Settles a call that `call` admitted on its fast path, without a Permit.
        # `started` is the clock reading before the call, if it was timed.
        now = self._clock.monotonic()
        slow = started is not None and self._is_slow(started, now)
        with self._lock:
            if slow or outcome is not Outcome.SUCCESS:
                self._count(outcome, slow)
            if generation != self._generation:
                return
            self._apply(outcome, now, slow)
            deliver = self._dispatcher.claim()
        if deliver:
            self._deliver()

    def _record_closed_success(self, generation: int) -> None:
        # `_record` for an untimed success admitted in CLOSED, with fewer steps
        # because it runs for every call when a window is on.
        now = self._clock.monotonic()
        with self._lock:
            if generation != self._generation:
                return
            self._failure_count = 0
            next_kind = self._state.on_success(now, False)
            if next_kind is None:
                return
            self._transition(next_kind, now)
            deliver = self._dispatcher.claim()
        if deliver:
            self._deliver()

    def _count(self, outcome: Outcome, slow: bool) -> None:
        # Runs with the lock held: the metrics counters for one ended call. A
        # success is not counted, because the fast path often records none.
        if outcome is Outcome.FAILURE:
            self._failures += 1
        elif outcome is Outcome.NEUTRAL:
            self._ignored += 1
        if slow:
            self._slow_calls += 1

    def _is_slow(self, started: float, now: float) -> bool:
        duration = self._slow_call_duration
        return duration is not None and now - started > duration

    def _apply(self, outcome: Outcome, now: float, slow: bool) -> None:
        # Runs with the lock held, for a call admitted in the current generation.
        if not self._state.records:
            return
        if outcome is Outcome.NEUTRAL:
            self._state.on_neutral(now)
            return
        if outcome is Outcome.SUCCESS:
            self._failure_count = 0
            next_kind = self._state.on_success(now, slow)
        else:
            self._failure_count += 1
            next_kind = self._state.on_failure(self._failure_count, now, slow)
        if next_kind is not None:
            self._transition(next_kind, now)

    def _expire_state(self, now: float) -> None:
        # Runs with the lock held. Applies the lazy moves that time alone makes:
        # OPEN to HALF_OPEN, and HALF_OPEN back to OPEN when a trial hangs.
        state = self._state
        if state.expires_to is not None and state.is_due(now):
            self._transition(state.expires_to, now)

    def _transition(self, kind: CircuitState, now: float, method: str = "") -> None:
        # Runs with the lock held. Queues the event for delivery. `method` names
        # the public method that requested the change, if one did.
        old = self._state
        trip = old.trip if isinstance(old, (ClosedState, HalfOpenState)) else None
        if kind is CircuitState.CLOSED:
            self._clear_counts()
            self._state = ClosedState(self._failure_threshold, self._rule)
        elif kind is CircuitState.OPEN:
            if old.kind is CircuitState.HALF_OPEN and not method:
                self._open_seconds = self._grow(self._open_seconds)
            self._state = OpenState(now, self._open_seconds)
        elif kind is CircuitState.HALF_OPEN:
            self._state = HalfOpenState(
                self._half_open_max_calls,
                self._success_threshold,
                self._trial_timeout,
                now,
            )
        elif kind is CircuitState.FORCED_OPEN:
            self._state = ForcedOpenState(self._reset_timeout)
        else:
            self._state = DisabledState()
        self._generation += 1
        trigger, rate, window_calls = (None, 0.0, 0) if trip is None else trip
        event = Transition(
            old.kind,
            kind,
            self._failure_count,
            trigger,
            rate,
            window_calls,
            self._open_seconds,
            method,
        )
        self._dispatcher.push(event)

    def _clear_counts(self) -> None:
        # Runs with the lock held: what a close or a reset starts afresh.
        self._failure_count = 0
        if self._rule is not None:
            self._rule.window.clear()
        self._open_seconds = self._reset_timeout

    def _grow(self, seconds: float) -> float:
        grown = seconds * self._reset_timeout_multiplier
        if self._max_reset_timeout is not None:
            return min(grown, self._max_reset_timeout)
        return grown

    def _deliver(self: Self) -> None:
        # Runs without the lock, when `_dispatcher.claim()` returned True.
        self._dispatcher.deliver(self)
