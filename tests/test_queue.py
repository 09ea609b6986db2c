"""Tests for syncq.queue.TaskQueue, with real threads where calls block."""

from __future__ import annotations

import enum
import functools
import math
import queue
import random
import sys
import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncq.errors import QueueClosed, SyncqError
from syncq.queue import TaskQueue

# Real seconds that a test waits to see that a call is still blocked. A call that
# should block but does not usually returns well within it; a longer value only
# makes the suite slower.
BLOCKED_WAIT = 0.05

# Real seconds that a timed-out call may overrun its timeout, generous enough for a
# loaded machine.
TIMEOUT_SLACK = 1.0

# Real seconds after which a thread that should have ended counts as hung.
THREAD_TIMEOUT = 5.0


class _Caller:
    """Run `func` in a thread once `barrier` releases, and record its outcome."""

    def __init__(self, func: Callable[[], object], barrier: threading.Barrier) -> None:
        self.result: object = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._func = func
        self._barrier = barrier
        self.thread = threading.Thread(target=self._run, name="test-queue-caller")
        self.thread.daemon = True
        self.thread.start()

    def _run(self) -> None:
        try:
            self._barrier.wait(timeout=THREAD_TIMEOUT)
            self.result = self._func()
        except Exception as exc:
            self.error = exc
        finally:
            self.done.set()

    def finish(self) -> bool:
        """Join the thread within THREAD_TIMEOUT and return whether it ended."""
        self.thread.join(timeout=THREAD_TIMEOUT)
        return not self.thread.is_alive()


def _start(func: Callable[[], object]) -> _Caller:
    """Start one caller of `func` and return once its thread is released."""
    barrier = threading.Barrier(2)
    caller = _Caller(func, barrier)
    barrier.wait(timeout=THREAD_TIMEOUT)
    return caller


def _drain(task_queue: TaskQueue[int]) -> list[int]:
    items = []
    while not task_queue.empty():
        items.append(task_queue.get_nowait())
    return items


class Unorderable:
    """An item that fails the test if compared, as a heap ordered by item would."""

    def __lt__(self, other: object) -> bool:
        raise AssertionError("items must never be compared")

    def __gt__(self, other: object) -> bool:
        raise AssertionError("items must never be compared")


class Level(enum.IntEnum):
    HIGH = 0
    LOW = 1


class TestTaskQueueConstruction:
    def test_task_queue_default_is_unbounded(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()

        for i in range(1000):
            task_queue.put_nowait(i)

        assert task_queue.qsize() == 1000
        assert not task_queue.full()

    def test_task_queue_negative_maxsize_is_unbounded(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue(-1)

        for i in range(10):
            task_queue.put_nowait(i)

        assert task_queue.qsize() == 10
        assert not task_queue.full()

    def test_task_queue_keeps_maxsize(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue(maxsize=3)

        assert task_queue.maxsize == 3

    @pytest.mark.parametrize("maxsize", [1.5, 2.0, "3", None, True, False])
    def test_task_queue_rejects_non_int_maxsize(self, maxsize: object) -> None:
        with pytest.raises(TypeError, match="maxsize"):
            TaskQueue(maxsize)  # type: ignore[arg-type]

    def test_task_queue_repr_shows_state(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue(4)
        task_queue.put(1)
        task_queue.close()

        text = repr(task_queue)

        assert text == "TaskQueue(maxsize=4, size=1, closed=True)"


class TestTaskQueueSize:
    def test_qsize_counts_items(self) -> None:
        task_queue: TaskQueue[str] = TaskQueue()
        task_queue.put("a")
        task_queue.put("b")

        size = task_queue.qsize()

        assert size == 2

    def test_empty_is_true_for_new_queue(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()

        assert task_queue.empty()

    def test_empty_is_false_after_put(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()

        task_queue.put(1)

        assert not task_queue.empty()

    def test_full_is_true_at_maxsize(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue(2)
        task_queue.put(1)
        assert not task_queue.full()

        task_queue.put(2)

        assert task_queue.full()

    def test_full_is_false_after_get(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue(1)
        task_queue.put(1)

        task_queue.get()

        assert not task_queue.full()


class TestTaskQueueNowait:
    def test_put_nowait_raises_full_when_full(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue(1)
        task_queue.put_nowait(1)

        with pytest.raises(queue.Full):
            task_queue.put_nowait(2)

        assert task_queue.qsize() == 1

    def test_get_nowait_raises_empty_when_empty(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()

        with pytest.raises(queue.Empty):
            task_queue.get_nowait()

    def test_put_nonblocking_ignores_timeout(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue(1)
        task_queue.put(1)

        with pytest.raises(queue.Full):
            task_queue.put(2, False, -1)

    def test_get_nonblocking_ignores_timeout(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()

        with pytest.raises(queue.Empty):
            task_queue.get(False, -1)

    def test_get_nowait_returns_item(self) -> None:
        task_queue: TaskQueue[str] = TaskQueue()
        task_queue.put_nowait("a")

        item = task_queue.get_nowait()

        assert item == "a"


class TestTaskQueueBlocking:
    def test_get_blocks_until_put(self) -> None:
        task_queue: TaskQueue[str] = TaskQueue()
        caller = _start(task_queue.get)
        assert not caller.done.wait(BLOCKED_WAIT)

        task_queue.put("a")

        assert caller.finish()
        assert caller.error is None
        assert caller.result == "a"

    def test_put_blocks_until_get(self) -> None:
        task_queue: TaskQueue[str] = TaskQueue(1)
        task_queue.put("a")
        caller = _start(lambda: task_queue.put("b"))
        assert not caller.done.wait(BLOCKED_WAIT)

        first = task_queue.get()

        assert caller.finish()
        assert caller.error is None
        assert first == "a"
        assert task_queue.get_nowait() == "b"

    def test_get_timeout_returns_item_put_meanwhile(self) -> None:
        task_queue: TaskQueue[str] = TaskQueue()
        caller = _start(lambda: task_queue.get(timeout=THREAD_TIMEOUT))
        assert not caller.done.wait(BLOCKED_WAIT)

        task_queue.put("a")

        assert caller.finish()
        assert caller.result == "a"

    def test_put_timeout_succeeds_when_slot_frees(self) -> None:
        task_queue: TaskQueue[str] = TaskQueue(1)
        task_queue.put("a")
        caller = _start(lambda: task_queue.put("b", timeout=THREAD_TIMEOUT))
        assert not caller.done.wait(BLOCKED_WAIT)

        task_queue.get()

        assert caller.finish()
        assert caller.error is None
        assert task_queue.get_nowait() == "b"

    def test_get_timeout_raises_empty_after_timeout(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        start = time.monotonic()

        with pytest.raises(queue.Empty):
            task_queue.get(timeout=BLOCKED_WAIT)

        elapsed = time.monotonic() - start
        assert elapsed >= BLOCKED_WAIT
        assert elapsed < BLOCKED_WAIT + TIMEOUT_SLACK

    def test_put_timeout_raises_full_after_timeout(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue(1)
        task_queue.put(1)
        start = time.monotonic()

        with pytest.raises(queue.Full):
            task_queue.put(2, timeout=BLOCKED_WAIT)

        elapsed = time.monotonic() - start
        assert elapsed >= BLOCKED_WAIT
        assert elapsed < BLOCKED_WAIT + TIMEOUT_SLACK
        assert task_queue.qsize() == 1

    def test_get_zero_timeout_raises_empty(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()

        with pytest.raises(queue.Empty):
            task_queue.get(timeout=0)

    def test_put_zero_timeout_raises_full(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue(1)
        task_queue.put(1)

        with pytest.raises(queue.Full):
            task_queue.put(2, timeout=0)

    def test_put_unbounded_never_blocks(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()

        for i in range(100):
            task_queue.put(i, timeout=0)

        assert task_queue.qsize() == 100

    @pytest.mark.parametrize("timeout", [math.inf, 10**400, 1e300])
    def test_get_huge_timeout_waits_for_item(self, timeout: float) -> None:
        task_queue: TaskQueue[str] = TaskQueue()
        caller = _start(lambda: task_queue.get(timeout=timeout))
        assert not caller.done.wait(BLOCKED_WAIT)

        task_queue.put("a")

        assert caller.finish()
        assert caller.error is None
        assert caller.result == "a"

    @pytest.mark.parametrize("timeout", [math.inf, 10**400, 1e300])
    def test_put_huge_timeout_waits_for_slot(self, timeout: float) -> None:
        task_queue: TaskQueue[str] = TaskQueue(1)
        task_queue.put("a")
        caller = _start(lambda: task_queue.put("b", timeout=timeout))
        assert not caller.done.wait(BLOCKED_WAIT)

        task_queue.get()

        assert caller.finish()
        assert caller.error is None
        assert task_queue.get_nowait() == "b"


class TestTaskQueueTimeoutValidation:
    @pytest.mark.parametrize("timeout", [-1, -0.001, -math.inf, math.nan])
    def test_get_rejects_invalid_timeout(self, timeout: float) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        task_queue.put(1)

        with pytest.raises(ValueError, match="timeout"):
            task_queue.get(timeout=timeout)

    @pytest.mark.parametrize("maxsize", [0, 5])
    @pytest.mark.parametrize("timeout", [-1, -0.001, -math.inf, math.nan])
    def test_put_rejects_invalid_timeout(self, maxsize: int, timeout: float) -> None:
        task_queue: TaskQueue[int] = TaskQueue(maxsize)

        with pytest.raises(ValueError, match="timeout"):
            task_queue.put(1, timeout=timeout)

        assert task_queue.empty()

    @pytest.mark.parametrize("timeout", [True, "1", [1]])
    def test_get_rejects_non_number_timeout(self, timeout: object) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        task_queue.put(1)

        with pytest.raises(TypeError, match="timeout"):
            task_queue.get(timeout=timeout)  # type: ignore[arg-type]

    @pytest.mark.parametrize("timeout", [True, "1", [1]])
    def test_put_rejects_non_number_timeout(self, timeout: object) -> None:
        task_queue: TaskQueue[int] = TaskQueue()

        with pytest.raises(TypeError, match="timeout"):
            task_queue.put(1, timeout=timeout)  # type: ignore[arg-type]


class TestTaskQueuePriority:
    def test_get_returns_lowest_priority_first(self) -> None:
        task_queue: TaskQueue[str] = TaskQueue()
        task_queue.put("low", priority=5)
        task_queue.put("high", priority=1)
        task_queue.put("middle", priority=3)

        order = [task_queue.get() for _ in range(3)]

        assert order == ["high", "middle", "low"]

    def test_get_is_fifo_among_equal_priorities(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        for i in range(20):
            task_queue.put(i, priority=7)

        order = _drain(task_queue)

        assert order == list(range(20))

    def test_default_priority_is_fifo(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        for i in range(20):
            task_queue.put(i)

        order = _drain(task_queue)

        assert order == list(range(20))

    def test_get_orders_interleaved_puts_and_gets(self) -> None:
        task_queue: TaskQueue[str] = TaskQueue()
        task_queue.put("b1", priority=2)
        task_queue.put("a1", priority=1)
        first = task_queue.get()
        task_queue.put("a2", priority=1)
        task_queue.put("c1", priority=3)
        task_queue.put("b2", priority=2)

        rest = [task_queue.get() for _ in range(4)]

        assert first == "a1"
        assert rest == ["a2", "b1", "b2", "c1"]

    def test_priority_mixes_ints_and_floats(self) -> None:
        task_queue: TaskQueue[str] = TaskQueue()
        task_queue.put("two", priority=2)
        task_queue.put("one-and-half", priority=1.5)
        task_queue.put("one", priority=1.0)
        task_queue.put("also-one", priority=1)

        order = [task_queue.get() for _ in range(4)]

        assert order == ["one", "also-one", "one-and-half", "two"]

    def test_priority_accepts_negative_and_infinite(self) -> None:
        task_queue: TaskQueue[str] = TaskQueue()
        task_queue.put("zero", priority=0)
        task_queue.put("last", priority=math.inf)
        task_queue.put("negative", priority=-1)
        task_queue.put("first", priority=-math.inf)

        order = [task_queue.get() for _ in range(4)]

        assert order == ["first", "negative", "zero", "last"]

    def test_priority_accepts_int_enum(self) -> None:
        task_queue: TaskQueue[str] = TaskQueue()
        task_queue.put("low", priority=Level.LOW)
        task_queue.put("high", priority=Level.HIGH)

        first = task_queue.get()

        assert first == "high"

    def test_equal_priority_items_never_compared(self) -> None:
        task_queue: TaskQueue[Unorderable] = TaskQueue()
        items = [Unorderable() for _ in range(10)]
        for item in items:
            task_queue.put(item, priority=1)

        order = [task_queue.get() for _ in range(10)]

        assert order == items

    @pytest.mark.parametrize("priority", [True, False, "1", None, 1j, [1]])
    def test_put_rejects_non_number_priority(self, priority: object) -> None:
        task_queue: TaskQueue[int] = TaskQueue()

        with pytest.raises(TypeError, match="priority"):
            task_queue.put(1, priority=priority)  # type: ignore[arg-type]

        assert task_queue.empty()

    def test_put_rejects_nan_priority(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()

        with pytest.raises(ValueError, match="priority"):
            task_queue.put(1, priority=math.nan)

        assert task_queue.empty()

    def test_put_nowait_rejects_bool_priority(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()

        with pytest.raises(TypeError, match="priority"):
            task_queue.put_nowait(1, priority=True)

    def test_rejected_put_leaves_no_unfinished_task(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        with pytest.raises(ValueError, match="priority"):
            task_queue.put(1, priority=math.nan)

        caller = _start(task_queue.join)

        assert caller.finish()

    @given(
        st.lists(
            st.one_of(
                st.integers(min_value=-3, max_value=3),
                st.floats(allow_nan=False),
            ),
            max_size=60,
        )
    )
    def test_order_is_stable_sort_by_priority(self, priorities: list[float]) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        for index, priority in enumerate(priorities):
            task_queue.put(index, priority=priority)

        order = _drain(task_queue)

        assert order == sorted(range(len(priorities)), key=priorities.__getitem__)

    @given(
        st.lists(
            st.one_of(st.none(), st.integers(min_value=-3, max_value=3)),
            max_size=80,
        )
    )
    def test_interleaved_operations_match_model(
        self, operations: list[int | None]
    ) -> None:
        # Each int puts an item with that priority and None gets one. The model
        # returns the earliest-put item among those with the lowest priority.
        task_queue: TaskQueue[int] = TaskQueue()
        model: list[tuple[int, int]] = []
        got: list[int] = []
        expected: list[int] = []

        for index, operation in enumerate(operations):
            if operation is not None:
                task_queue.put(index, priority=operation)
                model.append((operation, index))
            elif model:
                entry = min(model)
                model.remove(entry)
                expected.append(entry[1])
                got.append(task_queue.get_nowait())

        assert got == expected
        assert task_queue.qsize() == len(model)


class TestTaskQueueTaskDone:
    def test_task_done_raises_when_called_too_often(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        task_queue.put(1)
        task_queue.get()
        task_queue.task_done()

        with pytest.raises(ValueError, match="task_done"):
            task_queue.task_done()

    def test_task_done_raises_on_new_queue(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()

        with pytest.raises(ValueError, match="task_done"):
            task_queue.task_done()

    def test_join_returns_when_no_task_unfinished(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()

        caller = _start(task_queue.join)

        assert caller.finish()

    def test_join_blocks_until_every_task_done(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        task_queue.put(1)
        task_queue.put(2)
        caller = _start(task_queue.join)
        task_queue.get()
        task_queue.get()
        task_queue.task_done()
        assert not caller.done.wait(BLOCKED_WAIT)

        task_queue.task_done()

        assert caller.finish()
        assert caller.error is None

    def test_join_waits_for_items_not_yet_got(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        task_queue.put(1)

        caller = _start(task_queue.join)

        assert not caller.done.wait(BLOCKED_WAIT)
        task_queue.get()
        task_queue.task_done()
        assert caller.finish()

    def test_join_wakes_every_waiter(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        task_queue.put(1)
        barrier = threading.Barrier(4)
        callers = [_Caller(task_queue.join, barrier) for _ in range(3)]
        barrier.wait(timeout=THREAD_TIMEOUT)
        task_queue.get()
        assert not callers[0].done.wait(BLOCKED_WAIT)

        task_queue.task_done()

        for caller in callers:
            assert caller.finish()


class TestTaskQueueClose:
    def test_closed_is_false_until_close(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        assert not task_queue.closed

        task_queue.close()

        assert task_queue.closed

    def test_close_twice_is_harmless(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        task_queue.put(1)
        task_queue.close()

        task_queue.close()

        assert task_queue.closed
        assert task_queue.get() == 1

    def test_put_after_close_raises_queue_closed(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        task_queue.close()

        with pytest.raises(QueueClosed):
            task_queue.put(1)

        assert task_queue.empty()

    def test_put_nowait_on_full_closed_raises_queue_closed(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue(1)
        task_queue.put(1)
        task_queue.close()

        with pytest.raises(QueueClosed):
            task_queue.put_nowait(2)

    def test_get_after_close_drains_then_raises(self) -> None:
        task_queue: TaskQueue[str] = TaskQueue()
        task_queue.put("b", priority=2)
        task_queue.put("a", priority=1)
        task_queue.close()

        drained = [task_queue.get(), task_queue.get()]

        assert drained == ["a", "b"]
        with pytest.raises(QueueClosed):
            task_queue.get()

    def test_get_nowait_on_closed_empty_raises_queue_closed(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        task_queue.close()

        with pytest.raises(QueueClosed):
            task_queue.get_nowait()

    def test_get_timeout_on_closed_empty_raises_queue_closed(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        task_queue.close()

        with pytest.raises(QueueClosed):
            task_queue.get(timeout=THREAD_TIMEOUT)

    @pytest.mark.timeout(10)
    @pytest.mark.parametrize("timeout", [None, 30.0])
    def test_close_wakes_every_blocked_getter(self, timeout: float | None) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        barrier = threading.Barrier(5)
        callers = [
            _Caller(lambda: task_queue.get(timeout=timeout), barrier) for _ in range(4)
        ]
        barrier.wait(timeout=THREAD_TIMEOUT)
        assert not callers[0].done.wait(BLOCKED_WAIT)

        task_queue.close()

        for caller in callers:
            assert caller.finish()
            assert isinstance(caller.error, QueueClosed)

    @pytest.mark.timeout(10)
    @pytest.mark.parametrize("timeout", [None, 30.0])
    def test_close_wakes_every_blocked_putter(self, timeout: float | None) -> None:
        task_queue: TaskQueue[int] = TaskQueue(1)
        task_queue.put(0)
        barrier = threading.Barrier(5)
        callers = [
            _Caller(lambda: task_queue.put(1, timeout=timeout), barrier)
            for _ in range(4)
        ]
        barrier.wait(timeout=THREAD_TIMEOUT)
        assert not callers[0].done.wait(BLOCKED_WAIT)

        task_queue.close()

        for caller in callers:
            assert caller.finish()
            assert isinstance(caller.error, QueueClosed)
        assert task_queue.qsize() == 1

    def test_join_after_close_waits_for_remaining(self) -> None:
        task_queue: TaskQueue[int] = TaskQueue()
        task_queue.put(1)
        task_queue.put(2)
        task_queue.get()
        task_queue.task_done()
        task_queue.close()
        caller = _start(task_queue.join)
        assert not caller.done.wait(BLOCKED_WAIT)

        task_queue.get()
        task_queue.task_done()

        assert caller.finish()
        assert caller.error is None

    def test_queue_closed_is_syncq_error(self) -> None:
        assert issubclass(QueueClosed, SyncqError)

    @pytest.mark.skipif(sys.version_info < (3, 13), reason="queue.ShutDown is 3.13+")
    def test_queue_closed_is_stdlib_shut_down(self) -> None:
        shut_down: type[Exception] = getattr(queue, "ShutDown")  # noqa: B009

        assert issubclass(QueueClosed, shut_down)


class TestTaskQueueStress:
    PRODUCERS = 16
    CONSUMERS = 16
    ITEMS_PER_PRODUCER = 500

    @pytest.mark.timeout(20)
    def test_stress_loses_and_duplicates_no_item(self) -> None:
        task_queue: TaskQueue[tuple[int, int]] = TaskQueue(8)
        received: list[list[tuple[int, int]]] = [[] for _ in range(self.CONSUMERS)]
        barrier = threading.Barrier(self.PRODUCERS + self.CONSUMERS + 1)

        def produce(producer: int) -> None:
            rng = random.Random(producer)
            for index in range(self.ITEMS_PER_PRODUCER):
                task_queue.put((producer, index), priority=rng.randint(0, 9))

        def consume(consumer: int) -> None:
            while True:
                try:
                    item = task_queue.get()
                except QueueClosed:
                    return
                received[consumer].append(item)
                task_queue.task_done()

        producers = [
            _Caller(functools.partial(produce, p), barrier)
            for p in range(self.PRODUCERS)
        ]
        consumers = [
            _Caller(functools.partial(consume, c), barrier)
            for c in range(self.CONSUMERS)
        ]
        barrier.wait(timeout=THREAD_TIMEOUT)
        for producer in producers:
            assert producer.finish()
            assert producer.error is None
        joiner = _start(task_queue.join)
        assert joiner.finish()
        task_queue.close()
        for consumer in consumers:
            assert consumer.finish()
            assert consumer.error is None

        everything = [item for items in received for item in items]
        expected = [
            (p, i)
            for p in range(self.PRODUCERS)
            for i in range(self.ITEMS_PER_PRODUCER)
        ]
        assert len(everything) == len(expected)
        assert len(set(everything)) == len(everything)
        assert sorted(everything) == expected
