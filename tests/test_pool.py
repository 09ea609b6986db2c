"""Tests of WorkerPool on real threads."""

from __future__ import annotations

import itertools
import math
import operator
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FuturesTimeoutError
from pathlib import Path
from typing import Any, Callable

import pytest

from syncq.breaker import CircuitBreaker, CircuitState
from syncq.clock import SYSTEM_CLOCK
from syncq.errors import QueueClosed
from syncq.journal import Journal
from syncq.limiters import Reservation, TokenBucket
from syncq.pool import WorkerPool
from syncq.pool._ready import ReadyQueue
from syncq.pool._task import Task
from syncq.retry import FixedBackoff, Retry

WAIT = 5.0  # real seconds any event in these tests may take before the test fails


class Gate:
    """A task that blocks until the test opens the gate."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self) -> str:
        self.entered.set()
        if not self.opened.wait(WAIT):
            raise TimeoutError("gate never opened")
        return "gate"


class ConcurrencyProbe:
    """A task that records the most calls that ever ran at once."""

    def __init__(self, hold: float = 0.002) -> None:
        self.hold = hold
        self.current = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, value: int) -> int:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        time.sleep(self.hold)
        with self._lock:
            self.current -= 1
        return value


class FailTimes:
    """A task that raises OSError for its first `failures` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            self.calls += 1
            failing = self.calls <= self.failures
        if failing:
            raise OSError(f"failure {self.calls}")
        return "ok"


class CountingLimiter:
    """A limiter that grants at once and counts reservations."""

    def __init__(self) -> None:
        self.reservations = 0

    def reserve(self, n: float = 1, *, timeout: float | None = None) -> Reservation:
        self.reservations += 1
        return Reservation(0.0, SYSTEM_CLOCK)

    def try_acquire(self, n: float = 1) -> bool:
        return True

    def acquire(
        self,
        n: float = 1,
        timeout: float | None = None,
        *,
        raise_on_timeout: bool = False,
    ) -> bool:
        return True

    def retry_after(self, n: float = 1) -> float:
        return 0.0


class BrokenLimiter:
    """A limiter whose every reservation fails."""

    def reserve(self, n: float = 1, *, timeout: float | None = None) -> Reservation:
        raise RuntimeError("limiter backend down")


def no_retry_backoff(attempts: int) -> Retry:
    return Retry(attempts, backoff=FixedBackoff(0.0))


def results(futures: list[Future[Any]]) -> list[Any]:
    return [future.result(WAIT) for future in futures]


class TestExecutorContract:
    @pytest.mark.parametrize("executor_class", [WorkerPool, ThreadPoolExecutor])
    def test_executor_submit_returns_result(
        self, executor_class: Callable[..., Any]
    ) -> None:
        with executor_class(2) as executor:
            future = executor.submit(operator.add, 2, 3)

            assert future.result(WAIT) == 5

    @pytest.mark.parametrize("executor_class", [WorkerPool, ThreadPoolExecutor])
    def test_executor_exception_reaches_future(
        self, executor_class: Callable[..., Any]
    ) -> None:
        with executor_class(2) as executor:
            future = executor.submit(operator.truediv, 1, 0)

            assert isinstance(future.exception(WAIT), ZeroDivisionError)

    @pytest.mark.parametrize("executor_class", [WorkerPool, ThreadPoolExecutor])
    def test_executor_map_keeps_input_order(
        self, executor_class: Callable[..., Any]
    ) -> None:
        with executor_class(4) as executor:
            squares = list(executor.map(operator.mul, range(50), range(50)))

        assert squares == [n * n for n in range(50)]

    @pytest.mark.parametrize("executor_class", [WorkerPool, ThreadPoolExecutor])
    def test_executor_map_timeout_raises(
        self, executor_class: Callable[..., Any]
    ) -> None:
        gate = Gate()
        with executor_class(1) as executor:
            started = time.monotonic()
            results = executor.map(lambda _: gate(), [1], timeout=0.05)

            with pytest.raises(FuturesTimeoutError):
                next(results)
            # The map's own timeout raised, not the gate's after WAIT seconds.
            assert time.monotonic() - started < WAIT / 2
            gate.opened.set()

    @pytest.mark.parametrize("executor_class", [WorkerPool, ThreadPoolExecutor])
    def test_executor_map_reraises_task_error(
        self, executor_class: Callable[..., Any]
    ) -> None:
        with executor_class(2) as executor:
            results = executor.map(operator.truediv, [1, 1], [1, 0])

            assert next(results) == 1.0
            with pytest.raises(ZeroDivisionError):
                next(results)

    @pytest.mark.parametrize("executor_class", [WorkerPool, ThreadPoolExecutor])
    def test_executor_submit_after_shutdown_raises(
        self, executor_class: Callable[..., Any]
    ) -> None:
        executor = executor_class(2)
        executor.shutdown()

        with pytest.raises(RuntimeError, match="after shutdown"):
            executor.submit(operator.add, 1, 2)

    @pytest.mark.parametrize("executor_class", [WorkerPool, ThreadPoolExecutor])
    def test_executor_shutdown_waits_for_queued_tasks(
        self, executor_class: Callable[..., Any]
    ) -> None:
        executor = executor_class(1)
        futures = [executor.submit(time.sleep, 0.01) for _ in range(5)]

        executor.shutdown(wait=True)

        assert all(future.done() for future in futures)

    @pytest.mark.parametrize("executor_class", [WorkerPool, ThreadPoolExecutor])
    def test_executor_shutdown_cancel_futures(
        self, executor_class: Callable[..., Any]
    ) -> None:
        gate = Gate()
        executor = executor_class(1)
        running = executor.submit(gate)
        assert gate.entered.wait(WAIT)
        queued = [executor.submit(operator.add, 1, 1) for _ in range(3)]

        executor.shutdown(wait=False, cancel_futures=True)
        gate.opened.set()
        executor.shutdown(wait=True)

        assert running.result(WAIT) == "gate"
        assert all(future.cancelled() for future in queued)

    @pytest.mark.parametrize("executor_class", [WorkerPool, ThreadPoolExecutor])
    def test_executor_cancel_queued_future(
        self, executor_class: Callable[..., Any]
    ) -> None:
        gate = Gate()
        with executor_class(1) as executor:
            executor.submit(gate)
            assert gate.entered.wait(WAIT)
            queued = executor.submit(operator.add, 1, 1)

            assert queued.cancel()
            gate.opened.set()

        assert queued.cancelled()


class TestWorkerPool:
    def test_pool_never_runs_more_than_max_workers(self) -> None:
        probe = ConcurrencyProbe()

        with WorkerPool(4) as pool:
            futures = [pool.submit(probe, n) for n in range(300)]
            values = results(futures)

        assert values == list(range(300))
        assert probe.peak <= 4

    def test_pool_runs_max_workers_at_once(self) -> None:
        barrier = threading.Barrier(4, timeout=WAIT)

        with WorkerPool(4) as pool:
            futures = [pool.submit(barrier.wait) for _ in range(4)]

            assert sorted(results(futures)) == [0, 1, 2, 3]

    def test_pool_priority_orders_waiting_tasks(self) -> None:
        gate = Gate()
        order: list[str] = []
        with WorkerPool(1) as pool:
            pool.submit(gate)
            assert gate.entered.wait(WAIT)
            for name, priority in [("low", 5), ("high", -1), ("mid", 0), ("high2", -1)]:
                pool.options(priority=priority).submit(order.append, name)
            gate.opened.set()

        assert order == ["high", "high2", "mid", "low"]

    def test_pool_keeps_fifo_order_within_priority(self) -> None:
        gate = Gate()
        order: list[int] = []
        with WorkerPool(1) as pool:
            pool.submit(gate)
            assert gate.entered.wait(WAIT)
            for n in range(100):
                pool.submit(order.append, n)
            gate.opened.set()

        assert order == list(range(100))

    def test_pool_stats_count_outcomes(self) -> None:
        with WorkerPool(2) as pool:
            wait([pool.submit(operator.add, 1, 1), pool.submit(operator.truediv, 1, 0)])
            stats = pool.stats()

        assert stats.submitted == 2
        assert stats.succeeded == 1
        assert stats.failed == 1

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"max_workers": 0}, ValueError),
            ({"max_workers": -2}, ValueError),
            ({"max_workers": 2.5}, TypeError),
            ({"max_workers": True}, TypeError),
            ({"max_pending": -1}, ValueError),
            ({"rate_limit": True}, TypeError),
            ({"rate_limit": object()}, TypeError),
            ({"rate_limit": 0}, ValueError),
            ({"rate_limit": math.nan}, ValueError),
            ({"rate_limit": "fast"}, ValueError),
            ({"retry": "3"}, TypeError),
            ({"retry": 0}, ValueError),
        ],
    )
    def test_pool_rejects_bad_parameters(
        self, kwargs: dict[str, Any], error: type[Exception]
    ) -> None:
        with pytest.raises(error):
            WorkerPool(**kwargs)

    @pytest.mark.parametrize("retry", [0, -1])
    def test_pool_names_retry_in_error(self, retry: int) -> None:
        with pytest.raises(ValueError, match=r"retry must be .*>= 1"):
            WorkerPool(1, retry=retry)

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"priority": math.nan}, ValueError),
            ({"priority": True}, TypeError),
            ({"priority": "1"}, TypeError),
            ({"block_timeout": -1.0}, ValueError),
            ({"block_timeout": math.nan}, ValueError),
            ({"key": 42}, TypeError),
            ({"block": "no"}, TypeError),
            ({"block": None}, TypeError),
            ({"key": "needs-a-journal"}, ValueError),
        ],
    )
    def test_pool_options_reject_bad_values(
        self, kwargs: dict[str, Any], error: type[Exception]
    ) -> None:
        with WorkerPool(1) as pool, pytest.raises(error, match=next(iter(kwargs))):
            pool.options(**kwargs)

    def test_pool_submit_rejects_non_callable(self) -> None:
        with WorkerPool(1) as pool, pytest.raises(TypeError, match="callable"):
            pool.submit(42)  # type: ignore[arg-type]

    def test_pool_options_keep_function_keywords(self) -> None:
        def call(priority: int, key: str) -> str:
            return f"{priority}-{key}"

        with WorkerPool(1) as pool:
            future = pool.options(priority=3).submit(call, priority=1, key="k")

            assert future.result(WAIT) == "1-k"


class TestBackpressure:
    def test_pool_submit_blocks_at_max_pending(self) -> None:
        gate = Gate()
        with WorkerPool(1, max_pending=2) as pool:
            pool.submit(gate)
            assert gate.entered.wait(WAIT)
            pool.submit(operator.add, 1, 1)
            pool.submit(operator.add, 1, 1)
            submitted = threading.Event()

            def submit_third() -> None:
                pool.submit(operator.add, 1, 1)
                submitted.set()

            thread = threading.Thread(target=submit_third)
            thread.start()

            assert not submitted.wait(0.1)
            gate.opened.set()
            assert submitted.wait(WAIT)
            thread.join(WAIT)
            assert not thread.is_alive()

    def test_pool_submit_raises_full_when_not_blocking(self) -> None:
        gate = Gate()
        with WorkerPool(1, max_pending=1) as pool:
            pool.submit(gate)
            assert gate.entered.wait(WAIT)
            pool.submit(operator.add, 1, 1)

            with pytest.raises(queue.Full):
                pool.options(block=False).submit(operator.add, 1, 1)
            gate.opened.set()

    def test_pool_submit_raises_full_after_block_timeout(self) -> None:
        gate = Gate()
        with WorkerPool(1, max_pending=1) as pool:
            pool.submit(gate)
            assert gate.entered.wait(WAIT)
            pool.submit(operator.add, 1, 1)
            started = time.monotonic()

            with pytest.raises(queue.Full):
                pool.options(block_timeout=0.05).submit(operator.add, 1, 1)

            assert time.monotonic() - started >= 0.05
            gate.opened.set()

    def test_pool_map_reads_input_lazily(self) -> None:
        consumed = itertools.count()

        def endless() -> Iterator[int]:
            while True:
                yield next(consumed)

        with WorkerPool(2) as pool:
            first = list(itertools.islice(pool.map(abs, endless(), buffersize=8), 10))

        assert first == list(range(10))
        assert next(consumed) <= 10 + 8 + 1


class TestRetries:
    def test_pool_retries_until_success(self) -> None:
        task = FailTimes(2)

        with WorkerPool(2, retry=no_retry_backoff(3)) as pool:
            future = pool.submit(task)

            assert future.result(WAIT) == "ok"
            assert pool.stats().retried == 2
        assert task.calls == 3

    def test_pool_raises_last_error_when_retries_exhausted(self) -> None:
        task = FailTimes(10)

        with WorkerPool(2, retry=no_retry_backoff(3)) as pool:
            future = pool.submit(task)

            with pytest.raises(OSError, match="failure 3"):
                future.result(WAIT)
        assert task.calls == 3

    def test_pool_options_retry_overrides_pool_policy(self) -> None:
        task = FailTimes(1)

        with WorkerPool(1) as pool:
            future = pool.options(retry=no_retry_backoff(2)).submit(task)

            assert future.result(WAIT) == "ok"

    def test_pool_delayed_retry_frees_the_worker(self) -> None:
        task = FailTimes(1)
        other_ran = threading.Event()
        slow_retry = Retry(2, backoff=FixedBackoff(WAIT))

        with WorkerPool(1) as pool:
            first = pool.options(retry=slow_retry).submit(task)
            deadline = time.monotonic() + WAIT
            while pool.stats().retried == 0 and time.monotonic() < deadline:
                time.sleep(0.001)
            pool.submit(other_ran.set)

            assert other_ran.wait(WAIT / 2)
            pool.close(timeout=0)

        assert isinstance(first.exception(WAIT), OSError)

    def test_pool_never_retries_keyboard_interrupt(self) -> None:
        calls = []

        def interrupt() -> None:
            calls.append(1)
            raise KeyboardInterrupt

        with WorkerPool(1, retry=no_retry_backoff(5)) as pool:
            future = pool.submit(interrupt)

            assert isinstance(future.exception(WAIT), KeyboardInterrupt)
        assert calls == [1]


class TestRateLimit:
    def test_pool_takes_one_token_per_attempt(self) -> None:
        limiter = CountingLimiter()
        task = FailTimes(2)

        with WorkerPool(1, rate_limit=limiter, retry=no_retry_backoff(5)) as pool:
            assert pool.submit(task).result(WAIT) == "ok"

        assert limiter.reservations == 3

    def test_pool_token_wait_does_not_use_retry_attempt(self) -> None:
        bucket = TokenBucket(200, capacity=1)
        task = FailTimes(0)

        with WorkerPool(4, rate_limit=bucket, retry=None) as pool:
            futures = [pool.submit(task) for _ in range(20)]

            assert results(futures) == ["ok"] * 20

    def test_pool_rate_limit_bounds_start_times(self) -> None:
        starts: list[float] = []
        lock = threading.Lock()

        def record() -> None:
            with lock:
                starts.append(time.monotonic())

        with WorkerPool(8, rate_limit=TokenBucket(100, capacity=2)) as pool:
            wait([pool.submit(record) for _ in range(30)], WAIT)

        starts.sort()
        for i, start in enumerate(starts):
            in_window = [t for t in starts[i:] if t - start <= 0.1]
            assert len(in_window) <= 2 + 100 * 0.1 + 1

    def test_pool_broken_limiter_fails_task_not_worker(self) -> None:
        with WorkerPool(1, rate_limit=BrokenLimiter()) as pool:  # type: ignore[arg-type]
            first = pool.submit(operator.add, 1, 1)
            second = pool.submit(operator.add, 2, 2)

            assert isinstance(first.exception(WAIT), RuntimeError)
            assert isinstance(second.exception(WAIT), RuntimeError)

    def test_pool_accepts_rate_string(self) -> None:
        with WorkerPool(2, rate_limit="1000/s") as pool:
            assert pool.submit(operator.add, 1, 1).result(WAIT) == 2


class TestBreaker:
    def test_pool_holds_tasks_while_breaker_open(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1, reset_timeout=0.05)
        outage = FailTimes(1)
        states: list[CircuitState] = []
        breaker.add_listener(lambda _breaker, _old, new: states.append(new))

        with WorkerPool(2, breaker=breaker, retry=no_retry_backoff(2)) as pool:
            first = pool.submit(outage)
            deadline = time.monotonic() + WAIT
            while breaker.state is CircuitState.CLOSED and time.monotonic() < deadline:
                time.sleep(0.001)
            # No retries, so these succeed only if the open breaker delays them.
            held = [
                pool.options(retry=Retry(1)).submit(operator.add, n, 0)
                for n in range(10)
            ]

            assert first.result(WAIT) == "ok"
            assert results(held) == list(range(10))
        assert states[0] is CircuitState.OPEN
        assert states[-1] is CircuitState.CLOSED

    def test_pool_runs_one_trial_when_half_open(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1, reset_timeout=0.05)
        probe = ConcurrencyProbe(hold=0.01)
        with pytest.raises(OSError):
            breaker.call(FailTimes(1))

        with WorkerPool(8, breaker=breaker) as pool:
            futures = [pool.submit(probe, n) for n in range(16)]

            assert results(futures) == list(range(16))
        assert breaker.state is CircuitState.CLOSED

    def test_pool_trial_failure_reopens_and_holds_again(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1, reset_timeout=0.02)
        task = FailTimes(3)

        with WorkerPool(2, breaker=breaker, retry=no_retry_backoff(5)) as pool:
            assert pool.submit(task).result(WAIT) == "ok"

        assert task.calls == 4
        assert breaker.state is CircuitState.CLOSED


class TestClose:
    def test_pool_close_drains_within_timeout(self) -> None:
        pool = WorkerPool(2)
        futures = [pool.submit(operator.add, n, 1) for n in range(20)]

        pool.close(timeout=WAIT)

        assert results(futures) == [n + 1 for n in range(20)]

    def test_pool_close_cancels_what_has_not_started(self) -> None:
        gate = Gate()
        pool = WorkerPool(1)
        running = pool.submit(gate)
        assert gate.entered.wait(WAIT)
        queued = [pool.submit(operator.add, 1, 1) for _ in range(5)]
        threading.Timer(0.2, gate.opened.set).start()

        pool.close(timeout=0.01)

        assert running.result(WAIT) == "gate"
        assert all(future.cancelled() for future in queued)
        assert pool.stats().cancelled == 5

    def test_pool_close_fails_task_waiting_for_retry(self) -> None:
        pool = WorkerPool(1, retry=Retry(2, backoff=FixedBackoff(60.0)))
        future = pool.submit(FailTimes(5))
        deadline = time.monotonic() + WAIT
        while pool.stats().retried == 0 and time.monotonic() < deadline:
            time.sleep(0.001)

        pool.close(timeout=0)

        assert isinstance(future.exception(WAIT), OSError)

    def test_pool_close_cancels_task_waiting_for_token(self) -> None:
        bucket = TokenBucket(0.01, capacity=1)
        pool = WorkerPool(1, rate_limit=bucket)
        first = pool.submit(operator.add, 1, 1)
        assert first.result(WAIT) == 2
        second = pool.submit(operator.add, 2, 2)

        started = time.monotonic()
        pool.close(timeout=0.05)

        assert second.cancelled()
        assert time.monotonic() - started < WAIT

    def test_pool_close_rejects_negative_timeout(self) -> None:
        with WorkerPool(1) as pool, pytest.raises(ValueError, match="timeout"):
            pool.close(timeout=-1)

    def test_pool_shutdown_without_wait_finishes_later(self) -> None:
        gate = Gate()
        pool = WorkerPool(1)
        future = pool.submit(gate)

        pool.shutdown(wait=False)
        gate.opened.set()

        assert future.result(WAIT) == "gate"
        pool.shutdown(wait=True)

    def test_pool_cancelled_task_future_raises(self) -> None:
        gate = Gate()
        with WorkerPool(1) as pool:
            pool.submit(gate)
            assert gate.entered.wait(WAIT)
            queued = pool.submit(operator.add, 1, 1)
            queued.cancel()
            gate.opened.set()

        with pytest.raises(CancelledError):
            queued.result(0)


class TestJournaledPool:
    def test_pool_journal_skips_done_key(self, journal_path: Path) -> None:
        with WorkerPool(1, journal=journal_path) as pool:
            assert pool.options(key="a").submit(operator.add, 1, 2).result(WAIT) == 3

        with WorkerPool(1, journal=journal_path) as pool:
            future = pool.options(key="a").submit(operator.add, 100, 200)

            assert future.result(WAIT) == 3
            assert pool.stats().submitted == 0

    def test_pool_journal_runs_tasks_left_pending(self, journal_path: Path) -> None:
        with Journal(journal_path) as journal:
            journal.add("operator:add", "[1, 2]", "{}", key="left")

        with WorkerPool(1, journal=journal_path) as pool:
            assert len(pool.recovered) == 1
            assert pool.recovered[0].result(WAIT) == 3
            assert pool.options(key="left").submit(operator.add, 1, 2).result(WAIT) == 3

    def test_pool_journal_marks_failed_then_reruns(self, journal_path: Path) -> None:
        with WorkerPool(1, journal=journal_path) as pool:
            failed = pool.options(key="div").submit(operator.truediv, 1, 0)
            assert isinstance(failed.exception(WAIT), ZeroDivisionError)
            journal = pool.journal
            assert journal is not None
            entry = journal.get("div")
            assert entry is not None
            assert entry.state == "failed"

        with WorkerPool(1, journal=journal_path) as pool:
            rerun = pool.options(key="div").submit(operator.truediv, 1, 0)

            assert isinstance(rerun.exception(WAIT), ZeroDivisionError)

    def test_pool_journal_reruns_cancelled_key(self, journal_path: Path) -> None:
        with WorkerPool(1, journal=journal_path) as pool:
            pool.pause()
            cancelled = pool.options(key="k").submit(operator.add, 1, 2)
            assert cancelled.cancel()
            pool.resume()
            assert pool.join(WAIT)

            again = pool.options(key="k").submit(operator.add, 1, 2)

            assert again.result(WAIT) == 3
            journal = pool.journal
            assert journal is not None
            entry = journal.get("k")
            assert entry is not None
            assert entry.state == "done"

    def test_pool_journal_rejects_lambda(self, journal_path: Path) -> None:
        with WorkerPool(1, journal=journal_path) as pool, pytest.raises(TypeError):
            pool.submit(lambda: 1)

    def test_pool_journal_rejects_unserializable_argument(
        self, journal_path: Path
    ) -> None:
        with WorkerPool(1, journal=journal_path) as pool:
            with pytest.raises(TypeError, match="argument 0"):
                pool.submit(operator.add, object(), 1)
            journal = pool.journal
            assert journal is not None

            assert journal.counts()["pending"] == 0

    def test_pool_journal_same_key_twice_runs_once(self, journal_path: Path) -> None:
        with WorkerPool(1, journal=journal_path) as pool:
            first = pool.options(key="k").submit(operator.add, 1, 1)
            second = pool.options(key="k").submit(operator.add, 1, 1)

            assert first.result(WAIT) == 2
            assert second.result(WAIT) == 2
            assert pool.stats().submitted == 1


class TestEdgeCases:
    def test_pool_infinite_timeouts_mean_no_limit(self) -> None:
        with WorkerPool(2) as pool:
            values = list(pool.map(abs, [-1, -2], timeout=math.inf))
            pool.close(timeout=math.inf)

        assert values == [1, 2]

    def test_pool_rejects_non_breaker(self) -> None:
        with pytest.raises(TypeError, match="breaker"):
            WorkerPool(1, breaker=5)  # type: ignore[arg-type]

    def test_pool_shutdown_wait_from_own_task_raises(self) -> None:
        pool = WorkerPool(1)
        future = pool.submit(lambda: pool.shutdown(wait=True))

        assert isinstance(future.exception(WAIT), RuntimeError)
        pool.shutdown()

    def test_pool_exit_on_interrupt_cancels_queued(self) -> None:
        gate = Gate()
        queued: list[Future[int]] = []

        with pytest.raises(KeyboardInterrupt), WorkerPool(1) as pool:
            pool.submit(gate)
            assert gate.entered.wait(WAIT)
            queued = [pool.submit(abs, -1) for _ in range(5)]
            threading.Timer(0.05, gate.opened.set).start()
            raise KeyboardInterrupt

        assert all(future.cancelled() for future in queued)


class TestReadyQueue:
    def make_tasks(self, count: int) -> list[Task]:
        return [Task(abs, (n,), {}, 0, None) for n in range(count)]

    def test_ready_queue_orders_priorities_around_default(self) -> None:
        ready = ReadyQueue()
        low, default_a, high, default_b, higher = self.make_tasks(5)
        for task, priority in [
            (low, 3),
            (default_a, 0),
            (high, -1),
            (default_b, 0.0),
            (higher, -2),
        ]:
            ready.put(task, priority=priority)

        order = [ready.get() for _ in range(5)]

        assert order == [higher, high, default_a, default_b, low]

    def test_ready_queue_get_nowait_raises_empty(self) -> None:
        with pytest.raises(queue.Empty):
            ReadyQueue().get_nowait()

    def test_ready_queue_close_drains_then_raises(self) -> None:
        ready = ReadyQueue()
        (task,) = self.make_tasks(1)
        ready.put(task, priority=0)

        ready.close()

        assert ready.get() is task
        with pytest.raises(QueueClosed):
            ready.get()
        with pytest.raises(QueueClosed):
            ready.get_nowait()

    def test_ready_queue_close_wakes_every_getter(self) -> None:
        ready = ReadyQueue()
        closed: list[bool] = []
        barrier = threading.Barrier(5, timeout=WAIT)

        def get() -> None:
            barrier.wait()
            try:
                ready.get()
            except QueueClosed:
                closed.append(True)

        threads = [threading.Thread(target=get) for _ in range(4)]
        for thread in threads:
            thread.start()
        barrier.wait()
        ready.close()
        for thread in threads:
            thread.join(WAIT)

        assert not any(thread.is_alive() for thread in threads)
        assert closed == [True] * 4

    def test_ready_queue_many_threads_lose_nothing(self) -> None:
        ready = ReadyQueue()
        tasks = self.make_tasks(4000)
        taken: list[Task] = []
        lock = threading.Lock()

        def produce(chunk: list[Task]) -> None:
            for n, task in enumerate(chunk):
                ready.put(task, priority=n % 3 - 1)

        def consume(count: int) -> None:
            for _ in range(count):
                task = ready.get()
                with lock:
                    taken.append(task)

        threads = [
            threading.Thread(target=produce, args=(tasks[i::4],)) for i in range(4)
        ]
        threads += [threading.Thread(target=consume, args=(1000,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)

        assert not any(thread.is_alive() for thread in threads)
        assert sorted(map(id, taken)) == sorted(map(id, tasks))
