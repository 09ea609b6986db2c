"""The pool's record of a submitted call, its options and its counters.

Its functions also check the arguments that `WorkerPool` and
`WorkerPool.options` take.
"""

from __future__ import annotations

import dataclasses
import math
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from syncq._checks import (
    check_non_negative,
    check_positive,
    check_priority,
    check_timeout,
)
from syncq.clock import SYSTEM_CLOCK, Clock
from syncq.limiters import Limiter, TokenBucket
from syncq.pool._future import PoolFuture, describe
from syncq.pool._stats import RunTimes
from syncq.retry import Retry

if TYPE_CHECKING:
    from syncq.pool._executor import WorkerPool

T = TypeVar("T")


class Task:
    """One submitted call and everything the pool tracks about it."""

    __slots__ = (
        "args",
        "attempts",
        "first_started",
        "fn",
        "future",
        "journal_id",
        "key",
        "kwargs",
        "last_exception",
        "priority",
        "retry",
        "started",
        "timeout",
        "watched",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        priority: float,
        retry: Retry | None,
        *,
        timeout: float | None = None,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.priority = priority
        self.retry = retry
        # Seconds each attempt may run before it is given up, or None.
        self.timeout = timeout
        self.future: PoolFuture[Any] = PoolFuture()
        self.attempts = 0
        # The pool clock's reading when the first attempt started, once one failed.
        self.first_started = 0.0
        self.started = False
        self.journal_id: int | None = None
        self.key: str | None = None
        self.last_exception: BaseException | None = None
        # Whether a done-callback drops the task once cancelled (see
        # WorkerPool._watch_cancel).
        self.watched = False

    def fail(self, exception: BaseException) -> None:
        """Complete the future with `exception`, for good."""
        self.future.set_failure(exception, describe(self.fn, self.key))


@dataclasses.dataclass(frozen=True)
class PoolStats:
    """A snapshot of a pool's counters; it may be stale as soon as it is read."""

    submitted: int
    """Tasks accepted by `submit`, plus tasks recovered from the journal."""
    queued: int
    """Tasks accepted and not yet finished, running ones excluded."""
    running: int
    """Tasks whose function is running now."""
    succeeded: int
    failed: int
    """Tasks that raised on their last attempt."""
    cancelled: int
    retried: int
    """Attempts that failed and were scheduled to run again."""
    timed_out: int = 0
    """Attempts given up because they ran past their task's timeout."""
    abandoned: int = 0
    """Timed-out attempts whose functions are still running on their threads."""
    throughput: float = 0.0
    """Attempts finished per second over the last minute, failures included."""
    error_rate: float = 0.0
    """The share of those attempts that raised, retried ones included; 0.0 if
    none finished."""
    run_times: RunTimes | None = None
    """Percentiles of the latest 1,024 attempts' run times; None before any ran."""


@dataclasses.dataclass(frozen=True)
class Options:
    priority: float = 0
    key: str | None = None
    retry: Retry | None = None
    block: bool = True
    block_timeout: float | None = None
    start_at: float | None = None
    """A clock reading before which the task does not start, or None."""
    delay: float | None = None
    """Seconds after `submit` before which the task does not start, or None."""
    timeout: float | None = None
    """Seconds each attempt may run, or None for the pool's `task_timeout`."""


DEFAULT_OPTIONS = Options()


class TaskOptions:
    """A view of a pool that submits with options; made by `WorkerPool.options`."""

    __slots__ = ("_options", "_pool")

    def __init__(self, pool: WorkerPool, options: Options) -> None:
        self._pool = pool
        self._options = options

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Schedule `fn(*args, **kwargs)` with these options; as `WorkerPool.submit`."""
        return self._pool._submit(fn, args, kwargs, self._options)


def make_limiter(rate_limit: Limiter | str | float | None) -> Limiter | None:
    if rate_limit is None:
        return None
    if isinstance(rate_limit, bool):
        raise TypeError(f"rate_limit must be a limiter or a rate, got {rate_limit!r}")
    if isinstance(rate_limit, (str, int, float)):
        return TokenBucket(rate_limit)
    if not callable(getattr(rate_limit, "reserve", None)):
        raise TypeError(
            "rate_limit must be a limiter, a rate such as '10/s', or None, "
            f"got {rate_limit!r}"
        )
    return rate_limit


def make_retry(retry: Retry | int | None) -> Retry | None:
    if retry is None or isinstance(retry, Retry):
        return retry
    if isinstance(retry, bool) or not isinstance(retry, int):
        raise TypeError(
            f"retry must be a Retry, a number of attempts or None, got {retry!r}"
        )
    if retry < 1:
        raise ValueError(
            f"retry must be a Retry, a number of attempts >= 1 or None, got {retry!r}"
        )
    return Retry(retry)


def make_options(
    *,
    priority: float,
    key: str | None,
    retry: Retry | int | None,
    block: bool,
    block_timeout: float | None,
    delay: float | None,
    start_at: float | None,
    timeout: float | None,
    journaled: bool,
) -> Options:
    """Check the arguments of `WorkerPool.options` and return them as `Options`.

    `journaled` is whether the pool has a journal, which `key` requires.
    """
    if key is not None and not isinstance(key, str):
        raise TypeError(f"key must be a str or None, got {key!r}")
    if key is not None and not journaled:
        raise ValueError("key= needs a pool with a journal")
    if not isinstance(block, bool):
        raise TypeError(f"block must be True or False, got {block!r}")
    if delay is not None and start_at is not None:
        raise ValueError(
            f"give delay or start_at, not both; got delay={delay!r} "
            f"and start_at={start_at!r}"
        )
    return Options(
        priority=check_priority(priority),
        key=key,
        retry=make_retry(retry),
        block=block,
        block_timeout=check_timeout("block_timeout", block_timeout),
        start_at=_check_start_at(start_at),
        delay=_check_delay(delay),
        timeout=check_task_timeout("timeout", timeout),
    )


def check_clock(clock: Clock | None) -> Clock:
    if clock is None:
        return SYSTEM_CLOCK
    if not isinstance(clock, Clock):
        raise TypeError(
            "clock must provide monotonic() and sleep(), "
            f"got {type(clock).__name__} {clock!r}"
        )
    return clock


def check_task_timeout(name: str, value: object) -> float | None:
    """Return None, a positive number of seconds, or ``math.inf``."""
    if value is None:
        return None
    if value == math.inf and not isinstance(value, bool):
        return math.inf
    return check_positive(name, value, unit=" of seconds")


def _check_delay(delay: object) -> float | None:
    if delay is None:
        return None
    return check_non_negative("delay", delay, unit=" of seconds")


def _check_start_at(start_at: object) -> float | None:
    if start_at is None:
        return None
    if isinstance(start_at, bool) or not isinstance(start_at, (int, float)):
        raise TypeError(
            "start_at must be a finite number of clock seconds or None, "
            f"got {type(start_at).__name__} {start_at!r}"
        )
    try:
        when = float(start_at)
    except OverflowError:
        when = math.inf
    if not math.isfinite(when):
        raise ValueError(
            f"start_at must be a finite number of clock seconds, got {start_at!r}"
        )
    return when
