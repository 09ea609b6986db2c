"""The pool's record of a submitted call, its options and its counters."""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable, TypeVar

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
    return Retry(retry)
