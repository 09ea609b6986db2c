"""Tests of map_ordered and map_unordered on WorkerPool and ThreadPoolExecutor."""

from __future__ import annotations

import gc
import math
import operator
import threading
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeoutError
from typing import Any, Callable, Protocol

import pytest

from syncq.pool import WorkerPool
from syncq.pool._map import map_ordered, map_unordered
from syncq.retry import FixedBackoff, Retry
from syncq.testing import FakeClock

WAIT = 5.0  # real seconds any event in these tests may take before the test fails


class MapFunction(Protocol):
    def __call__(
        self,
        submit: Callable[..., Future[Any]],
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        buffersize: int,
        timeout: float | None = None,
        chunksize: int = 1,
        clock: Any = None,
    ) -> Generator[Any, None, None]: ...


EXECUTORS = [WorkerPool, ThreadPoolExecutor]
MAPS: list[MapFunction] = [map_ordered, map_unordered]

executors = pytest.mark.parametrize("executor_class", EXECUTORS)
maps = pytest.mark.parametrize("map_function", MAPS)


class Gate:
    """A call that blocks until the test opens the gate, at most WAIT seconds."""

    def __init__(self, value: object = "gate") -> None:
        self.value = value
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self) -> object:
        self.entered.set()
        if not self.opened.wait(WAIT):
            raise RuntimeError("the test never opened the gate")
        return self.value


class RecordingSubmit:
    """A submit callable that records the functions and futures it passes on."""

    def __init__(self, submit: Callable[..., Future[Any]]) -> None:
        self._submit = submit
        self.fns: list[Callable[..., Any]] = []
        self.futures: list[Future[Any]] = []

    def __call__(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        future = self._submit(fn, *args)
        self.fns.append(fn)
        self.futures.append(future)
        return future


class EndlessInput:
    """An endless iterable of 0, 1, 2, ... that counts the items taken from it."""

    def __init__(self) -> None:
        self.pulled = 0

    def __iter__(self) -> Iterator[int]:
        while True:
            item = self.pulled
            self.pulled += 1
            yield item


def call(function: Callable[[], object]) -> object:
    """Call `function`, so that one map can mix quick and blocked tasks."""
    return function()


def add_three(first: int, second: int, third: int) -> int:
    return first + second + third


def reciprocal(value: float) -> float:
    return 1 / value


def failing_input(items: Iterable[int], error: BaseException) -> Iterator[int]:
    yield from items
    raise error


def unused_submit(fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
    raise AssertionError("submit was called")


def drain(results: Iterator[Any], into: list[Any]) -> None:
    """Append every result to `into`, so a test can check what came before an error."""
    for result in results:
        into.append(result)


class TestMapShared:
    """Behaviour that map_ordered and map_unordered share, on both executors."""

    @executors
    @maps
    def test_map_empty_input_yields_nothing(
        self, executor_class: Callable[[int], Executor], map_function: MapFunction
    ) -> None:
        with executor_class(2) as executor:
            results = list(map_function(executor.submit, abs, [], buffersize=4))

        assert results == []

    @executors
    @maps
    def test_map_empty_input_submits_nothing(
        self, executor_class: Callable[[int], Executor], map_function: MapFunction
    ) -> None:
        with executor_class(2) as executor:
            submit = RecordingSubmit(executor.submit)
            list(map_function(submit, abs, [], buffersize=4, chunksize=3))

        assert submit.futures == []

    @maps
    def test_map_without_iterables_yields_nothing(
        self, map_function: MapFunction
    ) -> None:
        with ThreadPoolExecutor(2) as executor:
            results = list(map_function(executor.submit, abs, buffersize=4))

        assert results == []

    @executors
    @maps
    @pytest.mark.parametrize("chunksize", [1, 2])
    def test_map_unequal_iterables_stop_at_shortest(
        self,
        executor_class: Callable[[int], Executor],
        map_function: MapFunction,
        chunksize: int,
    ) -> None:
        with executor_class(2) as executor:
            results = map_function(
                executor.submit,
                add_three,
                [1, 2, 3],
                [10, 20],
                [100, 200, 300, 400],
                buffersize=4,
                chunksize=chunksize,
            )

            assert sorted(results) == [111, 222]

    @executors
    @maps
    @pytest.mark.parametrize("chunksize", [1, 3])
    def test_map_call_submits_buffersize_tasks(
        self,
        executor_class: Callable[[int], Executor],
        map_function: MapFunction,
        chunksize: int,
    ) -> None:
        endless = EndlessInput()
        with executor_class(2) as executor:
            submit = RecordingSubmit(executor.submit)
            results = map_function(
                submit, abs, endless, buffersize=4, chunksize=chunksize
            )

            assert len(submit.futures) == 4
            assert endless.pulled == 4 * chunksize
            results.close()

    @executors
    @maps
    def test_map_endless_input_read_ahead_stays_bounded(
        self, executor_class: Callable[[int], Executor], map_function: MapFunction
    ) -> None:
        endless = EndlessInput()
        with executor_class(2) as executor:
            results = map_function(executor.submit, abs, endless, buffersize=8)

            for _ in range(2000):
                next(results)

            # Each result taken out lets exactly one more item in.
            assert endless.pulled == 8 + 2000
            results.close()

    @executors
    @maps
    def test_map_chunked_read_ahead_stays_bounded(
        self, executor_class: Callable[[int], Executor], map_function: MapFunction
    ) -> None:
        endless = EndlessInput()
        with executor_class(2) as executor:
            results = map_function(
                executor.submit, abs, endless, buffersize=4, chunksize=5
            )

            for _ in range(1001):
                next(results)

            # Every chunk up to the one being yielded, plus four submitted ahead.
            assert endless.pulled == (1000 // 5 + 1 + 4) * 5
            results.close()

    @executors
    @maps
    def test_map_close_cancels_unstarted_tasks(
        self, executor_class: Callable[[int], Executor], map_function: MapFunction
    ) -> None:
        gate = Gate()
        with executor_class(1) as executor:
            submit = RecordingSubmit(executor.submit)
            try:
                results = map_function(submit, call, [gate, abs, abs], buffersize=3)
                assert gate.entered.wait(WAIT)

                results.close()

                assert [future.cancelled() for future in submit.futures] == [
                    False,
                    True,
                    True,
                ]
            finally:
                gate.opened.set()

    @executors
    @maps
    def test_map_close_lets_running_task_finish(
        self, executor_class: Callable[[int], Executor], map_function: MapFunction
    ) -> None:
        gate = Gate()
        with executor_class(1) as executor:
            submit = RecordingSubmit(executor.submit)
            try:
                results = map_function(submit, call, [gate, abs], buffersize=2)
                assert gate.entered.wait(WAIT)
                results.close()
            finally:
                gate.opened.set()

            assert submit.futures[0].result(WAIT) == "gate"

    @executors
    @maps
    def test_map_dropped_iterator_cancels_unstarted_tasks(
        self, executor_class: Callable[[int], Executor], map_function: MapFunction
    ) -> None:
        gate = Gate()
        with executor_class(1) as executor:
            submit = RecordingSubmit(executor.submit)
            try:
                results = map_function(submit, call, [gate, abs, abs], buffersize=3)
                assert gate.entered.wait(WAIT)

                del results
                gc.collect()

                assert submit.futures[1].cancelled()
                assert submit.futures[2].cancelled()
            finally:
                gate.opened.set()

    @executors
    @maps
    def test_map_error_ends_iteration(
        self, executor_class: Callable[[int], Executor], map_function: MapFunction
    ) -> None:
        with executor_class(2) as executor:
            results = map_function(executor.submit, reciprocal, [0, 1], buffersize=1)

            with pytest.raises(ZeroDivisionError):
                next(results)
            with pytest.raises(StopIteration):
                next(results)

    @executors
    @maps
    def test_map_error_cancels_unstarted_tasks(
        self, executor_class: Callable[[int], Executor], map_function: MapFunction
    ) -> None:
        def fail() -> None:
            raise KeyError("failed")

        gate = Gate()
        with executor_class(1) as executor:
            submit = RecordingSubmit(executor.submit)
            try:
                results = map_function(
                    submit, call, [fail, gate, abs, abs], buffersize=4
                )

                with pytest.raises(KeyError):
                    next(results)

                assert submit.futures[2].cancelled()
                assert submit.futures[3].cancelled()
            finally:
                gate.opened.set()

    @executors
    @maps
    @pytest.mark.parametrize("chunksize", [1, 2])
    def test_map_input_error_raised_after_earlier_results(
        self,
        executor_class: Callable[[int], Executor],
        map_function: MapFunction,
        chunksize: int,
    ) -> None:
        items = failing_input([1, 2, 3], ValueError("unreadable line"))
        received: list[int] = []
        with executor_class(2) as executor:
            results = map_function(
                executor.submit, abs, items, buffersize=2, chunksize=chunksize
            )

            with pytest.raises(ValueError, match="unreadable line"):
                drain(results, received)

        assert sorted(received) == [1, 2, 3]

    @maps
    def test_map_input_interrupt_raised_at_once(
        self, map_function: MapFunction
    ) -> None:
        items = failing_input([1, 2], KeyboardInterrupt())
        with ThreadPoolExecutor(2) as executor, pytest.raises(KeyboardInterrupt):
            map_function(executor.submit, abs, items, buffersize=4)

    @executors
    @maps
    def test_map_submit_error_raised_from_call(
        self, executor_class: Callable[[int], Executor], map_function: MapFunction
    ) -> None:
        executor = executor_class(1)
        executor.shutdown()

        with pytest.raises(RuntimeError, match="shutdown"):
            map_function(executor.submit, abs, [1], buffersize=1)

    @executors
    @maps
    def test_map_timeout_raises_for_blocked_task(
        self,
        executor_class: Callable[[int], Executor],
        map_function: MapFunction,
        clock: FakeClock,
    ) -> None:
        gate = Gate()
        with executor_class(1) as executor:
            try:
                results = map_function(
                    executor.submit, call, [gate], buffersize=1, timeout=10, clock=clock
                )
                clock.advance(10)

                with pytest.raises(FuturesTimeoutError):
                    next(results)
            finally:
                gate.opened.set()

    @executors
    @maps
    def test_map_zero_timeout_raises_for_blocked_task(
        self, executor_class: Callable[[int], Executor], map_function: MapFunction
    ) -> None:
        gate = Gate()
        with executor_class(1) as executor:
            try:
                results = map_function(
                    executor.submit, call, [gate], buffersize=1, timeout=0
                )

                with pytest.raises(FuturesTimeoutError):
                    next(results)
            finally:
                gate.opened.set()

    # A deadline reset on every next() would wait 10 real seconds here.
    @pytest.mark.timeout(WAIT)
    @executors
    @maps
    def test_map_deadline_measured_from_call(
        self,
        executor_class: Callable[[int], Executor],
        map_function: MapFunction,
        clock: FakeClock,
    ) -> None:
        gate = Gate()
        quick = Gate("quick")
        quick.opened.set()
        with executor_class(2) as executor:
            try:
                results = map_function(
                    executor.submit,
                    call,
                    [quick, gate],
                    buffersize=2,
                    timeout=10,
                    clock=clock,
                )
                clock.advance(6)
                assert next(results) == "quick"
                clock.advance(6)

                with pytest.raises(FuturesTimeoutError):
                    next(results)
            finally:
                gate.opened.set()

    @executors
    @maps
    def test_map_ready_result_returned_after_deadline(
        self,
        executor_class: Callable[[int], Executor],
        map_function: MapFunction,
        clock: FakeClock,
    ) -> None:
        with executor_class(1) as executor:
            submit = RecordingSubmit(executor.submit)
            results = map_function(
                submit, abs, [-3], buffersize=1, timeout=10, clock=clock
            )
            submit.futures[0].result(WAIT)
            clock.advance(60)

            assert next(results) == 3

    @executors
    @maps
    def test_map_timeout_cancels_unstarted_tasks(
        self,
        executor_class: Callable[[int], Executor],
        map_function: MapFunction,
        clock: FakeClock,
    ) -> None:
        gate = Gate()
        with executor_class(1) as executor:
            submit = RecordingSubmit(executor.submit)
            try:
                results = map_function(
                    submit, call, [gate, abs], buffersize=2, timeout=1, clock=clock
                )
                assert gate.entered.wait(WAIT)
                clock.advance(1)

                with pytest.raises(FuturesTimeoutError):
                    next(results)

                assert submit.futures[1].cancelled()
            finally:
                gate.opened.set()

    @maps
    def test_map_infinite_timeout_means_no_limit(
        self, map_function: MapFunction
    ) -> None:
        with ThreadPoolExecutor(2) as executor:
            results = map_function(
                executor.submit, abs, [-1, -2], buffersize=2, timeout=math.inf
            )

            assert sorted(results) == [1, 2]

    @executors
    @maps
    @pytest.mark.parametrize("chunksize", [1, 16])
    def test_map_many_items_yield_every_result(
        self,
        executor_class: Callable[[int], Executor],
        map_function: MapFunction,
        chunksize: int,
    ) -> None:
        with executor_class(4) as executor:
            results = map_function(
                executor.submit,
                operator.mul,
                range(5000),
                range(5000),
                buffersize=8,
                chunksize=chunksize,
            )

            assert sorted(results) == [n * n for n in range(5000)]


class TestMapOrdered:
    @executors
    def test_map_ordered_keeps_input_order(
        self, executor_class: Callable[[int], Executor]
    ) -> None:
        last_done = threading.Event()

        def wait_for_last() -> str:
            if not last_done.wait(WAIT):
                raise RuntimeError("the last task never ran")
            return "first"

        def last() -> str:
            last_done.set()
            return "last"

        tasks = [wait_for_last, lambda: "second", last]
        with executor_class(3) as executor:
            results = list(map_ordered(executor.submit, call, tasks, buffersize=3))

        assert results == ["first", "second", "last"]

    @executors
    def test_map_ordered_flattens_chunks_in_order(
        self, executor_class: Callable[[int], Executor]
    ) -> None:
        with executor_class(3) as executor:
            results = map_ordered(
                executor.submit, operator.neg, range(10), buffersize=2, chunksize=3
            )

            assert list(results) == [-n for n in range(10)]

    @executors
    def test_map_ordered_submits_one_task_per_chunk(
        self, executor_class: Callable[[int], Executor]
    ) -> None:
        with executor_class(3) as executor:
            submit = RecordingSubmit(executor.submit)
            list(map_ordered(submit, abs, range(10), buffersize=2, chunksize=3))

        assert len(submit.futures) == 4

    @executors
    def test_map_ordered_submits_fn_for_single_items(
        self, executor_class: Callable[[int], Executor]
    ) -> None:
        with executor_class(2) as executor:
            submit = RecordingSubmit(executor.submit)
            list(map_ordered(submit, abs, range(3), buffersize=2))

        assert submit.fns == [abs, abs, abs]

    @executors
    def test_map_ordered_error_raised_at_its_item(
        self, executor_class: Callable[[int], Executor]
    ) -> None:
        received: list[float] = []
        with executor_class(2) as executor:
            results = map_ordered(
                executor.submit, reciprocal, [1, 2, 0, 4], buffersize=4
            )

            with pytest.raises(ZeroDivisionError):
                drain(results, received)

        assert received == [1.0, 0.5]

    @executors
    def test_map_ordered_chunk_error_after_earlier_items(
        self, executor_class: Callable[[int], Executor]
    ) -> None:
        received: list[float] = []
        with executor_class(2) as executor:
            results = map_ordered(
                executor.submit, reciprocal, [1, 2, 0, 4], buffersize=1, chunksize=4
            )

            with pytest.raises(ZeroDivisionError):
                drain(results, received)

        assert received == [1.0, 0.5]

    @executors
    def test_map_ordered_chunk_stops_at_failing_item(
        self, executor_class: Callable[[int], Executor]
    ) -> None:
        called: list[int] = []

        def record(value: int) -> float:
            called.append(value)
            return 1 / value

        with executor_class(2) as executor:
            results = map_ordered(
                executor.submit, record, [1, 0, 4], buffersize=1, chunksize=3
            )

            with pytest.raises(ZeroDivisionError):
                list(results)

        assert called == [1, 0]

    def test_map_ordered_pool_retries_whole_chunk(self) -> None:
        called: list[int] = []

        def fail_once_on_two(value: int) -> int:
            called.append(value)
            if value == 2 and called.count(2) == 1:
                raise OSError("transient")
            return value

        retry = Retry(2, backoff=FixedBackoff(0.0))
        with WorkerPool(1, retry=retry) as pool:
            results = list(
                map_ordered(
                    pool.submit, fail_once_on_two, [1, 2, 3], buffersize=1, chunksize=3
                )
            )

        assert results == [1, 2, 3]
        assert called == [1, 2, 1, 2, 3]


class TestMapUnordered:
    @executors
    def test_map_unordered_yields_in_completion_order(
        self, executor_class: Callable[[int], Executor]
    ) -> None:
        gate = Gate("slow")
        with executor_class(2) as executor:
            try:
                results = map_unordered(
                    executor.submit, call, [gate, lambda: "quick"], buffersize=2
                )

                assert next(results) == "quick"
                gate.opened.set()
                assert next(results) == "slow"
            finally:
                gate.opened.set()

    @executors
    def test_map_unordered_keeps_chunk_items_together(
        self, executor_class: Callable[[int], Executor]
    ) -> None:
        with executor_class(2) as executor:
            results = list(
                map_unordered(
                    executor.submit, abs, range(10), buffersize=2, chunksize=5
                )
            )

        assert sorted([results[:5], results[5:]]) == [
            [0, 1, 2, 3, 4],
            [5, 6, 7, 8, 9],
        ]

    @executors
    def test_map_unordered_raises_error_when_task_completes(
        self, executor_class: Callable[[int], Executor]
    ) -> None:
        def fail() -> None:
            raise KeyError("failed")

        gate = Gate()
        with executor_class(2) as executor:
            submit = RecordingSubmit(executor.submit)
            try:
                results = map_unordered(submit, call, [gate, fail], buffersize=2)

                with pytest.raises(KeyError):
                    next(results)

                assert not submit.futures[0].done()
            finally:
                gate.opened.set()

    @executors
    def test_map_unordered_chunk_error_after_earlier_items(
        self, executor_class: Callable[[int], Executor]
    ) -> None:
        received: list[float] = []
        with executor_class(2) as executor:
            results = map_unordered(
                executor.submit, reciprocal, [1, 2, 0, 4], buffersize=1, chunksize=4
            )

            with pytest.raises(ZeroDivisionError):
                drain(results, received)

        assert received == [1.0, 0.5]

    @executors
    def test_map_unordered_submits_one_task_per_chunk(
        self, executor_class: Callable[[int], Executor]
    ) -> None:
        with executor_class(3) as executor:
            submit = RecordingSubmit(executor.submit)
            list(map_unordered(submit, abs, range(10), buffersize=2, chunksize=3))

        assert len(submit.futures) == 4


BAD_COUNTS: list[tuple[object, type[Exception]]] = [
    (0, ValueError),
    (-1, ValueError),
    (True, TypeError),
    (1.5, TypeError),
    ("2", TypeError),
    (None, TypeError),
]

BAD_TIMEOUTS: list[tuple[object, type[Exception]]] = [
    (-1, ValueError),
    (-math.inf, ValueError),
    (math.nan, ValueError),
    (True, TypeError),
    ("1", TypeError),
]


class TestMapValidation:
    @maps
    @pytest.mark.parametrize(("value", "error"), BAD_COUNTS)
    def test_map_rejects_bad_buffersize(
        self, map_function: MapFunction, value: Any, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match=f"buffersize .*{value!r}"):
            map_function(unused_submit, abs, [1], buffersize=value)

    @maps
    @pytest.mark.parametrize(("value", "error"), BAD_COUNTS)
    def test_map_rejects_bad_chunksize(
        self, map_function: MapFunction, value: Any, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match=f"chunksize .*{value!r}"):
            map_function(unused_submit, abs, [1], buffersize=1, chunksize=value)

    @maps
    @pytest.mark.parametrize(("value", "error"), BAD_TIMEOUTS)
    def test_map_rejects_bad_timeout(
        self, map_function: MapFunction, value: Any, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match=f"timeout .*{value!r}"):
            map_function(unused_submit, abs, [1], buffersize=1, timeout=value)

    @maps
    def test_map_rejects_uncallable_fn(self, map_function: MapFunction) -> None:
        not_callable: Any = 5

        with pytest.raises(TypeError, match="fn must be callable, got 5"):
            map_function(unused_submit, not_callable, [1], buffersize=1)

    @maps
    def test_map_rejects_uncallable_submit(self, map_function: MapFunction) -> None:
        not_callable: Any = None

        with pytest.raises(TypeError, match="submit must be callable, got None"):
            map_function(not_callable, abs, [1], buffersize=1)

    @maps
    def test_map_rejects_bad_clock(self, map_function: MapFunction) -> None:
        with pytest.raises(TypeError, match="clock must provide"):
            map_function(unused_submit, abs, [1], buffersize=1, clock=object())

    @maps
    def test_map_rejects_non_iterable_input(self, map_function: MapFunction) -> None:
        not_iterable: Any = 5

        with pytest.raises(TypeError, match="not iterable"):
            map_function(unused_submit, abs, not_iterable, buffersize=1)

    @maps
    def test_map_bad_argument_submits_nothing(self, map_function: MapFunction) -> None:
        with ThreadPoolExecutor(1) as executor:
            submit = RecordingSubmit(executor.submit)

            with pytest.raises(ValueError):
                map_function(submit, abs, [1], buffersize=1, timeout=-1)

        assert submit.futures == []


class TestWorkerPoolMapMethods:
    @pytest.mark.timeout(10)
    def test_map_batches_chunks(self) -> None:
        with WorkerPool(2) as pool:
            results = list(pool.map(operator.neg, range(25), chunksize=4))
            stats = pool.stats()
        assert results == [-i for i in range(25)]
        # 25 items in chunks of 4 are 7 tasks.
        assert stats.succeeded == 7

    @pytest.mark.timeout(10)
    def test_map_unordered_yields_every_result(self) -> None:
        with WorkerPool(3) as pool:
            results = list(pool.map_unordered(operator.neg, range(100), chunksize=3))
        assert sorted(results) == sorted(-i for i in range(100))

    @pytest.mark.timeout(10)
    def test_map_unordered_does_not_wait_for_slow_item(self) -> None:
        gate = threading.Event()

        def slow_first(value: int) -> int:
            if value == 0 and not gate.wait(WAIT):
                raise RuntimeError("gate never opened")
            return value

        with WorkerPool(2) as pool:
            results = pool.map_unordered(slow_first, range(5))
            first = [next(results) for _ in range(4)]
            gate.set()
            rest = list(results)
        assert sorted(first) == [1, 2, 3, 4]
        assert rest == [0]

    @pytest.mark.timeout(10)
    def test_map_default_buffersize_bounds_read_ahead(self) -> None:
        pulled: list[int] = []

        def numbers() -> Iterator[int]:
            for i in range(1000):
                pulled.append(i)
                yield i

        with WorkerPool(2) as pool:
            results = pool.map(operator.neg, numbers())
            assert next(results) == 0
            read_ahead = len(pulled)
            results.close()  # type: ignore[attr-defined]
        # Twice max_workers tasks ahead, plus the one read to refill.
        assert read_ahead <= 2 * 2 + 2

    @pytest.mark.timeout(10)
    def test_map_chunks_rejected_with_journal(self, journal_path: Any) -> None:
        with WorkerPool(1, journal=journal_path) as pool:
            with pytest.raises(ValueError, match="chunksize=2"):
                pool.map(operator.neg, range(4), chunksize=2)
            assert list(pool.map(operator.neg, range(3))) == [0, -1, -2]

    @pytest.mark.parametrize("method", ["map", "map_unordered"])
    @pytest.mark.parametrize(
        ("keyword", "value", "error"),
        [
            ("chunksize", 0, ValueError),
            ("chunksize", True, TypeError),
            ("buffersize", 0, ValueError),
            ("buffersize", 1.5, TypeError),
        ],
    )
    def test_map_methods_reject_bad_sizes(
        self, method: str, keyword: str, value: object, error: type
    ) -> None:
        with WorkerPool(1) as pool, pytest.raises(error, match=keyword):
            getattr(pool, method)(operator.neg, range(3), **{keyword: value})
