"""Interpreter exit: stopping the pools that were never shut down."""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import weakref
from typing import TYPE_CHECKING

__all__ = ["ExitMixin"]

logger = logging.getLogger(__name__)

# Pools that have not stopped yet, which the exit handler shuts down.
_live_pools: weakref.WeakSet[ExitMixin] = weakref.WeakSet()


def _shutdown_live_pools() -> None:
    # Workers are daemon threads, so the idle workers of a pool that was never
    # shut down do not keep the interpreter alive. At exit, queued work still
    # finishes, as with ThreadPoolExecutor, so a task that never returns blocks
    # the exit.
    # A program ending on Ctrl-C wants out instead: what has not started is
    # cancelled, and only running tasks are waited for, until a second Ctrl-C.
    last = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    interrupted = isinstance(last, KeyboardInterrupt)
    try:
        for pool in list(_live_pools):
            pool._at_exit(interrupted)
    except KeyboardInterrupt:
        logger.warning("interrupted again at exit; not waiting for running tasks")


# Like ThreadPoolExecutor, drain before the atexit handlers run, since those may
# tear down what the tasks use. NOTE: threading._register_atexit is private; it
# exists from Python 3.9, and atexit is the fallback.
_register_atexit = getattr(threading, "_register_atexit", atexit.register)
_register_atexit(_shutdown_live_pools)


class ExitMixin:
    """The part of `WorkerPool` that the interpreter's exit handler calls."""

    _lock: threading.Lock
    _running: int
    _thread_name_prefix: str
    _forsaken: bool

    # Defined by the other parts of WorkerPool and declared here for mypy.
    if TYPE_CHECKING:

        def shutdown(
            self, wait: bool = True, *, cancel_futures: bool = False
        ) -> None: ...

        def _cancel_waiting(self) -> int: ...

        def _join(self) -> None: ...

    def _register_live_pool(self) -> None:
        """Have the exit handler stop this pool if it is still live then."""
        _live_pools.add(self)

    def _unregister_live_pool(self) -> None:
        """Remove the pool from the exit handler's set once it has stopped."""
        _live_pools.discard(self)

    def _at_exit(self, interrupted: bool) -> None:
        """Stop the pool as the interpreter exits, after a Ctrl-C if `interrupted`."""
        if self._forsaken:
            self._leave_running_tasks()
        elif interrupted:
            self._cancel_at_exit()
        else:
            self.shutdown(wait=True)

    def _cancel_at_exit(self) -> None:
        """Cancel what has not started and wait for the running tasks."""
        self.shutdown(wait=False)
        cancelled = self._cancel_waiting()
        with self._lock:
            running = self._running
        if running:
            logger.warning(
                "interrupted: pool %s cancelled %d waiting tasks and waits for %d "
                "running tasks; press Ctrl-C again to stop waiting",
                self._thread_name_prefix,
                cancelled,
                running,
            )
        elif cancelled:
            logger.info(
                "interrupted: pool %s cancelled %d waiting tasks",
                self._thread_name_prefix,
                cancelled,
            )
        self._join()

    def _leave_running_tasks(self) -> None:
        """Stop a pool whose running tasks the user chose not to wait for."""
        with self._lock:
            running = self._running
        if running:
            logger.warning(
                "pool %s does not wait for %d running tasks; they end with the "
                "interpreter",
                self._thread_name_prefix,
                running,
            )
        _live_pools.discard(self)
