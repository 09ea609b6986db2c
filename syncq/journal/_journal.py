"""The `Journal` class: it joins the schema, the run's lease and the task rows."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from syncq._checks import check_positive
from syncq.errors import JournalError
from syncq.journal._encoding import encode_result
from syncq.journal._lease import Heartbeat, Run
from syncq.journal._schema import Transaction, connect_for_writing, connect_read_only
from syncq.journal._tasks import (
    TASK_COLUMNS,
    JournalTask,
    TaskState,
    add_task,
    check_keys,
    check_states,
    count_states,
    delete_tasks,
    pending_rows,
    requeue,
    take_over_orphans,
    task_from_row,
)

logger = logging.getLogger(__name__)


class Journal:
    """A SQLite journal of tasks, shared safely by threads and processes.

    The file is opened in WAL mode with ``synchronous=FULL``, so a task recorded by
    `add` survives a crash of the process or the machine once `add` returns.

    Args:
        path: The database file; created if missing.
        lease_duration: Seconds without a heartbeat after which another process
            treats this run as dead and takes over its tasks. A run on the same
            host whose process no longer exists is taken over at once.
        busy_timeout: Seconds to wait for another process's write lock.
        read_only: Open an existing journal only to read it, such as for a
            status report: no run is registered, and every write raises
            `JournalError`. The file and its folder may then be read-only.

    Raises:
        JournalError: The file is not a syncq journal, is corrupt, is read-only,
            stays locked past `busy_timeout`, or was written by a newer syncq.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lease_duration: float = 30.0,
        busy_timeout: float = 10.0,
        read_only: bool = False,
    ) -> None:
        lease_duration = check_positive(
            "lease_duration", lease_duration, unit=" of seconds"
        )
        busy_timeout = check_positive("busy_timeout", busy_timeout, unit=" of seconds")
        if not os.fspath(path):
            raise ValueError("path must name a journal file, got ''")
        self.path = os.fspath(path)
        self.lease_duration = lease_duration
        self._run = Run(self.path, lease_duration)
        self.run_id = self._run.run_id
        self._closed = False
        self._read_only = read_only
        # Guards the connection: sqlite3 connections must not be used by two
        # threads at once. Held for the length of each transaction.
        self._lock = threading.Lock()
        self._heartbeat: Heartbeat | None = None
        if read_only:
            self._conn = connect_read_only(self.path, busy_timeout)
            return
        self._conn = connect_for_writing(self.path, busy_timeout, self._run.register)
        self._heartbeat = Heartbeat(self._run, self._renew_lease, lambda: self._closed)
        self._heartbeat.start()

    # -- reading and writing ---------------------------------------------------

    def _write(self, sql: str, params: Sequence[Any]) -> int:
        with self._lock:
            self._check_writable()
            try:
                with Transaction(self._conn):
                    return self._conn.execute(sql, params).rowcount
            except sqlite3.Error as exc:
                raise JournalError(f"journal {self.path}: write failed: {exc}") from exc

    def _renew_lease(self) -> int:
        """Record a heartbeat of this run; return 0 if another run took it over."""
        return self._write(
            "UPDATE runs SET heartbeat_at = ? WHERE run_id = ?",
            (time.time(), self.run_id),
        )

    def _check_open(self) -> None:
        if self._closed:
            raise JournalError(f"journal {self.path} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._read_only:
            raise JournalError(f"journal {self.path} was opened read-only")

    def recover(self) -> list[JournalTask]:
        """Take over the tasks of dead runs and return every pending task of this run.

        Tasks that were running in a dead run are counted in `attempts` and run
        again. Call once, after opening and before adding tasks.
        """
        with self._lock:
            self._check_writable()
            try:
                with Transaction(self._conn):
                    dead = self._run.delete_dead_runs(self._conn)
                    interrupted = take_over_orphans(
                        self._conn, self.run_id, time.time()
                    )
                    rows = pending_rows(self._conn, self.run_id)
                    counts = count_states(self._conn)
            except sqlite3.Error as exc:
                raise JournalError(
                    f"journal {self.path}: recovery failed: {exc}"
                ) from exc
        if interrupted:
            logger.warning(
                "journal %s: re-queued %d interrupted tasks from %d dead runs",
                self.path,
                interrupted,
                len(dead),
            )
        logger.info(
            "journal %s opened by run %s: %d pending, %d running, %d done, %d failed",
            self.path,
            self.run_id,
            counts[TaskState.PENDING],
            counts[TaskState.RUNNING],
            counts[TaskState.DONE],
            counts[TaskState.FAILED],
        )
        return self._decode_recovered(rows)

    def _decode_recovered(self, rows: list[Any]) -> list[JournalTask]:
        tasks = []
        for row in rows:
            try:
                tasks.append(task_from_row(row))
            except ValueError as exc:
                logger.error(
                    "journal %s: task %d is unreadable: %s", self.path, row[0], exc
                )
                self.fail(row[0], f"unreadable arguments or result: {exc}")
        return tasks

    def add(
        self,
        function: str,
        args_json: str,
        kwargs_json: str,
        *,
        key: str | None = None,
        priority: float = 0,
    ) -> tuple[JournalTask, bool]:
        """Record a task, durably, and return it with whether this run must run it.

        With a `key` that is already in the journal, no row is added. A done task,
        or a pending or running one of this run, is returned as it is, and the
        second value is False. A failed task, or one of a dead run, is reset to
        pending with the new function and arguments, which this run then runs.

        Raises:
            JournalError: The key belongs to a task that another live run owns, or
                the write failed.
        """
        now = time.time()
        with self._lock:
            self._check_writable()
            try:
                with Transaction(self._conn):
                    task, created = add_task(
                        self._conn,
                        self._run,
                        (function, args_json, kwargs_json, priority),
                        key,
                        now,
                    )
            except sqlite3.Error as exc:
                raise JournalError(
                    f"journal {self.path}: adding a task failed: {exc}"
                ) from exc
        return self._decode(task), created

    def start(self, task_id: int) -> bool:
        """Mark a pending task of this run as running; False if this run lost it."""
        return (
            self._write(
                "UPDATE tasks SET state = 'running', attempts = attempts + 1,"
                " updated_at = ? WHERE id = ? AND owner = ? AND state = 'pending'",
                (time.time(), task_id, self.run_id),
            )
            == 1
        )

    def finish(self, task_id: int, result: Any) -> None:
        """Mark a task done and store its result as JSON.

        A result that JSON cannot represent is stored as null, with a warning:
        later runs then get None for its key. JSON turns tuples into lists and
        dictionary keys into strings.
        """
        encoded = encode_result(result)
        if encoded is None and result is not None:
            logger.warning(
                "journal %s: the result of task %d is not JSON-serializable (%s); "
                "it is stored as null",
                self.path,
                task_id,
                type(result).__name__,
            )
        self._write(
            "UPDATE tasks SET state = 'done', result = ?, error = NULL, updated_at = ?"
            " WHERE id = ? AND owner = ?",
            (encoded, time.time(), task_id, self.run_id),
        )

    def retry_later(self, task_id: int, error: str) -> None:
        """Return a failed attempt's task to pending, keeping the error for people."""
        self._write(
            "UPDATE tasks SET state = 'pending', error = ?, updated_at = ?"
            " WHERE id = ? AND owner = ?",
            (error, time.time(), task_id, self.run_id),
        )

    def fail(self, task_id: int, error: str) -> None:
        """Mark a task failed for good; adding its key again starts it afresh."""
        self._write(
            "UPDATE tasks SET state = 'failed', error = ?, updated_at = ?"
            " WHERE id = ? AND owner = ?",
            (error, time.time(), task_id, self.run_id),
        )

    def requeue_failed(self, keys: Iterable[str] | None = None) -> int:
        """Move failed tasks back to pending, so that the next run runs them again.

        No run owns the tasks afterwards, so the next journal that calls
        `recover` takes them over, and a pool on it runs them as it opens. Their
        attempt counts restart at zero, and their last error stays for people.
        Runs in one transaction: with a key that fails the check, nothing changes.

        Args:
            keys: The keys of the tasks to move, or None for every failed task.
                Tasks without a key can only be moved with None.

        Returns:
            How many tasks were moved.

        Raises:
            JournalError: Another live run holds a lease on the journal, or a key
                is not in the journal or its task is not failed. Also when the
                journal is read-only or closed, or the write failed. The message
                names the path and each key at fault.
            TypeError: `keys` is a str, or contains something other than str.
        """
        selected = None if keys is None else check_keys(keys)
        now = time.time()
        with self._lock:
            self._check_writable()
            try:
                with Transaction(self._conn):
                    self._run.reject_if_in_use(self._conn, "retry its failed tasks")
                    moved = requeue(self._conn, self.path, selected, now)
            except sqlite3.Error as exc:
                raise JournalError(
                    f"journal {self.path}: write failed while moving failed tasks "
                    f"to pending: {exc}"
                ) from exc
        if moved:
            logger.info(
                "journal %s: moved %d failed tasks back to pending", self.path, moved
            )
        return moved

    def purge(self, states: Iterable[str], *, older_than: float | None = None) -> int:
        """Delete the tasks in `states`, in one transaction, and return how many.

        Deleting pending or running tasks is rejected while another run is live,
        because that run may be about to run or finish them. Done and failed
        tasks may be deleted at any time; a done key that is deleted runs again
        when it is added again. The file keeps its size until `vacuum`.

        Args:
            states: The `TaskState` values of the tasks to delete.
            older_than: Delete only the tasks whose state last changed more than
                this many seconds ago, by the wall clock; None for no limit.

        Raises:
            JournalError: `states` contains pending or running while another
                live run holds a lease on the journal. Also when the journal is
                read-only or closed, or the write failed.
            TypeError: `states` is a str or contains something other than str, or
                `older_than` is not a number.
            ValueError: `states` is empty or holds an unknown state, or
                `older_than` is zero, negative, NaN or infinite.
        """
        chosen = check_states(states)
        updated_before = None
        if older_than is not None:
            older_than = check_positive("older_than", older_than, unit=" of seconds")
            updated_before = time.time() - older_than
        unfinished = {TaskState.PENDING, TaskState.RUNNING}.intersection(chosen)
        with self._lock:
            self._check_writable()
            try:
                with Transaction(self._conn):
                    if unfinished:
                        self._run.reject_if_in_use(
                            self._conn,
                            f"delete {' and '.join(sorted(unfinished))} tasks",
                        )
                    deleted = delete_tasks(self._conn, chosen, updated_before)
            except sqlite3.Error as exc:
                raise JournalError(
                    f"journal {self.path}: write failed while deleting tasks: {exc}"
                ) from exc
        if deleted:
            logger.info(
                "journal %s: deleted %d tasks (%s)",
                self.path,
                deleted,
                ", ".join(chosen),
            )
        return deleted

    def vacuum(self) -> None:
        """Rewrite the file so that it gives the space of deleted tasks back.

        SQLite's VACUUM copies the whole database, so it needs free disk space
        about the size of the file and blocks other writers while it runs, up to
        the busy timeout. A WAL checkpoint then truncates the write-ahead log, so
        the file shrinks at once unless another connection is reading.

        Raises:
            JournalError: The journal is read-only or closed, or VACUUM failed.
        """
        with self._lock:
            self._check_writable()
            try:
                self._conn.execute("VACUUM")
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise JournalError(
                    f"journal {self.path}: VACUUM failed: {exc}"
                ) from exc

    def counts(self) -> dict[str, int]:
        """Return how many tasks are in each state (a snapshot)."""
        with self._lock:
            self._check_open()
            try:
                return count_states(self._conn)
            except sqlite3.Error as exc:
                raise JournalError(
                    f"journal {self.path}: reading failed: {exc}"
                ) from exc

    def tasks(self, state: str | None = None) -> Iterator[JournalTask]:
        """Return the tasks, optionally only those in `state`, in id order."""
        query = f"SELECT {TASK_COLUMNS} FROM tasks"
        params: tuple[Any, ...] = ()
        if state is not None:
            query += " WHERE state = ?"
            params = (state,)
        with self._lock:
            self._check_open()
            try:
                rows = self._conn.execute(query + " ORDER BY id", params).fetchall()
            except sqlite3.Error as exc:
                raise JournalError(
                    f"journal {self.path}: reading failed: {exc}"
                ) from exc
        return iter([self._decode(row) for row in rows])

    def get(self, key: str) -> JournalTask | None:
        """Return the task with `key`, or None."""
        with self._lock:
            self._check_open()
            try:
                row = self._conn.execute(
                    f"SELECT {TASK_COLUMNS} FROM tasks WHERE key = ?", (key,)
                ).fetchone()
            except sqlite3.Error as exc:
                raise JournalError(
                    f"journal {self.path}: reading failed: {exc}"
                ) from exc
        return None if row is None else self._decode(row)

    def _decode(self, row: Sequence[Any]) -> JournalTask:
        try:
            return task_from_row(row)
        except ValueError as exc:
            raise JournalError(
                f"journal {self.path}: task {row[0]} has unreadable JSON: {exc}"
            ) from exc

    def close(self) -> None:
        """End this run and close the file; its pending tasks pass to the next run.

        Idempotent.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._read_only:
                self._conn.close()
                return
            try:
                with Transaction(self._conn):
                    self._run.end(self._conn)
            except sqlite3.Error:
                logger.exception(
                    "journal %s: recording the end of run %s failed",
                    self.path,
                    self.run_id,
                )
            finally:
                if self._heartbeat is not None:
                    self._heartbeat.stop()
                self._conn.close()
        if self._heartbeat is not None:
            self._heartbeat.join()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({self.path!r})"
