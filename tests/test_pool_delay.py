"""Tests of delayed starts in WorkerPool, timed on a fake clock."""

from __future__ import annotations

import concurrent.futures
import math
import operator
import queue
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from syncq.pool import WorkerPool
from syncq.retry import FixedBackoff, Retry
from syncq.testing import FakeClock

WAIT = 5.0  # real seconds any event in these tests may take before the test fails


def finished_before(pool: WorkerPool, count: int) -> bool:
    """Return whether `count` no-op tasks submitted now finish before a delayed one.

    A single worker runs tasks in order, so once these finish, any delayed task
    that was due would have started.
    """
    futures = [pool.submit(operator.add, 1, 1) for _ in range(count)]
    return all(future.result(WAIT) == 2 for future in futures)


class TestDelayedStart:
    @pytest.mark.timeout(10)
    def test_delay_waits_for_the_clock(self, clock: FakeClock) -> None:
        with WorkerPool(1, clock=clock) as pool:
            future = pool.options(delay=10).submit(operator.add, 2, 3)
            assert finished_before(pool, 3)

            assert not future.done()
            clock.advance(10)
            assert future.result(WAIT) == 5

    @pytest.mark.timeout(10)
    def test_delay_not_due_before_its_time(self, clock: FakeClock) -> None:
        with WorkerPool(1, clock=clock) as pool:
            future = pool.options(delay=10).submit(operator.add, 2, 3)
            clock.advance(9.5)
            finished_before(pool, 3)
            # A few polls of the timer, in real time, to let a wrong start show.
            threading.Event().wait(0.02)

            assert not future.done()
            clock.advance(0.5)
            assert future.result(WAIT) == 5

    @pytest.mark.timeout(10)
    def test_start_at_waits_for_the_reading(self, clock: FakeClock) -> None:
        clock.advance(100)
        with WorkerPool(1, clock=clock) as pool:
            future = pool.options(start_at=105).submit(operator.add, 2, 3)
            assert finished_before(pool, 3)

            assert not future.done()
            clock.advance(5)
            assert future.result(WAIT) == 5

    @pytest.mark.timeout(10)
    def test_start_at_in_the_past_runs_at_once(self, clock: FakeClock) -> None:
        clock.advance(100)
        with WorkerPool(1, clock=clock) as pool:
            future = pool.options(start_at=1).submit(operator.add, 2, 3)

            assert future.result(WAIT) == 5

    @pytest.mark.timeout(10)
    def test_zero_delay_runs_at_once(self, clock: FakeClock) -> None:
        with WorkerPool(1, clock=clock) as pool:
            future = pool.options(delay=0).submit(operator.add, 2, 3)

            assert future.result(WAIT) == 5

    @pytest.mark.timeout(10)
    def test_delayed_tasks_start_in_time_order(self, clock: FakeClock) -> None:
        order: list[str] = []
        with WorkerPool(1, clock=clock) as pool:
            late = pool.options(delay=5).submit(order.append, "late")
            early = pool.options(delay=1).submit(order.append, "early")
            clock.advance(5)
            late.result(WAIT)
            early.result(WAIT)

        assert order == ["early", "late"]

    @pytest.mark.timeout(10)
    def test_delayed_task_holds_no_worker(self, clock: FakeClock) -> None:
        with WorkerPool(1, clock=clock) as pool:
            delayed = pool.options(delay=60).submit(operator.add, 1, 1)
            other = pool.submit(operator.add, 2, 2)

            assert other.result(WAIT) == 4
            assert not delayed.done()
            clock.advance(60)
            assert delayed.result(WAIT) == 2

    @pytest.mark.timeout(10)
    def test_delayed_task_counts_as_pending(self, clock: FakeClock) -> None:
        with WorkerPool(1, max_pending=1, clock=clock) as pool:
            pool.options(delay=60).submit(operator.add, 1, 1)

            with pytest.raises(queue.Full):
                pool.options(block=False).submit(operator.add, 2, 2)
            assert pool.stats().queued == 1
            clock.advance(60)

    @pytest.mark.timeout(10)
    def test_cancelled_delayed_task_frees_its_slot(self, clock: FakeClock) -> None:
        with WorkerPool(1, max_pending=1, clock=clock) as pool:
            delayed = pool.options(delay=60).submit(operator.add, 1, 1)
            assert delayed.cancel()

            other = pool.options(block=False).submit(operator.add, 2, 2)
            assert other.result(WAIT) == 4
            assert pool.stats().cancelled == 1
            assert pool.join(0)

    @pytest.mark.timeout(10)
    def test_cancelled_delayed_task_wakes_wait(self, clock: FakeClock) -> None:
        with WorkerPool(1, clock=clock) as pool:
            delayed = pool.options(delay=60).submit(operator.add, 1, 1)
            waiter = threading.Thread(target=concurrent.futures.wait, args=([delayed],))
            waiter.start()
            # Real time for the waiter to block in wait() before the cancel.
            threading.Event().wait(0.05)
            delayed.cancel()
            waiter.join(WAIT)

            assert not waiter.is_alive()

    @pytest.mark.timeout(10)
    def test_close_cancels_delayed_task(self, clock: FakeClock) -> None:
        pool = WorkerPool(1, clock=clock)
        delayed = pool.options(delay=60).submit(operator.add, 1, 1)

        pool.close(timeout=0)

        assert delayed.cancelled()
        assert pool.stats().cancelled == 1

    @pytest.mark.timeout(10)
    def test_shutdown_cancel_futures_cancels_delayed(self, clock: FakeClock) -> None:
        pool = WorkerPool(1, clock=clock)
        delayed = pool.options(start_at=60).submit(operator.add, 1, 1)

        pool.shutdown(wait=True, cancel_futures=True)

        assert delayed.cancelled()

    @pytest.mark.timeout(10)
    def test_shutdown_waits_for_delayed_task(self, clock: FakeClock) -> None:
        pool = WorkerPool(1, clock=clock)
        delayed = pool.options(delay=60).submit(operator.add, 1, 1)
        pool.shutdown(wait=False)

        clock.advance(60)
        pool.shutdown(wait=True)

        assert delayed.result(0) == 2

    @pytest.mark.timeout(10)
    def test_retry_delay_follows_the_pool_clock(self, clock: FakeClock) -> None:
        calls: list[int] = []

        def fail_once() -> str:
            calls.append(1)
            if len(calls) == 1:
                raise OSError("first call fails")
            return "ok"

        retry = Retry(2, backoff=FixedBackoff(30.0))
        with WorkerPool(1, retry=retry, clock=clock) as pool:
            future = pool.submit(fail_once)
            deadline = time.monotonic() + WAIT
            while pool.stats().retried == 0 and time.monotonic() < deadline:
                threading.Event().wait(0.001)
            assert not future.done()

            clock.advance(30)
            assert future.result(WAIT) == "ok"

    @pytest.mark.timeout(10)
    def test_delay_with_journal_runs_later(
        self, clock: FakeClock, journal_path: Path
    ) -> None:
        with WorkerPool(1, journal=journal_path, clock=clock) as pool:
            future = pool.options(delay=10, key="later").submit(operator.add, 1, 2)
            assert finished_before(pool, 1)

            assert not future.done()
            clock.advance(10)
            assert future.result(WAIT) == 3


class TestDelayValidation:
    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"delay": -1}, ValueError),
            ({"delay": math.nan}, ValueError),
            ({"delay": math.inf}, ValueError),
            ({"delay": True}, TypeError),
            ({"delay": "1"}, TypeError),
            ({"start_at": math.nan}, ValueError),
            ({"start_at": -math.inf}, ValueError),
            ({"start_at": 10**400}, ValueError),
            ({"start_at": False}, TypeError),
            ({"start_at": "soon"}, TypeError),
        ],
    )
    def test_options_reject_bad_start(
        self, kwargs: dict[str, Any], error: type[Exception]
    ) -> None:
        with WorkerPool(1) as pool, pytest.raises(error, match=next(iter(kwargs))):
            pool.options(**kwargs)

    def test_options_reject_delay_with_start_at(self) -> None:
        with WorkerPool(1) as pool, pytest.raises(ValueError, match="not both"):
            pool.options(delay=1, start_at=5)

    def test_pool_rejects_bad_clock(self) -> None:
        with pytest.raises(TypeError, match="clock"):
            WorkerPool(1, clock=object())  # type: ignore[arg-type]

    def test_options_accept_negative_start_at(self) -> None:
        with WorkerPool(1) as pool:
            future = pool.options(start_at=-5.0).submit(operator.add, 1, 1)

            assert future.result(WAIT) == 2
