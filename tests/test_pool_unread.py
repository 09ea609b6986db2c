"""Tests of the log record for a pool task's exception that nobody read."""

from __future__ import annotations

import gc
import logging
import operator
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FuturesTimeoutError

import pytest

from syncq.pool import WorkerPool

WAIT = 5.0  # real seconds any event in these tests may take before the test fails
LOGGER = "syncq.pool._future"


def unread_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    gc.collect()
    return [record for record in caplog.records if record.name == LOGGER]


def failing() -> None:
    raise OSError("disk on fire")


class TestUnreadException:
    def test_unread_failure_is_logged_once(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with WorkerPool(1) as pool:
            future = pool.submit(failing)
        assert future.done()

        del future
        records = unread_records(caplog)

        assert len(records) == 1
        assert records[0].levelno == logging.ERROR
        assert "failing" in records[0].getMessage()

    def test_unread_failure_log_has_traceback(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with WorkerPool(1) as pool:
            future = pool.submit(failing)
        future_done = future.done()

        del future
        (record,) = unread_records(caplog)

        assert future_done
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], OSError)

    def test_unread_result_read_is_not_logged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with WorkerPool(1) as pool:
            future = pool.submit(failing)
            with pytest.raises(OSError):
                future.result(WAIT)

        del future

        assert unread_records(caplog) == []

    def test_unread_exception_read_is_not_logged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with WorkerPool(1) as pool:
            future = pool.submit(failing)
            assert isinstance(future.exception(WAIT), OSError)

        del future

        assert unread_records(caplog) == []

    def test_unread_done_callback_counts_as_read(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        seen: list[Future[None]] = []
        with WorkerPool(1) as pool:
            future = pool.submit(failing)
            future.add_done_callback(seen.append)

        del future
        seen.clear()

        assert unread_records(caplog) == []

    def test_unread_success_is_not_logged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with WorkerPool(1) as pool:
            future = pool.submit(operator.add, 1, 1)
        assert future.done()

        del future

        assert unread_records(caplog) == []

    def test_unread_cancelled_is_not_logged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        release = threading.Event()
        with WorkerPool(1) as pool:
            pool.submit(release.wait, WAIT)
            queued = pool.submit(failing)
            assert queued.cancel()
            release.set()

        del queued

        assert unread_records(caplog) == []

    def test_unread_after_timed_out_result_is_logged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        release = threading.Event()

        def fail_when_released() -> None:
            release.wait(WAIT)
            raise OSError("late failure")

        with WorkerPool(1) as pool:
            future = pool.submit(fail_when_released)
            with pytest.raises(FuturesTimeoutError):
                future.result(0)
            release.set()

        del future

        assert len(unread_records(caplog)) == 1

    def test_unread_gave_up_retry_is_logged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with WorkerPool(1, retry=3) as pool:
            future = pool.submit(failing)
        assert future.done()

        del future

        assert len(unread_records(caplog)) == 1
