"""Permit: one call admitted by a CircuitBreaker, settled with its outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncq.breaker._states import Outcome

if TYPE_CHECKING:
    from syncq.breaker._breaker import CircuitBreaker

__all__ = ["Permit"]


class Permit:
    """Admission of one call by a `CircuitBreaker`, to be settled with its outcome.

    `CircuitBreaker.acquire_permission` returns a permit. The caller makes the call
    and then settles the permit with exactly one of `record_success`,
    `record_failure` or `release`. Only the first of these takes effect, and later
    ones do nothing. A permit that is never settled keeps a half-open trial slot
    taken until the breaker changes state.

    The outcome of a call admitted before the breaker's latest transition changes
    nothing, because the breaker has judged the dependency again since then.

    Thread-safe.
    """

    __slots__ = ("_breaker", "_generation", "_settled", "_started")

    def __init__(
        self, breaker: CircuitBreaker, generation: int, started: float = 0.0
    ) -> None:
        self._breaker = breaker
        self._generation = generation
        # Clock reading at admission, from which a slow call is timed.
        self._started = started
        # Read and set only by the breaker, under its lock.
        self._settled = False

    @property
    def generation(self) -> int:
        """Number of transitions the breaker had made when it admitted the call."""
        return self._generation

    def record_success(self) -> None:
        """Record that the call succeeded."""
        self._breaker._settle(self, Outcome.SUCCESS)

    def record_failure(self, exc: BaseException) -> None:
        """Record that the call raised `exc`.

        `exc` counts as a failure if it is an instance of the breaker's
        `failure_exceptions` and not of its `ignore_exceptions`. An ignored
        exception, and a `BaseException` that is not an `Exception` (such as
        `KeyboardInterrupt`), count as neither success nor failure and only free
        the call's slot. Any other `Exception` counts as a success, because the
        dependency responded, and so does a failure that the breaker's
        `failure_predicate` returns False for.

        Raises:
            TypeError: `exc` is not an exception instance.
        """
        if not isinstance(exc, BaseException):
            raise TypeError(
                f"exc must be an exception instance, got {type(exc).__name__}: {exc!r}"
            )
        self._breaker._settle(self, self._breaker._classify(exc))

    def record_result(self, result: object) -> None:
        """Record that the call returned `result`.

        The call counts as a failure if the breaker's `result_predicate` returns
        True for `result`, and as a success otherwise.
        """
        self._breaker._settle(self, self._breaker._judge_result(result))

    def release(self) -> None:
        """Free the call's slot without recording an outcome.

        Use this when the call was not made, or when its outcome is no evidence
        about the dependency.
        """
        self._breaker._settle(self, Outcome.NEUTRAL)

    def __repr__(self) -> str:
        return f"Permit(generation={self._generation}, settled={self._settled})"
