"""Tests of the SQLite journal and of a pool that records its tasks in one.

Every test uses a real SQLite file under ``tmp_path``. Where a test reads the file
independently of the journal, or changes it (a dead process id, a newer schema
version), it does so through a separate `sqlite3` connection.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable

import crash_worker
import pytest

from syncq.errors import JournalError
from syncq.journal import (
    SCHEMA_VERSION,
    Journal,
    JournalTask,
    TaskState,
    encode_arguments,
    function_name,
    resolve_function,
)
from syncq.journal._lease import _process_exists
from syncq.pool import WorkerPool

# A real-time bound for subprocesses and threads, far above what they need.
WAIT_TIMEOUT = 10.0

# Set by the `gate` fixture's teardown, so a task blocked on it always ends.
_GATE = threading.Event()


def double(value: int) -> int:
    """Return twice `value`. Most tests journal this function."""
    return 2 * value


def explode() -> None:
    """Raise, so a test can tell that a task ran."""
    raise RuntimeError("this task must not run")


def wait_for_gate() -> bool:
    """Block until the test sets the gate, keeping a pool's only worker busy."""
    return _GATE.wait(WAIT_TIMEOUT)


class Scaler:
    """A class whose bound method a journal must reject."""

    def __init__(self, factor: int) -> None:
        self.factor = factor

    def scale(self, value: int) -> int:
        """Return `value` times the factor."""
        return self.factor * value


def _make_nested() -> Callable[[int], int]:
    def nested(value: int) -> int:
        return value

    return nested


def add_task(journal: Journal, key: str | None = None, value: Any = 21) -> JournalTask:
    """Add ``double(value)`` to `journal` and return the stored task."""
    name = function_name(double)
    args_json, kwargs_json = encode_arguments(name, [value], {})
    task, _ = journal.add(name, args_json, kwargs_json, key=key)
    return task


def query(path: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run `sql` on a connection of its own and return the rows."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchall()


def execute(path: Path, sql: str, params: Sequence[Any] = ()) -> None:
    """Run and commit `sql` on a connection of its own."""
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(sql, params)


def exited_pid() -> int:
    """Return the id of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=WAIT_TIMEOUT)
    try:
        os.kill(child.pid, 0)
    except ProcessLookupError:
        return child.pid
    pytest.skip(f"process id {child.pid} was reused at once")


@pytest.fixture
def journal(journal_path: Path) -> Iterator[Journal]:
    """Return an open journal, closed after the test."""
    with Journal(journal_path) as opened:
        yield opened


@pytest.fixture
def open_journal(journal_path: Path) -> Iterator[Callable[..., Journal]]:
    """Return a factory that opens journals on `journal_path`, closed after the test."""
    opened: list[Journal] = []

    def factory(**options: Any) -> Journal:
        journal = Journal(journal_path, **options)
        opened.append(journal)
        return journal

    yield factory
    for journal in opened:
        journal.close()


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """Return the cleared event that `wait_for_gate` blocks on, and set it after."""
    _GATE.clear()
    yield _GATE
    _GATE.set()


class TestJournalStates:
    def test_journal_add_stores_pending_task(self, journal: Journal) -> None:
        task = add_task(journal)

        assert task.state == TaskState.PENDING
        assert task.attempts == 0
        assert task.function == function_name(double)
        assert task.args == [21]
        assert task.kwargs == {}

    def test_journal_add_reports_new_task_created(self, journal: Journal) -> None:
        name = function_name(double)

        _, created = journal.add(name, "[1]", "{}")

        assert created is True

    def test_journal_start_marks_task_running(self, journal: Journal) -> None:
        task = add_task(journal, "k")

        started = journal.start(task.id)

        assert started is True
        stored = journal.get("k")
        assert stored is not None
        assert stored.state == TaskState.RUNNING
        assert stored.attempts == 1

    def test_journal_start_rejects_task_not_pending(self, journal: Journal) -> None:
        task = add_task(journal)
        journal.start(task.id)

        started_again = journal.start(task.id)

        assert started_again is False

    def test_journal_finish_stores_result(self, journal: Journal) -> None:
        task = add_task(journal, "k")
        journal.start(task.id)

        journal.finish(task.id, {"answer": [4, 2]})

        stored = journal.get("k")
        assert stored is not None
        assert stored.state == TaskState.DONE
        assert stored.result == {"answer": [4, 2]}

    def test_journal_fail_marks_task_failed(self, journal: Journal) -> None:
        task = add_task(journal, "k")
        journal.start(task.id)

        journal.fail(task.id, "ValueError: bad input")

        stored = journal.get("k")
        assert stored is not None
        assert stored.state == TaskState.FAILED
        assert stored.error == "ValueError: bad input"

    def test_journal_retry_later_returns_task_to_pending(
        self, journal: Journal
    ) -> None:
        task = add_task(journal, "k")
        journal.start(task.id)

        journal.retry_later(task.id, "OSError: try again")

        stored = journal.get("k")
        assert stored is not None
        assert stored.state == TaskState.PENDING
        assert stored.error == "OSError: try again"
        assert stored.attempts == 1

    def test_journal_finish_clears_error_of_earlier_attempt(
        self, journal: Journal
    ) -> None:
        task = add_task(journal, "k")
        journal.start(task.id)
        journal.retry_later(task.id, "OSError: try again")
        journal.start(task.id)

        journal.finish(task.id, 42)

        stored = journal.get("k")
        assert stored is not None
        assert stored.error is None
        assert stored.attempts == 2

    def test_journal_counts_tasks_per_state(self, journal: Journal) -> None:
        done = add_task(journal)
        failed = add_task(journal)
        running = add_task(journal)
        add_task(journal)
        for task in (done, failed, running):
            journal.start(task.id)
        journal.finish(done.id, 1)
        journal.fail(failed.id, "boom")

        counts = journal.counts()

        assert counts == {
            TaskState.PENDING: 1,
            TaskState.RUNNING: 1,
            TaskState.DONE: 1,
            TaskState.FAILED: 1,
        }

    def test_journal_tasks_filters_by_state(self, journal: Journal) -> None:
        first = add_task(journal)
        second = add_task(journal)
        journal.start(second.id)

        pending = [task.id for task in journal.tasks(TaskState.PENDING)]

        assert pending == [first.id]

    def test_journal_get_returns_none_for_unknown_key(self, journal: Journal) -> None:
        assert journal.get("missing") is None

    def test_journal_keeps_tasks_after_reopening(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        first = open_journal()
        task = add_task(first, "k")
        first.close()

        stored = open_journal().get("k")

        assert stored is not None
        assert stored.id == task.id


class TestJournalResults:
    @pytest.mark.parametrize(
        "result",
        [object(), {1, 2}, math.nan, math.inf, b"bytes"],
        ids=["object", "set", "nan", "inf", "bytes"],
    )
    def test_journal_finish_stores_none_for_unserializable(
        self, journal: Journal, result: object
    ) -> None:
        task = add_task(journal, "k")
        journal.start(task.id)

        journal.finish(task.id, result)

        stored = journal.get("k")
        assert stored is not None
        assert stored.state == TaskState.DONE
        assert stored.result is None

    def test_journal_finish_warns_for_unserializable(
        self, journal: Journal, caplog: pytest.LogCaptureFixture
    ) -> None:
        task = add_task(journal, "k")
        journal.start(task.id)

        with caplog.at_level(logging.WARNING, logger="syncq.journal"):
            journal.finish(task.id, {1, 2})

        assert "not JSON-serializable (set)" in caplog.text

    def test_journal_corrupt_result_raises_journal_error(
        self, journal: Journal, journal_path: Path
    ) -> None:
        task = add_task(journal, "k")
        journal.start(task.id)
        journal.finish(task.id, 1)
        with contextlib.closing(sqlite3.connect(journal_path)) as raw, raw:
            raw.execute("UPDATE tasks SET result = '{bad' WHERE id = ?", (task.id,))

        with pytest.raises(JournalError, match="unreadable JSON"):
            journal.add("json:dumps", "[1]", "{}", key="k")


class TestJournalKeys:
    def test_journal_done_key_is_not_added_again(self, journal: Journal) -> None:
        task = add_task(journal, "k")
        journal.start(task.id)
        journal.finish(task.id, 42)

        again, created = journal.add(function_name(explode), "[]", "{}", key="k")

        assert created is False
        assert again.id == task.id
        assert len(list(journal.tasks())) == 1

    def test_journal_done_key_returns_stored_result(self, journal: Journal) -> None:
        task = add_task(journal, "k")
        journal.start(task.id)
        journal.finish(task.id, 42)

        again, _ = journal.add(function_name(explode), "[]", "{}", key="k")

        assert again.state == TaskState.DONE
        assert again.result == 42
        assert again.function == function_name(double)

    def test_journal_failed_key_is_reset_to_pending(self, journal: Journal) -> None:
        task = add_task(journal, "k")
        journal.start(task.id)
        journal.fail(task.id, "boom")

        again, created = journal.add(function_name(double), "[21]", "{}", key="k")

        assert created is True
        assert again.id == task.id
        assert again.state == TaskState.PENDING
        assert again.attempts == 0

    def test_journal_pending_key_of_same_run_is_kept(self, journal: Journal) -> None:
        task = add_task(journal, "k")

        again, created = journal.add(function_name(double), "[1]", "{}", key="k")

        assert created is False
        assert again.id == task.id
        assert again.args == [21]

    def test_journal_key_of_live_run_raises(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        add_task(open_journal(), "k")
        other = open_journal()

        with pytest.raises(JournalError, match="'k'"):
            add_task(other, "k")

    def test_journal_key_of_closed_run_is_taken_over(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        first = open_journal()
        task = add_task(first, "k")
        first.close()
        second = open_journal()

        again, created = second.add(function_name(double), "[21]", "{}", key="k")

        assert created is True
        assert again.id == task.id
        assert second.start(task.id) is True


class TestJournalRecover:
    def test_recover_takes_over_tasks_of_closed_run(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        first = open_journal()
        pending = add_task(first)
        running = add_task(first)
        first.start(running.id)
        first.close()

        recovered = open_journal().recover()

        assert [task.id for task in recovered] == [pending.id, running.id]
        assert {task.state for task in recovered} == {TaskState.PENDING}

    def test_recover_keeps_attempts_of_interrupted_task(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        first = open_journal()
        running = add_task(first)
        first.start(running.id)
        first.close()

        (recovered,) = open_journal().recover()

        assert recovered.attempts == 1

    def test_recover_leaves_finished_tasks_alone(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        first = open_journal()
        done = add_task(first)
        failed = add_task(first)
        for task in (done, failed):
            first.start(task.id)
        first.finish(done.id, 42)
        first.fail(failed.id, "boom")
        first.close()

        recovered = open_journal().recover()

        assert recovered == []

    def test_recover_takes_over_run_whose_process_exited(
        self, journal_path: Path, open_journal: Callable[..., Journal]
    ) -> None:
        # The first journal stays open and keeps renewing its lease. Only its
        # process id changes, to that of a process that has exited.
        first = open_journal()
        task = add_task(first)
        execute(
            journal_path,
            "UPDATE runs SET pid = ? WHERE run_id = ?",
            (exited_pid(), first.run_id),
        )

        recovered = open_journal().recover()

        assert [found.id for found in recovered] == [task.id]

    def test_recover_ignores_pid_on_other_host(
        self, journal_path: Path, open_journal: Callable[..., Journal]
    ) -> None:
        # A process id means nothing on another host, so only the lease counts.
        first = open_journal()
        add_task(first)
        execute(
            journal_path,
            "UPDATE runs SET pid = ?, host = ? WHERE run_id = ?",
            (exited_pid(), "another-host.invalid", first.run_id),
        )

        recovered = open_journal().recover()

        assert recovered == []

    def test_recover_keeps_tasks_of_live_run(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        first = open_journal()
        task = add_task(first)

        recovered = open_journal().recover()

        assert recovered == []
        assert first.start(task.id) is True

    @pytest.mark.timeout(10)
    def test_recover_keeps_run_that_renews_its_lease(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        # NOTE: real time, because Journal stamps leases with time.time() and
        # takes no clock. The lease runs out more than once during the wait.
        lease = 0.5
        first = open_journal(lease_duration=lease)
        add_task(first)
        time.sleep(1.6 * lease)

        recovered = open_journal().recover()

        assert recovered == []

    def test_recover_returns_pending_tasks_of_own_run(self, journal: Journal) -> None:
        task = add_task(journal)

        recovered = journal.recover()

        assert [found.id for found in recovered] == [task.id]


class _StalledRun:
    """A child process whose journal run stopped renewing its lease."""

    def __init__(self, process: subprocess.Popen[str], ids: dict[str, Any]) -> None:
        self.process = process
        self.run_id: str = ids["run_id"]
        self.pending_id: int = ids["pending"]
        self.running_id: int = ids["running"]

    def resume(self) -> dict[str, Any]:
        """Continue the child and return the JSON that it prints after resuming."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        os.kill(self.process.pid, signal.SIGCONT)
        self.process.stdin.write("resume\n")
        self.process.stdin.flush()
        reply: dict[str, Any] = json.loads(self.process.stdout.readline())
        return reply


def _heartbeat_at(path: Path, run_id: str) -> float:
    rows = query(path, "SELECT heartbeat_at FROM runs WHERE run_id = ?", (run_id,))
    return float(rows[0][0])


@pytest.fixture
def stalled_run(journal_path: Path) -> Iterator[_StalledRun]:
    """Return a child whose run's lease expired while its process still exists.

    The child is stopped with SIGSTOP right after a heartbeat, so it never holds
    the write lock while stopped, and the fixture waits until its lease has run
    out in real time (about 0.3 s).
    """
    if not hasattr(signal, "SIGSTOP"):
        pytest.skip("needs SIGSTOP to stop a process without ending it")
    lease = 0.3
    process = subprocess.Popen(
        crash_worker.command("stall", str(journal_path), str(lease)),
        cwd=journal_path.parent,
        env=crash_worker.environment(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        stalled = _StalledRun(process, json.loads(process.stdout.readline()))
        first_beat = _heartbeat_at(journal_path, stalled.run_id)
        deadline = time.monotonic() + WAIT_TIMEOUT
        while _heartbeat_at(journal_path, stalled.run_id) == first_beat:
            assert time.monotonic() < deadline, "the child renewed no lease"
            time.sleep(0.001)
        os.kill(process.pid, signal.SIGSTOP)
        os.waitpid(process.pid, os.WUNTRACED)
        expiry = _heartbeat_at(journal_path, stalled.run_id) + lease
        time.sleep(max(0.0, expiry - time.time()) + 0.05)
        yield stalled
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)
        process.kill()
        process.communicate(timeout=WAIT_TIMEOUT)


@pytest.mark.timeout(20)
class TestJournalExpiredLease:
    def test_recover_takes_over_run_with_expired_lease(
        self, stalled_run: _StalledRun, open_journal: Callable[..., Journal]
    ) -> None:
        recovered = open_journal().recover()

        ids = {task.id for task in recovered}
        assert ids == {stalled_run.pending_id, stalled_run.running_id}

    def test_start_returns_false_for_taken_over_run(
        self, stalled_run: _StalledRun, open_journal: Callable[..., Journal]
    ) -> None:
        successor = open_journal()
        successor.recover()

        reply = stalled_run.resume()

        assert reply["started"] is False
        assert successor.start(stalled_run.pending_id) is True

    def test_recover_finds_tasks_added_after_takeover(
        self, stalled_run: _StalledRun, open_journal: Callable[..., Journal]
    ) -> None:
        open_journal().recover()
        reply = stalled_run.resume()

        recovered = open_journal().recover()

        assert reply["late"] in {task.id for task in recovered}


@pytest.mark.timeout(20)
class TestJournalConcurrency:
    def test_start_returns_false_for_task_of_other_run(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        owner = open_journal()
        task = add_task(owner)
        other = open_journal()

        assert other.start(task.id) is False

    def test_recover_gives_each_task_to_one_journal(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        first = open_journal()
        task = add_task(first)
        first.close()
        journals = [open_journal(), open_journal()]
        recovered: list[list[int]] = [[], []]
        barrier = threading.Barrier(len(journals))

        def recover(index: int) -> None:
            barrier.wait(WAIT_TIMEOUT)
            recovered[index] = [found.id for found in journals[index].recover()]

        threads = [
            threading.Thread(target=recover, args=(index,))
            for index in range(len(journals))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_TIMEOUT)

        assert not any(thread.is_alive() for thread in threads)
        assert sorted(recovered[0] + recovered[1]) == [task.id]

    def test_start_succeeds_in_only_one_journal(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        first = open_journal()
        task = add_task(first)
        first.close()
        journals = [open_journal(), open_journal()]
        journals[0].recover()
        started: list[bool | None] = [None, None]
        barrier = threading.Barrier(len(journals))

        def start(index: int) -> None:
            barrier.wait(WAIT_TIMEOUT)
            started[index] = journals[index].start(task.id)

        threads = [
            threading.Thread(target=start, args=(index,))
            for index in range(len(journals))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_TIMEOUT)

        assert not any(thread.is_alive() for thread in threads)
        assert started == [True, False]


class TestJournalOpenErrors:
    def test_journal_rejects_corrupt_file(self, journal_path: Path) -> None:
        journal_path.write_bytes(os.urandom(8192))

        with pytest.raises(JournalError, match="corrupt") as excinfo:
            Journal(journal_path)

        assert str(journal_path) in str(excinfo.value)
        assert isinstance(excinfo.value.__cause__, sqlite3.DatabaseError)

    def test_journal_leaves_corrupt_file_unchanged(self, journal_path: Path) -> None:
        content = os.urandom(8192)
        journal_path.write_bytes(content)

        with pytest.raises(JournalError):
            Journal(journal_path)

        assert journal_path.read_bytes() == content

    def test_journal_rejects_other_sqlite_database(self, journal_path: Path) -> None:
        execute(journal_path, "CREATE TABLE users (name TEXT)")

        with pytest.raises(JournalError, match="not a syncq journal") as excinfo:
            Journal(journal_path)

        assert str(journal_path) in str(excinfo.value)

    def test_journal_leaves_other_database_unchanged(self, journal_path: Path) -> None:
        execute(journal_path, "CREATE TABLE users (name TEXT)")

        with pytest.raises(JournalError):
            Journal(journal_path)

        tables = query(journal_path, "SELECT name FROM sqlite_master")
        assert tables == [("users",)]

    def test_journal_opens_empty_file(self, journal_path: Path) -> None:
        journal_path.touch()

        with Journal(journal_path) as journal:
            counts = journal.counts()

        assert sum(counts.values()) == 0

    @pytest.mark.timeout(20)
    def test_journal_rejects_read_only_file(self, journal_path: Path) -> None:
        Journal(journal_path).close()
        journal_path.chmod(0o444)

        output = _open_in_unprivileged_child(journal_path)

        assert output.startswith("JournalError:")
        assert "read-only" in output
        assert str(journal_path) in output

    def test_journal_rejects_locked_database(self, journal_path: Path) -> None:
        Journal(journal_path).close()
        with contextlib.closing(
            sqlite3.connect(journal_path, isolation_level=None)
        ) as holder:
            holder.execute("BEGIN EXCLUSIVE")

            with pytest.raises(JournalError, match="locked") as excinfo:
                Journal(journal_path, busy_timeout=0.05)

            holder.execute("ROLLBACK")
        assert str(journal_path) in str(excinfo.value)

    def test_journal_waits_busy_timeout_for_lock(self, journal_path: Path) -> None:
        Journal(journal_path).close()
        with contextlib.closing(
            sqlite3.connect(journal_path, isolation_level=None)
        ) as holder:
            holder.execute("BEGIN EXCLUSIVE")
            started = time.monotonic()

            with pytest.raises(JournalError):
                Journal(journal_path, busy_timeout=0.2)

            waited = time.monotonic() - started
            holder.execute("ROLLBACK")
        assert 0.2 <= waited < 5.0

    def test_journal_rejects_newer_schema_version(self, journal_path: Path) -> None:
        Journal(journal_path).close()
        execute(
            journal_path,
            "UPDATE meta SET value = ? WHERE name = 'schema_version'",
            (str(SCHEMA_VERSION + 1),),
        )

        with pytest.raises(JournalError, match="schema version") as excinfo:
            Journal(journal_path)

        assert str(journal_path) in str(excinfo.value)

    def test_journal_rejects_malformed_schema_version(self, journal_path: Path) -> None:
        Journal(journal_path).close()
        execute(
            journal_path,
            "UPDATE meta SET value = 'two' WHERE name = 'schema_version'",
        )

        with pytest.raises(JournalError, match="schema version") as excinfo:
            Journal(journal_path)

        assert str(journal_path) in str(excinfo.value)

    def test_journal_rejects_directory_path(self, tmp_path: Path) -> None:
        with pytest.raises(JournalError) as excinfo:
            Journal(tmp_path)

        assert str(tmp_path) in str(excinfo.value)

    def test_journal_closed_raises_naming_path(self, journal_path: Path) -> None:
        journal = Journal(journal_path)
        journal.close()

        with pytest.raises(JournalError, match="closed") as excinfo:
            journal.counts()

        assert str(journal_path) in str(excinfo.value)

    def test_journal_close_is_idempotent(self, journal_path: Path) -> None:
        journal = Journal(journal_path)
        journal.close()

        journal.close()

        with pytest.raises(JournalError):
            add_task(journal)


def _open_in_unprivileged_child(path: Path, command: str = "open") -> str:
    """Open the journal in a child process that file permissions apply to.

    Root ignores file modes, so as root the child runs without the capabilities
    that bypass them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), using `setpriv`
    from util-linux. Returns what the child printed.
    """
    prefix: list[str] = []
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("as root, needs setpriv to make a file read-only")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
        probe = subprocess.run(
            [*prefix, "true"], capture_output=True, timeout=WAIT_TIMEOUT, check=False
        )
        if probe.returncode != 0:
            pytest.skip(f"as root, setpriv cannot drop capabilities: {probe.stderr!r}")
    result = subprocess.run(
        [*prefix, *crash_worker.command(command, str(path))],
        cwd=path.parent,
        env=crash_worker.environment(),
        capture_output=True,
        text=True,
        timeout=WAIT_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


class TestJournalParameters:
    @pytest.mark.parametrize("parameter", ["lease_duration", "busy_timeout"])
    @pytest.mark.parametrize("value", [0, 0.0, -1, -0.5, math.nan, math.inf, -math.inf])
    def test_journal_rejects_duration_out_of_range(
        self, journal_path: Path, parameter: str, value: float
    ) -> None:
        options: dict[str, Any] = {parameter: value}
        with pytest.raises(ValueError, match=parameter) as excinfo:
            Journal(journal_path, **options)

        assert repr(value) in str(excinfo.value)

    @pytest.mark.parametrize("parameter", ["lease_duration", "busy_timeout"])
    @pytest.mark.parametrize("value", [True, False, "1", None, [1]])
    def test_journal_rejects_duration_of_wrong_type(
        self, journal_path: Path, parameter: str, value: object
    ) -> None:
        options: dict[str, Any] = {parameter: value}

        with pytest.raises(TypeError, match=parameter) as excinfo:
            Journal(journal_path, **options)

        assert repr(value) in str(excinfo.value)

    def test_journal_bad_parameter_creates_no_file(self, journal_path: Path) -> None:
        with pytest.raises(ValueError):
            Journal(journal_path, lease_duration=0)

        assert not journal_path.exists()

    def test_journal_accepts_integer_durations(self, journal_path: Path) -> None:
        with Journal(journal_path, lease_duration=5, busy_timeout=1) as journal:
            assert journal.lease_duration == 5.0


class TestFunctionName:
    def test_function_name_names_module_function(self) -> None:
        assert function_name(double) == f"{__name__}:double"

    def test_function_name_accepts_function_on_class(self) -> None:
        assert function_name(Scaler.scale) == f"{__name__}:Scaler.scale"

    def test_function_name_round_trips_through_resolve(self) -> None:
        assert resolve_function(function_name(double)) is double

    @pytest.mark.parametrize(
        "fn",
        [
            lambda value: value,
            _make_nested(),
            Scaler(3).scale,
            functools.partial(double, 2),
        ],
        ids=["lambda", "nested", "bound-method", "partial"],
    )
    def test_function_name_rejects_unimportable(self, fn: Callable[..., Any]) -> None:
        with pytest.raises(TypeError, match="importable"):
            function_name(fn)

    def test_resolve_function_raises_for_missing_module(self) -> None:
        with pytest.raises(ImportError):
            resolve_function("syncq_no_such_module:run")

    def test_resolve_function_raises_for_missing_attribute(self) -> None:
        with pytest.raises(AttributeError):
            resolve_function(f"{__name__}:no_such_function")


class TestEncodeArguments:
    def test_encode_arguments_returns_json_text(self) -> None:
        args_json, kwargs_json = encode_arguments("f", [1, "two", [3]], {"four": 4})

        assert json.loads(args_json) == [1, "two", [3]]
        assert json.loads(kwargs_json) == {"four": 4}

    def test_encode_arguments_names_positional_index(self) -> None:
        with pytest.raises(TypeError, match="argument 1 of f"):
            encode_arguments("f", [1, object()], {})

    def test_encode_arguments_names_keyword(self) -> None:
        with pytest.raises(TypeError, match="keyword argument 'when' of f"):
            encode_arguments("f", [], {"when": {1, 2}})

    def test_encode_arguments_rejects_nan(self) -> None:
        with pytest.raises(TypeError, match="argument 0"):
            encode_arguments("f", [math.nan], {})


_REJECTED_CALLS: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = [
    (lambda value: value, (1,), {}),
    (_make_nested(), (1,), {}),
    (Scaler(3).scale, (1,), {}),
    (double, (object(),), {}),
    (double, (), {"value": math.nan}),
]
_REJECTED_IDS = ["lambda", "nested", "bound-method", "object-arg", "nan-kwarg"]


@pytest.mark.timeout(20)
class TestPoolJournal:
    def test_pool_submit_stores_row_before_returning(self, journal_path: Path) -> None:
        with WorkerPool(1, journal=journal_path) as pool:
            pool.options(key="row").submit(double, 21)
            rows = query(journal_path, "SELECT key, function, args FROM tasks")

        assert rows == [("row", function_name(double), "[21]")]

    def test_pool_done_key_returns_stored_result(self, journal_path: Path) -> None:
        with WorkerPool(1, journal=journal_path) as pool:
            pool.options(key="answer").submit(double, 21).result(WAIT_TIMEOUT)

        with WorkerPool(1, journal=journal_path) as pool:
            future = pool.options(key="answer").submit(explode)

        assert future.result(WAIT_TIMEOUT) == 42

    def test_pool_done_key_is_not_run_again(self, journal_path: Path) -> None:
        with WorkerPool(1, journal=journal_path) as pool:
            pool.options(key="answer").submit(double, 21).result(WAIT_TIMEOUT)

        with WorkerPool(1, journal=journal_path) as pool:
            pool.options(key="answer").submit(explode).result(WAIT_TIMEOUT)

        attempts = query(journal_path, "SELECT attempts FROM tasks")
        assert attempts == [(1,)]

    @pytest.mark.parametrize(
        ("fn", "args", "kwargs"), _REJECTED_CALLS, ids=_REJECTED_IDS
    )
    def test_pool_submit_rejects_unjournalable_call(
        self,
        journal_path: Path,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        with WorkerPool(1, journal=journal_path) as pool, pytest.raises(TypeError):
            pool.options(key="rejected").submit(fn, *args, **kwargs)

    @pytest.mark.parametrize(
        ("fn", "args", "kwargs"), _REJECTED_CALLS, ids=_REJECTED_IDS
    )
    def test_pool_rejected_call_stores_nothing(
        self,
        journal_path: Path,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        with WorkerPool(1, journal=journal_path) as pool:
            with pytest.raises(TypeError):
                pool.submit(fn, *args, **kwargs)
            rows = query(journal_path, "SELECT id FROM tasks")

        assert rows == []

    def test_pool_key_without_journal_raises(self) -> None:
        with WorkerPool(1) as pool, pytest.raises(ValueError, match="journal"):
            pool.options(key="k")

    def test_pool_runs_tasks_recovered_from_journal(self, journal_path: Path) -> None:
        with Journal(journal_path) as journal:
            add_task(journal, "left-over")

        with WorkerPool(1, journal=journal_path) as pool:
            results = [future.result(WAIT_TIMEOUT) for future in pool.recovered]

        assert results == [42]

    def test_pool_resubmitted_recovered_key_shares_future(
        self, journal_path: Path, gate: threading.Event
    ) -> None:
        name = function_name(wait_for_gate)
        with Journal(journal_path) as journal:
            journal.add(name, "[]", "{}", key="left-over")

        with WorkerPool(1, journal=journal_path) as pool:
            again = pool.options(key="left-over").submit(explode)
            gate.set()

        assert again is pool.recovered[0]
        assert again.result(WAIT_TIMEOUT) is True

    def test_pool_full_submit_stores_nothing(
        self, journal_path: Path, gate: threading.Event
    ) -> None:
        with WorkerPool(1, max_pending=1, journal=journal_path) as pool:
            pool.submit(wait_for_gate)
            pool.submit(double, 1)
            with pytest.raises(queue.Full):
                pool.options(key="rejected", block=False).submit(double, 2)
            rows = query(
                journal_path, "SELECT state FROM tasks WHERE key = ?", ["rejected"]
            )
            gate.set()

        assert rows == []

    def test_pool_full_submit_key_can_be_resubmitted(
        self, journal_path: Path, gate: threading.Event
    ) -> None:
        with WorkerPool(1, max_pending=1, journal=journal_path) as pool:
            pool.submit(wait_for_gate)
            pool.submit(double, 1)
            with pytest.raises(queue.Full):
                pool.options(key="rejected", block=False).submit(double, 2)
            gate.set()
            again = pool.options(key="rejected").submit(double, 2)

            assert again.result(timeout=1.0) == 4


class TestProcessLiveness:
    def test_process_exists_for_this_process(self) -> None:
        assert _process_exists(os.getpid())

    @pytest.mark.timeout(10)
    def test_process_exists_false_for_unreaped_killed_child(self) -> None:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            os.kill(child.pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while _process_exists(child.pid) and time.monotonic() < deadline:
                time.sleep(0.01)

            assert not _process_exists(child.pid)
        finally:
            child.wait(5)


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Yield a folder and a read-only bind mount of it; skip where not allowed."""
    source = tmp_path / "source"
    mounted = tmp_path / "mounted"
    source.mkdir()
    mounted.mkdir()
    mount = shutil.which("mount")
    if sys.platform != "linux" or os.geteuid() != 0 or mount is None:
        pytest.skip("a read-only bind mount needs root on Linux")
    made = subprocess.run(
        [mount, "--bind", "-o", "ro", str(source), str(mounted)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {made.stderr.decode().strip()}")
    try:
        # Some kernels take "ro" only on a remount of the bind mount.
        subprocess.run(
            [mount, "-o", "remount,bind,ro", str(mounted)],
            capture_output=True,
            check=False,
        )
        if os.access(mounted, os.W_OK) and not _is_read_only(mounted):
            pytest.skip("the bind mount is not read-only")
        yield source, mounted
    finally:
        subprocess.run(["umount", str(mounted)], capture_output=True, check=False)


def _is_read_only(folder: Path) -> bool:
    try:
        (folder / "probe").write_text("")
    except OSError:
        return True
    (folder / "probe").unlink()
    return False


class TestJournalReadOnly:
    @pytest.mark.timeout(20)
    def test_read_only_journal_opens_on_read_only_mount(
        self, read_only_folder: tuple[Path, Path]
    ) -> None:
        source, mounted = read_only_folder
        with Journal(source / "batch.db") as writer:
            add_task(writer, "k")

        with Journal(mounted / "batch.db", read_only=True) as reader:
            counts = reader.counts()

        assert counts[TaskState.PENDING] == 1

    def test_read_only_journal_reads_counts(self, journal_path: Path) -> None:
        with Journal(journal_path) as writer:
            add_task(writer, "k")

        with Journal(journal_path, read_only=True) as reader:
            counts = reader.counts()
            tasks = list(reader.tasks())

        assert counts[TaskState.PENDING] == 1
        assert [task.key for task in tasks] == ["k"]

    def test_read_only_journal_registers_no_run(self, journal_path: Path) -> None:
        Journal(journal_path).close()

        reader = Journal(journal_path, read_only=True)
        with reader, contextlib.closing(sqlite3.connect(journal_path)) as raw:
            runs = raw.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

        assert runs == 1

    def test_read_only_journal_rejects_writes(self, journal_path: Path) -> None:
        Journal(journal_path).close()

        with Journal(journal_path, read_only=True) as reader:
            with pytest.raises(JournalError, match="read-only"):
                reader.add("json:dumps", "[1]", "{}", key="k")
            with pytest.raises(JournalError, match="read-only"):
                reader.recover()
            with pytest.raises(JournalError, match="read-only"):
                reader.start(1)

    def test_read_only_journal_missing_file_raises(self, journal_path: Path) -> None:
        with pytest.raises(JournalError, match="not found"):
            Journal(journal_path, read_only=True)

        assert not journal_path.exists()

    def test_read_only_journal_rejects_other_database(self, journal_path: Path) -> None:
        with contextlib.closing(sqlite3.connect(journal_path)) as raw, raw:
            raw.execute("CREATE TABLE other (x)")

        with pytest.raises(JournalError, match="not a syncq journal"):
            Journal(journal_path, read_only=True)

    @pytest.mark.timeout(20)
    def test_read_only_journal_opens_read_only_file(self, journal_path: Path) -> None:
        with Journal(journal_path) as writer:
            add_task(writer, "k")
        journal_path.chmod(0o444)

        output = _open_in_unprivileged_child(journal_path, "read")

        assert output.startswith("counts:")
        assert "'pending': 1" in output


class TestJournalPath:
    def test_journal_rejects_empty_path(self) -> None:
        with pytest.raises(ValueError, match="path"):
            Journal("")


def failed_task(journal: Journal, key: str | None = None) -> JournalTask:
    """Add a task, run it once, and mark it failed; return the stored task."""
    task = add_task(journal, key)
    journal.start(task.id)
    journal.fail(task.id, "RuntimeError: boom")
    return task


def done_task(journal: Journal, key: str | None = None) -> JournalTask:
    """Add a task, run it once, and mark it done; return the stored task."""
    task = add_task(journal, key)
    journal.start(task.id)
    journal.finish(task.id, 42)
    return task


def stored(journal: Journal, key: str) -> JournalTask:
    """Return the task with `key`, failing the test if there is none."""
    task = journal.get(key)
    assert task is not None
    return task


class TestJournalRequeue:
    def test_requeue_failed_moves_every_failed_task(self, journal: Journal) -> None:
        failed_task(journal, "a")
        failed_task(journal)

        moved = journal.requeue_failed()

        assert moved == 2
        assert journal.counts()[TaskState.PENDING] == 2
        assert journal.counts()[TaskState.FAILED] == 0

    def test_requeue_failed_leaves_other_states_alone(self, journal: Journal) -> None:
        done_task(journal, "done")
        add_task(journal, "pending")
        failed_task(journal, "failed")

        journal.requeue_failed()

        assert stored(journal, "done").state == TaskState.DONE
        assert stored(journal, "pending").state == TaskState.PENDING
        assert journal.counts()[TaskState.PENDING] == 2

    def test_requeue_failed_restarts_attempts_keeps_error(
        self, journal: Journal
    ) -> None:
        failed_task(journal, "k")

        journal.requeue_failed()

        task = stored(journal, "k")
        assert task.attempts == 0
        assert task.error == "RuntimeError: boom"

    def test_requeue_failed_by_key_moves_only_those(self, journal: Journal) -> None:
        failed_task(journal, "a")
        failed_task(journal, "b")

        moved = journal.requeue_failed(["b", "b"])

        assert moved == 1
        assert stored(journal, "a").state == TaskState.FAILED
        assert stored(journal, "b").state == TaskState.PENDING

    def test_requeue_failed_unknown_key_raises(self, journal: Journal) -> None:
        failed_task(journal, "a")

        with pytest.raises(JournalError, match="no task has key 'missing'"):
            journal.requeue_failed(["a", "missing"])

        assert stored(journal, "a").state == TaskState.FAILED

    def test_requeue_failed_key_not_failed_raises(self, journal: Journal) -> None:
        done_task(journal, "a")

        with pytest.raises(JournalError, match="key 'a' is done, not failed"):
            journal.requeue_failed(["a"])

    def test_requeue_failed_error_names_path(
        self, journal: Journal, journal_path: Path
    ) -> None:
        with pytest.raises(JournalError, match=str(journal_path)):
            journal.requeue_failed(["missing"])

    def test_requeue_failed_rejected_while_other_run_live(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        failed_task(open_journal(), "k")
        other = open_journal()

        with pytest.raises(
            JournalError, match=f"in use by a running process \\(pid {os.getpid()}"
        ):
            other.requeue_failed()

        assert stored(other, "k").state == TaskState.FAILED

    def test_requeue_failed_allowed_after_other_run_closed(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        first = open_journal()
        failed_task(first, "k")
        first.close()

        moved = open_journal().requeue_failed()

        assert moved == 1

    def test_requeue_failed_tasks_recovered_by_next_run(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        first = open_journal()
        task = failed_task(first, "k")
        first.close()
        retrier = open_journal()
        retrier.requeue_failed()
        retrier.close()

        recovered = open_journal().recover()

        assert [entry.id for entry in recovered] == [task.id]

    def test_requeue_failed_rejects_str_keys(self, journal: Journal) -> None:
        with pytest.raises(TypeError, match="keys"):
            journal.requeue_failed("k")

    def test_requeue_failed_rejects_key_not_str(self, journal: Journal) -> None:
        with pytest.raises(TypeError, match="int 1"):
            journal.requeue_failed([1])  # type: ignore[list-item]

    def test_requeue_failed_rejected_by_read_only_journal(
        self, journal_path: Path
    ) -> None:
        Journal(journal_path).close()

        reader = Journal(journal_path, read_only=True)
        with reader, pytest.raises(JournalError, match="read-only"):
            reader.requeue_failed()


def _age(path: Path, key: str, seconds: float) -> None:
    """Make the task with `key` look as if its state changed `seconds` ago."""
    execute(
        path,
        "UPDATE tasks SET updated_at = ? WHERE key = ?",
        (time.time() - seconds, key),
    )


class TestJournalPurge:
    def test_purge_deletes_tasks_in_states(self, journal: Journal) -> None:
        done_task(journal, "done")
        failed_task(journal, "failed")
        add_task(journal, "pending")

        deleted = journal.purge([TaskState.DONE, TaskState.FAILED])

        assert deleted == 2
        assert [task.key for task in journal.tasks()] == ["pending"]

    def test_purge_older_than_keeps_recent_tasks(
        self, journal: Journal, journal_path: Path
    ) -> None:
        done_task(journal, "old")
        done_task(journal, "new")
        _age(journal_path, "old", 8 * 86400)
        _age(journal_path, "new", 6 * 86400)

        deleted = journal.purge([TaskState.DONE], older_than=7 * 86400)

        assert deleted == 1
        assert [task.key for task in journal.tasks()] == ["new"]

    def test_purge_pending_rejected_while_other_run_live(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        add_task(open_journal(), "k")
        other = open_journal()

        with pytest.raises(JournalError, match="before you delete pending tasks"):
            other.purge([TaskState.PENDING])

        assert stored(other, "k").state == TaskState.PENDING

    def test_purge_running_rejected_while_other_run_live(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        open_journal()
        other = open_journal()

        with pytest.raises(JournalError, match="in use"):
            other.purge([TaskState.RUNNING])

    def test_purge_done_allowed_while_other_run_live(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        done_task(open_journal(), "k")
        other = open_journal()

        deleted = other.purge([TaskState.DONE])

        assert deleted == 1

    def test_purge_pending_allowed_after_other_run_closed(
        self, open_journal: Callable[..., Journal]
    ) -> None:
        first = open_journal()
        add_task(first, "k")
        first.close()

        deleted = open_journal().purge([TaskState.PENDING, TaskState.RUNNING])

        assert deleted == 1

    @pytest.mark.parametrize(
        ("states", "error"),
        [
            ([], ValueError),
            (["finished"], ValueError),
            ("done", TypeError),
            ([1], TypeError),
        ],
        ids=["empty", "unknown", "str", "not-str"],
    )
    def test_purge_rejects_bad_states(
        self, journal: Journal, states: Any, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match="state"):
            journal.purge(states)

    @pytest.mark.parametrize(
        ("older_than", "error"),
        [
            (0, ValueError),
            (-1, ValueError),
            (math.nan, ValueError),
            (math.inf, ValueError),
            (True, TypeError),
            ("7d", TypeError),
        ],
    )
    def test_purge_rejects_bad_older_than(
        self, journal: Journal, older_than: Any, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match="older_than"):
            journal.purge([TaskState.DONE], older_than=older_than)

    def test_purge_rejected_by_read_only_journal(self, journal_path: Path) -> None:
        Journal(journal_path).close()

        reader = Journal(journal_path, read_only=True)
        with reader, pytest.raises(JournalError, match="read-only"):
            reader.purge([TaskState.DONE])


def _journal_size(path: Path) -> int:
    """Return the bytes of a journal file and its write-ahead log."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


class TestJournalVacuum:
    def test_vacuum_shrinks_file_after_purge(
        self, journal: Journal, journal_path: Path
    ) -> None:
        for _ in range(200):
            task = add_task(journal, value="x" * 2000)
            journal.start(task.id)
            journal.finish(task.id, "y" * 2000)
        journal.purge([TaskState.DONE])
        before = _journal_size(journal_path)

        journal.vacuum()

        assert _journal_size(journal_path) < before / 10

    def test_vacuum_keeps_remaining_tasks(self, journal: Journal) -> None:
        done_task(journal, "kept")

        journal.vacuum()

        assert stored(journal, "kept").state == TaskState.DONE

    def test_vacuum_rejected_by_read_only_journal(self, journal_path: Path) -> None:
        Journal(journal_path).close()

        reader = Journal(journal_path, read_only=True)
        with reader, pytest.raises(JournalError, match="read-only"):
            reader.vacuum()
