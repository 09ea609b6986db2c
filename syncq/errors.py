"""Exceptions raised by syncq; every one derives from `SyncqError`."""

from __future__ import annotations

__all__ = [
    "CircuitOpenError",
    "JournalError",
    "RateLimitExceeded",
    "SyncqError",
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
