"""The breaker's states, each a small class the breaker calls under its lock."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, ClassVar, NamedTuple

if TYPE_CHECKING:
    from syncq.breaker._windows import Window


class CircuitState(enum.Enum):
    """The state of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    # Set only by CircuitBreaker.force_open() and disable().
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


class Outcome(enum.Enum):
    """Effect of an admitted call's result on the breaker."""

    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"


class Trigger(enum.Enum):
    """The rule that opened a closed breaker."""

    CONSECUTIVE_FAILURES = "consecutive failures"
    FAILURE_RATE = "failure rate"
    SLOW_CALL_RATE = "slow-call rate"
    TRIAL_TIMEOUT = "trial timeout"


class Transition(NamedTuple):
    """A state change waiting to be logged and sent to the listeners."""

    old: CircuitState
    new: CircuitState
    failure_count: int
    # Set when a closed breaker opens: the trigger, and for a rate trigger the
    # rate and the number of calls in the window.
    trigger: Trigger | None = None
    rate: float = 0.0
    window_calls: int = 0
    # Seconds the breaker stays open, when the new state is OPEN.
    open_seconds: float = 0.0
    # Name of the CircuitBreaker method that made the change, if one did.
    method: str = ""


class RateRule(NamedTuple):
    """A rate trigger's settings: the window and the thresholds over it."""

    window: Window
    minimum_calls: int
    failure_rate_threshold: float | None
    slow_call_rate_threshold: float | None


class State:
    """Behaviour of one breaker state.

    The breaker creates a new instance on each transition and calls its methods
    with the breaker's lock held. Methods that may end the state return the next
    `CircuitState`, or None to stay.
    """

    kind: ClassVar[CircuitState]
    # False if outcomes in this state change no count at all.
    records: ClassVar[bool] = True
    # The state that follows once `is_due` returns True.
    expires_to: ClassVar[CircuitState | None] = None

    def is_due(self, now: float) -> bool:
        """Return True if the state should end now without any call."""
        return False

    def admit(self) -> bool:
        """Take a slot for a call and return True, or return False to reject it."""
        return True

    def retry_after(self, now: float) -> float:
        """Return the seconds until this state could admit a call."""
        return 0.0

    def on_success(self, now: float, slow: bool) -> CircuitState | None:
        """Record a successful call admitted in this state that ended at `now`."""
        return None

    def on_failure(
        self, failure_count: int, now: float, slow: bool
    ) -> CircuitState | None:
        """Record a counted failure, which `failure_count` already includes."""
        return None

    def on_neutral(self, now: float) -> None:
        """Free the slot of a call whose outcome does not count."""


class ClosedState(State):
    kind = CircuitState.CLOSED

    def __init__(self, failure_threshold: int | None, rule: RateRule | None) -> None:
        self._failure_threshold = failure_threshold
        self._rule = rule
        # Why the state returned OPEN: read by the breaker for the log message.
        self.trip: tuple[Trigger, float, int] | None = None

    def on_success(self, now: float, slow: bool) -> CircuitState | None:
        rule = self._rule
        if rule is None:
            return None
        window = rule.window
        before = window.calls
        window.record(now, False, slow)
        # In a count window a fast success lowers or keeps both rates, so they
        # need a check only when the window first reaches minimum_calls.
        if slow or window.ages or before < rule.minimum_calls <= window.calls:
            return self._check_rates()
        return None

    def on_failure(
        self, failure_count: int, now: float, slow: bool
    ) -> CircuitState | None:
        rule = self._rule
        if rule is not None:
            rule.window.record(now, True, slow)
        threshold = self._failure_threshold
        if threshold is not None and failure_count >= threshold:
            self.trip = (Trigger.CONSECUTIVE_FAILURES, 0.0, 0)
            return CircuitState.OPEN
        if rule is None:
            return None
        return self._check_rates()

    def _check_rates(self) -> CircuitState | None:
        # Reads the window as the latest record left it.
        rule = self._rule
        if rule is None:
            return None
        window = rule.window
        calls = window.calls
        if calls < rule.minimum_calls:
            return None
        threshold = rule.failure_rate_threshold
        if threshold is not None and window.failures / calls >= threshold:
            self.trip = (Trigger.FAILURE_RATE, window.failures / calls, calls)
            return CircuitState.OPEN
        threshold = rule.slow_call_rate_threshold
        if threshold is not None and window.slow_calls / calls >= threshold:
            self.trip = (Trigger.SLOW_CALL_RATE, window.slow_calls / calls, calls)
            return CircuitState.OPEN
        return None


class OpenState(State):
    kind = CircuitState.OPEN
    expires_to = CircuitState.HALF_OPEN

    def __init__(self, opened_at: float, reset_timeout: float) -> None:
        self._reopen_at = opened_at + reset_timeout

    def is_due(self, now: float) -> bool:
        return now >= self._reopen_at

    def admit(self) -> bool:
        return False

    def retry_after(self, now: float) -> float:
        return max(0.0, self._reopen_at - now)


class HalfOpenState(State):
    kind = CircuitState.HALF_OPEN
    expires_to = CircuitState.OPEN

    def __init__(
        self, max_calls: int, success_threshold: int, trial_timeout: float, now: float
    ) -> None:
        self._max_calls = max_calls
        self._success_threshold = success_threshold
        self._trial_timeout = trial_timeout
        self._in_flight = 0
        self._successes = 0
        # When a trial slot last came free: a trial ended, or the state began.
        self._last_freed = now
        # Why the state returned OPEN: read by the breaker for the log message.
        self.trip: tuple[Trigger, float, int] | None = None

    def is_due(self, now: float) -> bool:
        # With every slot taken and no trial ended for trial_timeout, a trial
        # hangs or never reports, so it counts as failed and the breaker
        # reopens. Otherwise it could stay half-open for good.
        if self._in_flight < self._max_calls:
            return False
        if now - self._last_freed < self._trial_timeout:
            return False
        self.trip = (Trigger.TRIAL_TIMEOUT, 0.0, 0)
        return True

    def admit(self) -> bool:
        if self._in_flight >= self._max_calls:
            return False
        self._in_flight += 1
        return True

    def on_success(self, now: float, slow: bool) -> CircuitState | None:
        self._in_flight -= 1
        self._last_freed = now
        self._successes += 1
        if self._successes >= self._success_threshold:
            return CircuitState.CLOSED
        return None

    def on_failure(
        self, failure_count: int, now: float, slow: bool
    ) -> CircuitState | None:
        return CircuitState.OPEN

    def on_neutral(self, now: float) -> None:
        self._in_flight -= 1
        self._last_freed = now


class ForcedOpenState(State):
    kind = CircuitState.FORCED_OPEN

    def __init__(self, retry_hint: float) -> None:
        self._retry_hint = retry_hint

    def admit(self) -> bool:
        return False

    def retry_after(self, now: float) -> float:
        # The state has no end time, so callers get a polling interval.
        return self._retry_hint


class DisabledState(State):
    kind = CircuitState.DISABLED
    records = False
