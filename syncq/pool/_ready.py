"""The pool's queue of tasks ready to run, tuned for the default priority.

`syncq.queue.TaskQueue` is the general queue for users, with a bound, `join` and
a condition per event. The pool needs less: no bound (it counts pending tasks
itself), no `join`, many workers blocked in `get`. Here each queued task is
matched by a token in a `queue.SimpleQueue`, which is implemented in C, so a
blocked worker wakes without a Python-level condition. Tasks of the default
priority 0 wait in a deque; other priorities wait in a heap.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
from collections import deque

from syncq.errors import QueueClosed
from syncq.pool._task import Task

_ITEM = object()
_CLOSED = object()


class ReadyQueue:
    """Tasks in priority order, lower first, FIFO among equal priorities.

    Thread-safe. After `close`, `get` returns what is left, then raises
    `QueueClosed`.
    """

    def __init__(self) -> None:
        self._tokens: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._default: deque[Task] = deque()
        self._others: list[tuple[float, int, Task]] = []
        self._sequence = itertools.count()
        # Numbers, negated, for tasks put back at the front: below any sequence.
        self._front = itertools.count(1)
        # Guards taking a task from _default or _others, and pushing to _others.
        # Appending to _default needs no lock, since deque.append is atomic.
        self._lock = threading.Lock()

    def put(self, task: Task, priority: float) -> None:
        """Queue `task`; there is no bound, so it never waits for space."""
        if priority == 0:
            self._default.append(task)
        else:
            with self._lock:
                heapq.heappush(self._others, (priority, next(self._sequence), task))
        # The token is put after the task, so a getter with a token finds a task.
        self._tokens.put(_ITEM)

    def put_front(self, task: Task) -> None:
        """Queue `task` ahead of every queued task of its priority."""
        # NOTE: two tasks of one priority put back at once, by two workers that
        # found the pool paused, may swap places.
        if task.priority == 0:
            self._default.appendleft(task)
        else:
            with self._lock:
                heapq.heappush(self._others, (task.priority, -next(self._front), task))
        self._tokens.put(_ITEM)

    def get(self) -> Task:
        """Block until a task is ready and return it.

        Raises:
            QueueClosed: The queue is closed and empty.
        """
        return self._take(self._tokens.get())

    def get_nowait(self) -> Task:
        """Return a ready task without blocking.

        Raises:
            queue.Empty: No task is ready.
            QueueClosed: The queue is closed and empty.
        """
        return self._take(self._tokens.get_nowait())

    def close(self) -> None:
        """Wake every blocked `get` once the tasks left are taken."""
        self._tokens.put(_CLOSED)

    def _take(self, token: object) -> Task:
        if token is _CLOSED:
            # Put the marker back for the next getter, so that every worker stops.
            self._tokens.put(_CLOSED)
            raise QueueClosed("the pool's ready queue is closed")
        if not self._others:
            # Only default-priority tasks wait, the common case, and popleft is
            # atomic, so no lock is needed. A task of another priority queued
            # after the check leaves the deque empty here, and the locked path
            # below finds it.
            try:
                return self._default.popleft()
            except IndexError:
                pass
        with self._lock:
            others = self._others
            # Each token taken stands for a task already queued, so one of the
            # two containers has a task.
            if others and (not self._default or others[0][0] < 0):
                return heapq.heappop(others)[2]
            return self._default.popleft()
