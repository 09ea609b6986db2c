"""The pool's futures, which log a failure that nobody retrieved."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any, Callable, TypeVar

__all__ = ["PoolFuture"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PoolFuture(Future[T]):
    """A `Future` that logs its exception if it is collected with it unread.

    A task that failed for good and whose future is garbage collected before
    anyone called `result()` or `exception()` on it, or added a done-callback,
    is logged at ERROR with its traceback, once. The check runs only when the
    future is collected, so a future that stays referenced (in a list, say)
    is reported only when that reference goes, which may be at interpreter
    exit or never.
    """

    # Class defaults, so a future that succeeds never sets them.
    _retrieved = False
    _failure: BaseException | None = None
    _task_name = ""

    def result(self, timeout: float | None = None) -> T:
        try:
            return super().result(timeout)
        except BaseException:
            # A timeout or a cancellation did not hand over a task's exception.
            if self.done():
                self._retrieved = True
            raise

    def exception(self, timeout: float | None = None) -> BaseException | None:
        exception = super().exception(timeout)
        self._retrieved = True
        return exception

    def add_done_callback(self, fn: Callable[[Future[T]], object]) -> None:
        self._retrieved = True
        super().add_done_callback(fn)

    def set_failure(self, exception: BaseException, task_name: str) -> None:
        """Fail the future for good, to be logged if `exception` goes unread."""
        self._task_name = task_name
        self._failure = exception
        self.set_exception(exception)

    def __del__(self) -> None:
        if self._failure is None or self._retrieved:
            return
        logger.error(
            "task %s failed and nobody retrieved its exception: %s: %s",
            self._task_name,
            type(self._failure).__name__,
            self._failure,
            exc_info=self._failure,
        )


def describe(task_fn: Callable[..., Any], key: str | None) -> str:
    """Return how logs name a task: its key, else its function's name."""
    if key is not None:
        return key
    return str(getattr(task_fn, "__qualname__", task_fn))
