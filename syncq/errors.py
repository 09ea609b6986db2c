"""Exceptions raised by syncq; every one derives from `SyncqError`."""

from __future__ import annotations

import concurrent.futures
import queue
import sys

__all__ = [
    "CircuitOpenError",
    "JournalError",
    "QueueClosed",
    "RateLimitExceeded",
    "SyncqError",
    "TaskTimeout",
]


class SyncqError(Exception):
    """Base class of every exception that syncq defines."""


class RateLimitExceeded(SyncqError):
    """A limiter could not grant the request in the time allowed.

    Attributes:
        retry_after: Seconds from the moment of raising until the request could be
            granted, if nothing else takes the capacity first.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CircuitOpenError(SyncqError):
    """A circuit breaker rejected a call without running it.

    Attributes:
        retry_after: Seconds until the breaker may admit a trial call; zero when the
            breaker is half-open and all its trial slots are taken.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JournalError(SyncqError):
    """The journal file could not be opened, read or written.

    The underlying `sqlite3` error, if any, is chained as `__cause__`.
    """


if sys.version_info >= (3, 11):
    _TimeoutBases: tuple[type[Exception], ...] = (TimeoutError,)
else:
    # NOTE: before Python 3.11, concurrent.futures has a TimeoutError of its own;
    # a task timeout is both kinds, so either except clause catches it.
    _TimeoutBases = (TimeoutError, concurrent.futures.TimeoutError)


class TaskTimeout(SyncqError, *_TimeoutBases):  # type: ignore[misc]
    """A worker pool's task ran past its timeout, so its attempt was given up.

    It derives from the built-in `TimeoutError` (and, before Python 3.11, also
    from `concurrent.futures.TimeoutError`). Python cannot stop a thread, so the
    function may still be running when this is raised; the pool discards
    whatever it returns later.

    Attributes:
        timeout: The task's timeout in seconds.
    """

    def __init__(self, message: str, timeout: float) -> None:
        super().__init__(message)
        self.timeout = timeout


if sys.version_info >= (3, 13):
    _QueueShutDown = queue.ShutDown
else:
    # NOTE: queue.ShutDown exists only from Python 3.13. Before that, Exception is
    # the second base, which SyncqError already provides, so nothing is added.
    _QueueShutDown = Exception


class QueueClosed(SyncqError, _QueueShutDown):
    """A `TaskQueue` was closed: `put` is rejected, and `get` once it is empty.

    On Python 3.13 and later it also subclasses `queue.ShutDown`, so code written
    for a shut-down `queue.Queue` catches it too.
    """
