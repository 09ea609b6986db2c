"""The thread that moves delayed tasks back to the pool's ready queue."""

from __future__ import annotations

import heapq
import itertools
import threading
from typing import Callable

from syncq.clock import Clock, SystemClock
from syncq.pool._ready import ReadyQueue
from syncq.pool._task import Task

# A clock other than the system clock (a test's fake clock) cannot wake a thread
# that waits on a condition, so the timer re-reads such a clock this often, in
# real seconds.
FOREIGN_CLOCK_POLL = 0.005


class Timer:
    """A thread that moves tasks to the ready queue when their time has come.

    Times are read from `clock`. A scheduled `None` releases the tasks held by the
    breaker instead.
    """

    def __init__(
        self,
        ready: ReadyQueue,
        release_held: Callable[[], None],
        name: str,
        clock: Clock,
    ) -> None:
        self._ready = ready
        self._release_held = release_held
        self._name = name
        self._clock = clock
        self._poll = None if isinstance(clock, SystemClock) else FOREIGN_CLOCK_POLL
        self._heap: list[tuple[float, int, Task | None]] = []
        self._sequence = itertools.count()
        self._stopped = False
        self._thread: threading.Thread | None = None
        # Guards the heap, the flag and the thread; notified when an entry is
        # added that may be due sooner, and on stop.
        self._changed = threading.Condition()

    def schedule(self, task: Task | None, delay: float) -> None:
        """Move `task` to the ready queue `delay` seconds from now."""
        self.schedule_at(task, self._clock.monotonic() + delay)

    def schedule_at(self, task: Task | None, when: float) -> None:
        """Move `task` to the ready queue once the clock reads `when`."""
        with self._changed:
            heapq.heappush(self._heap, (when, next(self._sequence), task))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=self._name, daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def discard(self, task: Task) -> bool:
        """Remove `task` if it is still scheduled, and return whether it was."""
        with self._changed:
            for index, entry in enumerate(self._heap):
                if entry[2] is task:
                    # The last entry fills the hole, and heapify restores order.
                    self._heap[index] = self._heap[-1]
                    self._heap.pop()
                    heapq.heapify(self._heap)
                    return True
        return False

    def clear(self) -> list[Task]:
        """Remove every scheduled task and return them."""
        with self._changed:
            tasks = [task for _, _, task in self._heap if task is not None]
            self._heap = []
        return tasks

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()

    def join(self) -> None:
        with self._changed:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _loop(self) -> None:
        while True:
            with self._changed:
                due = self._take_due()
                if due is None:
                    return
            for task in due:
                if task is None:
                    self._release_held()
                else:
                    self._ready.put(task, priority=task.priority)

    def _take_due(self) -> list[Task | None] | None:
        # Called with the condition held; None means stop.
        while not self._stopped:
            if not self._heap:
                self._changed.wait()
                continue
            remaining = self._heap[0][0] - self._clock.monotonic()
            if remaining > 0:
                if self._poll is not None:
                    remaining = min(remaining, self._poll)
                self._changed.wait(remaining)
                continue
            due = []
            now = self._clock.monotonic()
            while self._heap and self._heap[0][0] <= now:
                due.append(heapq.heappop(self._heap)[2])
            return due
        return None
