"""CircuitBreaker: its public methods, and the path of a call through it."""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any, Callable, TypeVar, cast

from syncq.breaker._core import BreakerCore
from syncq.breaker._metrics import BreakerMetrics
from syncq.breaker._options import check_options
from syncq.breaker._permit import Permit
from syncq.breaker._states import CircuitState, Outcome
from syncq.clock import Clock
from syncq.errors import CircuitOpenError

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import ParamSpec

    P = ParamSpec("P")

__all__ = ["CircuitBreaker", "Listener", "Permit"]

R = TypeVar("R")

# A module global, so that the fast path of CircuitBreaker.call spends one
# lookup on it instead of two.
_CLOSED = CircuitState.CLOSED

Listener = Callable[["CircuitBreaker", "CircuitState", "CircuitState"], None]
"""A callable run after each transition as `listener(breaker, old_state, new_state)`."""


class CircuitBreaker(BreakerCore):
    """A circuit breaker that rejects calls while a dependency keeps failing.

    CLOSED: calls run. `failure_threshold` consecutive counted failures open the
    breaker, and a success resets the count. With `failure_rate_threshold`, the
    breaker also opens when the share of failures among the calls in a sliding
    window reaches the threshold, once the window contains `minimum_calls` calls.
    The window contains the last `window_size` calls (`window_type="count"`) or the
    calls that ended in the last `window_size` seconds (`window_type="time"`),
    and only outcomes recorded while closed. It starts empty at each close.

    A call that takes longer than `slow_call_duration` seconds on the breaker's
    clock is slow, whether it succeeds or fails, and with
    `slow_call_rate_threshold` the breaker opens when the share of slow calls in
    the same window reaches that threshold. A permit's call is timed from
    `acquire_permission` to its settlement. Slow trial calls count only by
    their outcome, so a slow success still closes a half-open breaker.

    OPEN: calls are rejected without running, with `CircuitOpenError` whose
    `retry_after` is the time left until `reset_timeout` seconds have passed since
    opening. The first admission attempt (or `state` read) after that moves the
    breaker to HALF_OPEN.

    HALF_OPEN: at most `half_open_max_calls` trial calls run at once, and any
    other call is rejected at once with `retry_after=0.0`. After
    `success_threshold` successful trials the breaker closes, and a counted trial
    failure opens it again. Each such reopening multiplies the time the breaker
    stays open by `reset_timeout_multiplier`, up to `max_reset_timeout`, and a
    close returns it to `reset_timeout`. The default multiplier of 1 keeps every
    open period at `reset_timeout`.

    FORCED_OPEN and DISABLED are set only by hand. `open`, `close`, `reset`,
    `force_open` and `disable` change the state at once, and the change is
    logged and sent to the listeners like any other.

    A failure counts if its exception is an instance of `failure_exceptions`,
    not of `ignore_exceptions`, and `failure_predicate(exc)` (when given) returns
    True. See `Permit.record_failure` for the other cases. A call that returns
    counts as a failure if `result_predicate(result)` returns True, but its
    result still goes to the caller. Both predicates run without the lock, and
    one that raises is logged and treated as returning False. A `with breaker:`
    block has no result, so `result_predicate` is never called for it.
    Each transition starts a new generation, and the outcome of a call admitted in
    an older generation changes nothing.

    Use the breaker as `breaker.call(fn, ...)`, as a decorator (`@breaker`), as a
    context manager (`with breaker:`), or through `acquire_permission` and the
    returned `Permit`. All of these are thread-safe. The breaker never holds its
    lock while the user's function or a listener runs.

    Args:
        failure_threshold: Consecutive counted failures that open the breaker, or
            None to open on `failure_rate_threshold` alone.
        reset_timeout: Seconds the breaker stays open before trial calls.
        half_open_max_calls: Trial calls allowed to run at once when half-open.
        success_threshold: Successful trial calls that close the breaker.
        trial_timeout: Seconds a half-open breaker waits, with every trial slot
            taken, for a trial call to end. If none ends in that time, a trial
            hangs or never reports, so it counts as failed and the breaker
            reopens; its outcome, if it ever comes, changes nothing. None (the
            default) uses `reset_timeout`.
        reset_timeout_multiplier: Factor, at least 1, applied to the open time on
            each reopening after a failed trial.
        max_reset_timeout: Upper bound in seconds for the open time, at least
            `reset_timeout`. None (the default) sets no bound, so with a
            multiplier above 1 a dependency that keeps failing trials keeps the
            breaker open for longer and longer.
        failure_exceptions: Exception classes that count as failures; every class
            must derive from `Exception`.
        ignore_exceptions: Exception classes that count as neither success nor
            failure, even if they match `failure_exceptions`.
        failure_predicate: `failure_predicate(exc) -> bool`, asked about an
            exception that matches the classes above; False makes it a success,
            for example for an HTTP error with a 4xx status.
        result_predicate: `result_predicate(result) -> bool`; True makes a call
            that returned `result` a failure, for example a response with status
            503.
        failure_rate_threshold: Share of failures in the window, above 0 and at
            most 1, that opens the breaker; None (the default) turns the rate
            trigger off.
        window_type: "count" (the default) or "time", for the window above.
        window_size: Calls in a count window (an int, default 100) or seconds in
            a time window (default 60). A time window is kept in 10 to 100
            buckets and drops outcomes a bucket at a time, so it spans between
            `window_size` less one bucket and `window_size` seconds.
        minimum_calls: Calls the window must hold before its rates count. The
            default is `window_size` for a count window and 10 for a time window.
        slow_call_duration: Seconds after which a call is slow, or None (the
            default) to time no call.
        slow_call_rate_threshold: Share of slow calls in the window, above 0 and
            at most 1, that opens the breaker; None (the default) turns the
            slow-call trigger off. It needs `slow_call_duration`.
        fallback: `fallback(exc) -> value`, run by `call` and the decorator in
            place of raising `CircuitOpenError`; its value is returned to the
            caller. `acquire_permission` and `with breaker:` still raise.
        fallback_on_failure: Also run `fallback` for a call that raises a
            counted failure, after the failure is recorded. It needs `fallback`.
        name: Name used in log messages and errors.
        clock: Time source; `syncq.clock.SYSTEM_CLOCK` by default.

    Raises:
        TypeError: An argument has the wrong type (a bool where a number belongs,
            a non-exception class in an exception tuple).
        ValueError: A number is zero, negative, NaN or infinite, a rate is
            outside (0, 1], `minimum_calls` exceeds a count window's size,
            `failure_exceptions` is empty, or no trigger is left to open the
            breaker.
    """

    def __init__(
        self,
        failure_threshold: int | None = 5,
        reset_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        *,
        success_threshold: int = 1,
        trial_timeout: float | None = None,
        reset_timeout_multiplier: float = 1.0,
        max_reset_timeout: float | None = None,
        failure_exceptions: tuple[type[BaseException], ...] = (Exception,),
        ignore_exceptions: tuple[type[BaseException], ...] = (),
        failure_predicate: Callable[[Exception], bool] | None = None,
        result_predicate: Callable[[Any], bool] | None = None,
        failure_rate_threshold: float | None = None,
        window_type: str = "count",
        window_size: float | None = None,
        minimum_calls: int | None = None,
        slow_call_duration: float | None = None,
        slow_call_rate_threshold: float | None = None,
        fallback: Callable[[Exception], Any] | None = None,
        fallback_on_failure: bool = False,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        options = check_options(
            failure_threshold=failure_threshold,
            reset_timeout=reset_timeout,
            half_open_max_calls=half_open_max_calls,
            success_threshold=success_threshold,
            trial_timeout=trial_timeout,
            reset_timeout_multiplier=reset_timeout_multiplier,
            max_reset_timeout=max_reset_timeout,
            failure_exceptions=failure_exceptions,
            ignore_exceptions=ignore_exceptions,
            failure_predicate=failure_predicate,
            result_predicate=result_predicate,
            failure_rate_threshold=failure_rate_threshold,
            window_type=window_type,
            window_size=window_size,
            minimum_calls=minimum_calls,
            slow_call_duration=slow_call_duration,
            slow_call_rate_threshold=slow_call_rate_threshold,
            fallback=fallback,
            fallback_on_failure=fallback_on_failure,
            name=name,
            clock=clock,
        )
        super().__init__(options)
        self._name = options.name
        self._fallback = options.fallback
        self._fallback_on_failure = options.fallback_on_failure
        # True if a call in CLOSED must leave the fast path: it is timed, its
        # result is checked, or every success goes into a window.
        self._checks_calls = (
            self._slow_call_duration is not None
            or result_predicate is not None
            or self._rule is not None
        )
        # Permits taken by `with breaker:` blocks, a stack per thread.
        self._local = threading.local()

    @property
    def name(self) -> str | None:
        """Name given at construction, or None."""
        return self._name

    @property
    def failure_threshold(self) -> int | None:
        """Consecutive counted failures that open the breaker, or None."""
        return self._failure_threshold

    @property
    def reset_timeout(self) -> float:
        """Seconds the breaker stays open before it admits trial calls."""
        return self._reset_timeout

    @property
    def half_open_max_calls(self) -> int:
        """Maximum number of trial calls running at once while half-open."""
        return self._half_open_max_calls

    @property
    def state(self) -> CircuitState:
        """Current state, after moving from OPEN to HALF_OPEN if the time has come.

        The value may be stale as soon as it is returned if other threads use the
        breaker.
        """
        now = self._clock.monotonic()
        with self._lock:
            self._expire_state(now)
            state = self._state.kind
            deliver = self._dispatcher.claim()
        if deliver:
            self._deliver()
        return state

    @property
    def failure_count(self) -> int:
        """Counted failures since the last counted success or the last close.

        The count keeps its value while the breaker is open.
        """
        with self._lock:
            return self._failure_count

    def metrics(self) -> BreakerMetrics:
        """Return a snapshot of the breaker's counters and window rates.

        The counters are read together in one short lock section, so callers
        are not stopped, and the snapshot may be stale as soon as it is
        returned. Like `state`, this moves an open breaker whose time is up to
        HALF_OPEN. Thread-safe.
        """
        return self._metrics_snapshot()

    def retry_after(self) -> float:
        """Return the seconds until the breaker could admit a call.

        The result is 0.0 when closed, when half-open (even if all trial slots
        are taken, because the time when one frees is unknown), and when open with
        `reset_timeout` already passed. This call does not change the state.
        """
        now = self._clock.monotonic()
        with self._lock:
            return self._state.retry_after(now)

    def acquire_permission(self) -> Permit:
        """Admit one call or reject it at once, without waiting for a state change.

        If this call moves the breaker to HALF_OPEN, it may run the listeners
        before it returns.

        Returns:
            A `Permit` that the caller must settle with the call's outcome.

        Raises:
            CircuitOpenError: The breaker is open, or half-open with every trial
                slot taken.
        """
        now = self._clock.monotonic()
        with self._lock:
            self._expire_state(now)
            admitted = self._state.admit()
            kind = self._state.kind
            retry_after = self._state.retry_after(now)
            generation = self._generation
            if admitted:
                self._admitted += 1
            else:
                self._rejections += 1
            deliver = self._dispatcher.claim()
        if deliver:
            self._deliver()

        if not admitted:
            raise CircuitOpenError(
                self._rejection_message(kind, retry_after), retry_after
            )
        return Permit(self, generation, now)

    def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `fn(*args, **kwargs)` if the breaker admits it and record the outcome.

        With a `fallback`, a rejected call returns `fallback(error)` instead of
        raising the `CircuitOpenError`, and with `fallback_on_failure=True` a
        call that raises a counted failure returns `fallback(exc)` too. An
        exception from the fallback propagates to the caller.

        Returns:
            What `fn` returns, or what the fallback returns in its place.

        Raises:
            CircuitOpenError: The call was rejected, `fn` did not run, and the
                breaker has no fallback.
            BaseException: Whatever `fn` raises, unchanged, unless the fallback
                handles it.
        """
        return self._run(fn, args, kwargs)

    def _run(
        self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        # Fast path while CLOSED, the common case: a closed state never expires
        # and admits every call, so no clock read and no Permit are needed.
        with self._lock:
            closed = self._state.kind is _CLOSED
            generation = self._generation
            if closed:
                self._admitted += 1
        if not closed:
            return self._call_with_permit(fn, args, kwargs)
        if self._checks_calls:
            return self._run_checked(fn, args, kwargs, generation)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            outcome = self._classify(exc)
            self._record(generation, outcome)
            if self._fallback_on_failure and outcome is Outcome.FAILURE:
                return cast("R", self._fall_back(exc))
            raise
        # Without a window, a success in CLOSED only resets the failure count.
        # When the count reads zero, skipping the reset is the same as this
        # success having been recorded just before any failure that races with it.
        if self._failure_count:
            self._record(generation, Outcome.SUCCESS)
        return result

    def _run_checked(
        self,
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        generation: int,
    ) -> R:
        # The fast path of `_run` for a breaker that times calls, checks results
        # or keeps a window, so that every outcome is recorded.
        started = None
        if self._slow_call_duration is not None:
            started = self._clock.monotonic()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            outcome = self._classify(exc)
            self._record(generation, outcome, started)
            if self._fallback_on_failure and outcome is Outcome.FAILURE:
                return cast("R", self._fall_back(exc))
            raise
        if started is None and self._result_predicate is None:
            self._record_closed_success(generation)
        else:
            self._record(generation, self._judge_result(result), started)
        return result

    def _call_with_permit(
        self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        try:
            permit = self.acquire_permission()
        except CircuitOpenError as exc:
            if self._fallback is None:
                raise
            return cast("R", self._fall_back(exc))
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            outcome = self._classify(exc)
            self._settle(permit, outcome)
            if self._fallback_on_failure and outcome is Outcome.FAILURE:
                return cast("R", self._fall_back(exc))
            raise
        self._settle(permit, self._judge_result(result))
        return result

    def _fall_back(self, exc: BaseException) -> Any:
        # Called for a rejection, or for a counted failure (always an Exception)
        # when fallback_on_failure is set. Runs without the lock.
        fallback = self._fallback
        if fallback is None or not isinstance(exc, Exception):
            raise RuntimeError("fallback called without a fallback") from exc
        return fallback(exc)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Wrap `fn` so that every call to it goes through `call`.

        For a generator function the breaker guards only the creation of the
        generator, not its iteration.

        Raises:
            TypeError: `fn` is not callable.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")

        run = self._run

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return run(fn, args, kwargs)

        return wrapper

    def __enter__(self) -> Permit:
        """Acquire a permit for the block and return it.

        Raises:
            CircuitOpenError: The call was rejected, so the block does not run.
        """
        permit = self.acquire_permission()
        stack: list[Permit] | None = getattr(self._local, "permits", None)
        if stack is None:
            stack = []
            self._local.permits = stack
        stack.append(permit)
        return permit

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Record the block's outcome from the exception it raised, if any.

        The exception is never suppressed.
        """
        stack: list[Permit] | None = getattr(self._local, "permits", None)
        if not stack:
            raise RuntimeError(
                f"circuit breaker {self._label}: __exit__ called without __enter__"
            )
        permit = stack.pop()
        if exc is None:
            permit.record_success()
        else:
            permit.record_failure(exc)

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(breaker, old_state, new_state)` after each transition.

        Listeners run in the order they were added, without the breaker's lock,
        and see transitions in the order they happened. A listener may run on
        another thread than the one whose call caused the transition, and after
        that call has returned. An exception from a listener is logged and
        otherwise ignored.

        Raises:
            TypeError: `listener` is not callable.
        """
        if not callable(listener):
            raise TypeError(f"listener must be callable, got {listener!r}")
        self._dispatcher.add(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Remove one registration of `listener`.

        Raises:
            ValueError: `listener` is not registered.
        """
        self._dispatcher.remove(listener)

    def open(self) -> None:
        """Open the breaker now, as if a failure had tripped it.

        It half-opens after the current open time, as usual. Nothing happens
        if the breaker is open, forced open or disabled. Thread-safe.
        """
        self._change_by_hand(CircuitState.OPEN, "open")

    def close(self) -> None:
        """Close the breaker now, clearing its failure count and window.

        This also ends `force_open`. Nothing happens if the breaker is closed
        or disabled; use `reset` to leave the disabled state. Thread-safe.
        """
        self._change_by_hand(CircuitState.CLOSED, "close")

    def force_open(self) -> None:
        """Open the breaker until `close` or `reset`, however much time passes.

        A rejected call's `retry_after` is `reset_timeout`, only as a polling
        interval. Nothing happens if the breaker is disabled. Thread-safe.
        """
        self._change_by_hand(CircuitState.FORCED_OPEN, "force_open")

    def disable(self) -> None:
        """Admit every call and record no outcome until `reset`.

        Thread-safe.
        """
        self._change_by_hand(CircuitState.DISABLED, "disable")

    def reset(self) -> None:
        """Close the breaker from any state and clear its counts and window.

        Unlike `close`, this also clears the counts of a closed breaker and
        ends `disable`. Listeners run only if the state changes. Thread-safe.
        """
        self._reset()

    def __repr__(self) -> str:
        with self._lock:
            kind = self._state.kind
            failures = self._failure_count
        threshold = "" if self._failure_threshold is None else self._failure_threshold
        return (
            f"CircuitBreaker(name={self._name!r}, state={kind.value}, "
            f"failures={failures}/{threshold})"
        )

    def _rejection_message(self, kind: CircuitState, retry_after: float) -> str:
        if kind is CircuitState.HALF_OPEN:
            return (
                f"circuit breaker {self._label} is half-open and its trial slots "
                f"are full (half_open_max_calls={self._half_open_max_calls})"
            )
        if kind is CircuitState.FORCED_OPEN:
            return (
                f"circuit breaker {self._label} is forced open and rejects calls "
                "until close() or reset()"
            )
        return (
            f"circuit breaker {self._label} is open and rejects calls for another "
            f"{retry_after:.3f} s"
        )
