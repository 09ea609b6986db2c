"""The breaker's states, each a small class the breaker calls under its lock."""

from __future__ import annotations

import enum
from typing import ClassVar, NamedTuple


class CircuitState(enum.Enum):
    """The state of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Outcome(enum.Enum):
    """Effect of an admitted call's result on the breaker."""

    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"


class Transition(NamedTuple):
    """A state change waiting to be logged and sent to the listeners."""

    old: CircuitState
    new: CircuitState
    failure_count: int


class State:
    """Behaviour of one breaker state.

    The breaker creates a new instance on each transition and calls its methods
    with the breaker's lock held. Methods that may end the state return the next
    `CircuitState`, or None to stay.
    """

    kind: ClassVar[CircuitState]

    def is_due(self, now: float) -> bool:
        """Return True if the state should end now without any call."""
        return False

    def admit(self) -> bool:
        """Take a slot for a call and return True, or return False to reject it."""
        return True

    def retry_after(self, now: float) -> float:
        """Return the seconds until this state could admit a call."""
        return 0.0

    def on_success(self) -> CircuitState | None:
        """Record a successful call admitted in this state."""
        return None

    def on_failure(self, failure_count: int) -> CircuitState | None:
        """Record a counted failure, which `failure_count` already includes."""
        return None

    def on_neutral(self) -> None:
        """Free the slot of a call whose outcome does not count."""


class ClosedState(State):
    kind = CircuitState.CLOSED

    def __init__(self, failure_threshold: int) -> None:
        self._failure_threshold = failure_threshold

    def on_failure(self, failure_count: int) -> CircuitState | None:
        if failure_count >= self._failure_threshold:
            return CircuitState.OPEN
        return None


class OpenState(State):
    kind = CircuitState.OPEN

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

    def __init__(self, max_calls: int, success_threshold: int) -> None:
        self._max_calls = max_calls
        self._success_threshold = success_threshold
        self._in_flight = 0
        self._successes = 0

    def admit(self) -> bool:
        if self._in_flight >= self._max_calls:
            return False
        self._in_flight += 1
        return True

    def on_success(self) -> CircuitState | None:
        self._in_flight -= 1
        self._successes += 1
        if self._successes >= self._success_threshold:
            return CircuitState.CLOSED
        return None

    def on_failure(self, failure_count: int) -> CircuitState | None:
        return CircuitState.OPEN

    def on_neutral(self) -> None:
        self._in_flight -= 1
