"""Tasks that wait before a run, for the circuit breaker or for a rate limit."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from syncq.limiters import Limiter
from syncq.pool._ready import ReadyQueue
from syncq.pool._task import Task
from syncq.pool._timer import Timer

if TYPE_CHECKING:
    from syncq.breaker import CircuitBreaker, CircuitState, Permit

__all__ = ["HoldingMixin"]

# A task rejected while the breaker is half-open and all its trial slots are taken
# waits for the pool's own trial to end or for the breaker to change state. This
# re-check covers trials made outside the pool, which the pool does not see end.
HALF_OPEN_RECHECK = 1.0


class HoldingMixin:
    """The part of `WorkerPool` that keeps tasks waiting until they may run."""

    _lock: threading.Lock
    _breaker_held: list[Task]
    _ready: ReadyQueue
    _timer: Timer
    _abort: threading.Event

    # Defined by the other parts of WorkerPool and declared here for mypy.
    if TYPE_CHECKING:

        def _abandon(self, task: Task) -> None: ...

    def _hold(self, task: Task, retry_after: float) -> None:
        if retry_after > 0:
            self._timer.schedule(task, retry_after)
            return
        with self._lock:
            self._breaker_held.append(task)
            first = len(self._breaker_held) == 1
        if first:
            self._timer.schedule(None, HALF_OPEN_RECHECK)

    def _discard_held(self, task: Task) -> bool:
        """Remove `task` from the held tasks, and return whether it was there."""
        with self._lock:
            for index, held in enumerate(self._breaker_held):
                if held is task:
                    del self._breaker_held[index]
                    return True
        return False

    def _release_held(self) -> None:
        with self._lock:
            held, self._breaker_held = self._breaker_held, []
        for task in held:
            self._ready.put(task, priority=task.priority)

    def _on_breaker_change(
        self, breaker: CircuitBreaker, old: CircuitState, new: CircuitState
    ) -> None:
        self._release_held()

    def _wait_for_token(
        self, limiter: Limiter, task: Task, permit: Permit | None
    ) -> bool:
        # Without a timeout, reserve always returns a reservation.
        reservation = limiter.reserve(1)
        if reservation is None:
            return True
        delay = reservation.delay()
        if delay > 0 and self._abort.wait(delay):
            reservation.cancel()
            if permit is not None:
                permit.release()
            self._abandon(task)
            return False
        return True
