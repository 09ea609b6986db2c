"""A durable SQLite record of tasks, so a killed batch resumes where it stopped.

Each task is a row: the dotted name of an importable function, its arguments as
JSON, an optional key, and its state: ``pending``, ``running``, ``done`` or
``failed``. Every process that opens the journal registers a *run* and renews its
lease with a heartbeat. A task belongs to the run that queued it. When a run ends,
or its process is gone, or its lease runs out, the next run to open the journal
takes over its pending and running tasks and runs them again. Execution is
therefore at least once: a task that was running when its process died runs a
second time.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Callable

from syncq._checks import check_positive
from syncq.errors import JournalError

__all__ = ["Journal", "JournalTask", "TaskState"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# PRAGMA application_id marks the file as a syncq journal ("syq1" in ASCII).
APPLICATION_ID = 0x73797131

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    lease_duration REAL NOT NULL,
    ended_at REAL
);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY,
    key TEXT UNIQUE,
    function TEXT NOT NULL,
    args TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    priority REAL NOT NULL DEFAULT 0,
    state TEXT NOT NULL
        CHECK (state IN ('pending', 'running', 'done', 'failed')),
    owner TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (state, owner);
"""

_TASK_COLUMNS = (
    "id, key, function, args, kwargs, priority, state, attempts, result, error"
)


class TaskState:
    """The states a journaled task can be in."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


_STATES = (TaskState.PENDING, TaskState.RUNNING, TaskState.DONE, TaskState.FAILED)


@dataclasses.dataclass(frozen=True)
class JournalTask:
    """A snapshot of one task row; `args` and `kwargs` are decoded from JSON."""

    id: int
    key: str | None
    function: str
    args: list[Any]
    kwargs: dict[str, Any]
    priority: float
    state: str
    attempts: int
    result: Any
    error: str | None


def function_name(fn: Callable[..., Any]) -> str:
    """Return the ``module:qualname`` of `fn`, checking that importing it gives `fn`.

    Raises:
        TypeError: `fn` is a lambda, a nested function, a bound method or any other
            callable that cannot be found again by importing its module.
    """
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise TypeError(
            f"journaled tasks must be importable functions, got {fn!r} "
            "(it has no __module__ or __qualname__)"
        )
    name = f"{module}:{qualname}"
    if "<" in qualname:
        raise TypeError(
            f"journaled tasks must be importable functions, got {name} "
            "(lambdas and nested functions cannot be imported again)"
        )
    try:
        found = resolve_function(name)
    except (ImportError, AttributeError) as exc:
        raise TypeError(f"journaled task {name} cannot be imported: {exc}") from exc
    if found is not fn:
        raise TypeError(
            f"journaled tasks must be importable functions, got {fn!r}: importing "
            f"{name} gives {found!r} instead; bound methods and partials are refused"
        )
    return name


def resolve_function(name: str) -> Callable[..., Any]:
    """Import and return the function that `function_name` described as `name`.

    Raises:
        ImportError: The module cannot be imported.
        AttributeError: The module has no such attribute.
    """
    module_name, _, qualname = name.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise AttributeError(f"{name} is not callable")
    return target  # type: ignore[no-any-return]


def encode_arguments(
    name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[str, str]:
    """Return `args` and `kwargs` as JSON text.

    Raises:
        TypeError: An argument is not JSON-serializable; the message names it.
    """
    for index, value in enumerate(args):
        _check_json(value, f"argument {index} of {name}")
    for keyword, value in kwargs.items():
        _check_json(value, f"keyword argument {keyword!r} of {name}")
    return json.dumps(list(args), allow_nan=False), json.dumps(
        dict(kwargs), allow_nan=False
    )


def _check_json(value: Any, where: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{where} must be JSON-serializable to be journaled, got {value!r}: {exc}"
        ) from exc


def _encode_result(result: Any) -> str | None:
    try:
        return json.dumps(result, allow_nan=False)
    except (TypeError, ValueError):
        return None


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        # PermissionError and the like: the process exists but is not ours.
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # kill(pid, 0) still succeeds for a killed process its parent has not reaped.
    # NOTE: only Linux exposes /proc/PID/stat; elsewhere a zombie counts as alive
    # until its lease runs out.
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:
        return False
    return bool(fields) and fields[0] == b"Z"


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
        self.run_id = uuid.uuid4().hex
        self._host = socket.gethostname()
        self._closed = False
        self._read_only = read_only
        # Guards the connection: sqlite3 connections must not be used by two
        # threads at once. Held for the length of each transaction.
        self._lock = threading.Lock()
        self._stop_heartbeat = threading.Event()
        self._heartbeat: threading.Thread | None = None
        if read_only:
            self._conn = self._connect_read_only(busy_timeout)
            return
        self._conn = self._connect(busy_timeout)
        self._heartbeat = threading.Thread(
            target=self._renew_lease, name="syncq-journal-heartbeat", daemon=True
        )
        self._heartbeat.start()

    # -- opening ---------------------------------------------------------------

    def _connect(self, busy_timeout: float) -> sqlite3.Connection:
        return self._open(self.path, busy_timeout, self._prepare_for_writing, uri=False)

    def _connect_read_only(self, busy_timeout: float) -> sqlite3.Connection:
        if not os.path.isfile(self.path):
            raise JournalError(f"journal {self.path} not found")
        uri = "file:" + urllib.parse.quote(os.path.abspath(self.path)) + "?mode=ro"
        return self._open(uri, busy_timeout, self._check_schema_readable, uri=True)

    def _open(
        self,
        target: str,
        busy_timeout: float,
        prepare: Callable[[sqlite3.Connection], None],
        *,
        uri: bool,
    ) -> sqlite3.Connection:
        """Connect to `target`, check it is a journal, then run `prepare` on it."""
        try:
            conn = sqlite3.connect(
                target,
                uri=uri,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        try:
            self._check_file(conn)
            prepare(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise JournalError(_describe_open_error(self.path, exc)) from exc
        except JournalError:
            conn.close()
            raise
        return conn

    def _prepare_for_writing(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise JournalError(
                f"journal {self.path} cannot use WAL mode (got {mode!r}); "
                "put it on a local file system"
            )
        conn.execute("PRAGMA synchronous=FULL")
        self._create_schema(conn)
        now = time.time()
        with _Transaction(conn):
            conn.execute(
                "INSERT INTO runs (run_id, host, pid, started_at, heartbeat_at,"
                " lease_duration) VALUES (?, ?, ?, ?, ?, ?)",
                (self.run_id, self._host, os.getpid(), now, now, self.lease_duration),
            )

    def _check_schema_readable(self, conn: sqlite3.Connection) -> None:
        row = conn.execute(
            "SELECT value FROM meta WHERE name = 'schema_version'"
        ).fetchone()
        if row is None or _schema_version(self.path, row[0]) > SCHEMA_VERSION:
            raise JournalError(
                f"journal {self.path} has no schema this syncq understands"
            )

    def _check_file(self, conn: sqlite3.Connection) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = {
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables):
            raise JournalError(
                f"{self.path} is an SQLite database but not a syncq journal; "
                "choose another path"
            )

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        with _Transaction(conn):
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            row = conn.execute(
                "SELECT value FROM meta WHERE name = 'schema_version'"
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO meta (name, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif _schema_version(self.path, row[0]) > SCHEMA_VERSION:
                raise JournalError(
                    f"journal {self.path} has schema version {row[0]}, newer than this "
                    f"syncq understands ({SCHEMA_VERSION}); upgrade syncq"
                )
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    # -- the lease -------------------------------------------------------------

    def _renew_lease(self) -> None:
        interval = self.lease_duration / 3
        lease_lost = False
        while not self._stop_heartbeat.wait(interval):
            try:
                renewed = self._write(
                    "UPDATE runs SET heartbeat_at = ? WHERE run_id = ?",
                    (time.time(), self.run_id),
                )
            except JournalError:
                if self._closed:
                    return
                logger.exception(
                    "journal %s: renewing the lease of run %s failed",
                    self.path,
                    self.run_id,
                )
                continue
            if not renewed and not lease_lost:
                lease_lost = True
                logger.warning(
                    "journal %s: run %s lost its lease; another run took its tasks",
                    self.path,
                    self.run_id,
                )

    def _dead_runs(self, conn: sqlite3.Connection) -> list[str]:
        now = time.time()
        dead = []
        rows = conn.execute(
            "SELECT run_id, host, pid, heartbeat_at, lease_duration, ended_at FROM runs"
            " WHERE run_id != ?",
            (self.run_id,),
        )
        for run_id, host, pid, heartbeat_at, lease, ended_at in rows:
            if (
                ended_at is not None
                or heartbeat_at + lease < now
                or (host == self._host and not _process_exists(pid))
            ):
                dead.append(run_id)
        return dead

    def _live_runs(self, conn: sqlite3.Connection) -> list[tuple[str, int]]:
        """Return the host and process id of every other run that is still live."""
        dead = set(self._dead_runs(conn))
        rows = conn.execute(
            "SELECT run_id, host, pid FROM runs WHERE run_id != ? ORDER BY started_at",
            (self.run_id,),
        )
        return [(host, pid) for run_id, host, pid in rows if run_id not in dead]

    def _reject_if_in_use(self, conn: sqlite3.Connection, action: str) -> None:
        """Raise `JournalError` if another live run holds a lease on the journal."""
        live = self._live_runs(conn)
        if not live:
            return
        host, pid = live[0]
        others = f" and {len(live) - 1} more" if len(live) > 1 else ""
        raise JournalError(
            f"journal {self.path} is in use by a running process (pid {pid} on "
            f"{host}){others}; wait for it to end before you {action}"
        )

    def _run_is_gone(self, run_id: str | None) -> bool:
        if run_id is None or run_id in self._dead_runs(self._conn):
            return True
        row = self._conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,))
        return row.fetchone() is None

    # -- reading and writing ---------------------------------------------------

    def _write(self, sql: str, params: Sequence[Any]) -> int:
        with self._lock:
            self._check_writable()
            try:
                with _Transaction(self._conn):
                    return self._conn.execute(sql, params).rowcount
            except sqlite3.Error as exc:
                raise JournalError(f"journal {self.path}: write failed: {exc}") from exc

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
                with _Transaction(self._conn):
                    dead = self._dead_runs(self._conn)
                    self._conn.executemany(
                        "DELETE FROM runs WHERE run_id = ?",
                        [(run_id,) for run_id in dead],
                    )
                    # Tasks whose owner has no runs row left: the dead runs just
                    # deleted, and any run taken over earlier that kept adding
                    # tasks after it resumed.
                    orphaned = (
                        " AND owner IS NOT ? AND (owner IS NULL"
                        " OR owner NOT IN (SELECT run_id FROM runs))"
                    )
                    interrupted = self._conn.execute(
                        "UPDATE tasks SET owner = ?, state = 'pending', updated_at = ?"
                        " WHERE state = 'running'" + orphaned,
                        (self.run_id, time.time(), self.run_id),
                    ).rowcount
                    self._conn.execute(
                        "UPDATE tasks SET owner = ? WHERE state = 'pending'" + orphaned,
                        (self.run_id, self.run_id),
                    )
                    rows = self._conn.execute(
                        f"SELECT {_TASK_COLUMNS} FROM tasks"
                        " WHERE owner = ? AND state = 'pending' ORDER BY priority, id",
                        (self.run_id,),
                    ).fetchall()
                    counts = self._counts(self._conn)
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
                tasks.append(_task_from_row(row))
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
                with _Transaction(self._conn):
                    row = None
                    if key is not None:
                        row = self._conn.execute(
                            f"SELECT {_TASK_COLUMNS}, owner FROM tasks WHERE key = ?",
                            (key,),
                        ).fetchone()
                    if row is None:
                        cursor = self._conn.execute(
                            "INSERT INTO tasks (key, function, args, kwargs, priority,"
                            " state, owner, created_at, updated_at)"
                            " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                            (
                                key,
                                function,
                                args_json,
                                kwargs_json,
                                priority,
                                self.run_id,
                                now,
                                now,
                            ),
                        )
                        task_id = cursor.lastrowid
                        created = True
                    else:
                        task_id, created = self._reuse(
                            row, now, (function, args_json, kwargs_json, priority)
                        )
                    task = self._conn.execute(
                        f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,)
                    ).fetchone()
            except sqlite3.Error as exc:
                raise JournalError(
                    f"journal {self.path}: adding a task failed: {exc}"
                ) from exc
        return self._decode(task), created

    def _reuse(
        self, row: tuple[Any, ...], now: float, call: tuple[str, str, str, float]
    ) -> tuple[int, bool]:
        task_id, key, state, owner = row[0], row[1], row[6], row[-1]
        if state == TaskState.DONE:
            return task_id, False
        if state == TaskState.FAILED:
            self._conn.execute(
                "UPDATE tasks SET state = 'pending', owner = ?, attempts = 0,"
                " function = ?, args = ?, kwargs = ?, priority = ?, updated_at = ?"
                " WHERE id = ?",
                (self.run_id, *call, now, task_id),
            )
            return task_id, True
        if owner == self.run_id:
            return task_id, False
        if self._run_is_gone(owner):
            self._conn.execute(
                "UPDATE tasks SET state = 'pending', owner = ?,"
                " function = ?, args = ?, kwargs = ?, priority = ?, updated_at = ?"
                " WHERE id = ?",
                (self.run_id, *call, now, task_id),
            )
            return task_id, True
        raise JournalError(
            f"journal {self.path}: task key {key!r} is {state} in another live run "
            f"({owner}); wait for it to finish or use another key"
        )

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
        encoded = _encode_result(result)
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
            TypeError: `keys` is a str, or holds something other than str.
        """
        selected = None if keys is None else _check_keys(keys)
        now = time.time()
        with self._lock:
            self._check_writable()
            try:
                with _Transaction(self._conn):
                    self._reject_if_in_use(self._conn, "retry its failed tasks")
                    moved = self._requeue(selected, now)
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

    def _requeue(self, keys: list[str] | None, now: float) -> int:
        update = (
            "UPDATE tasks SET state = 'pending', owner = NULL, attempts = 0,"
            " updated_at = ? WHERE state = 'failed'"
        )
        if keys is None:
            return self._conn.execute(update, (now,)).rowcount
        problems = []
        for key in keys:
            row = self._conn.execute(
                "SELECT state FROM tasks WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                problems.append(f"no task has key {key!r}")
            elif row[0] != TaskState.FAILED:
                problems.append(f"task key {key!r} is {row[0]}, not failed")
        if problems:
            raise JournalError(
                f"journal {self.path}: cannot move tasks to pending: "
                f"{'; '.join(problems)}"
            )
        self._conn.executemany(update + " AND key = ?", [(now, key) for key in keys])
        return len(keys)

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
            TypeError: `states` is a str or holds something other than str, or
                `older_than` is not a number.
            ValueError: `states` is empty or holds an unknown state, or
                `older_than` is zero, negative, NaN or infinite.
        """
        chosen = _check_states(states)
        if older_than is not None:
            older_than = check_positive("older_than", older_than, unit=" of seconds")
        query = f"DELETE FROM tasks WHERE state IN ({', '.join('?' * len(chosen))})"
        params: list[Any] = list(chosen)
        if older_than is not None:
            query += " AND updated_at < ?"
            params.append(time.time() - older_than)
        unfinished = {TaskState.PENDING, TaskState.RUNNING}.intersection(chosen)
        with self._lock:
            self._check_writable()
            try:
                with _Transaction(self._conn):
                    if unfinished:
                        self._reject_if_in_use(
                            self._conn,
                            f"delete {' and '.join(sorted(unfinished))} tasks",
                        )
                    deleted = self._conn.execute(query, params).rowcount
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
                return self._counts(self._conn)
            except sqlite3.Error as exc:
                raise JournalError(
                    f"journal {self.path}: reading failed: {exc}"
                ) from exc

    @staticmethod
    def _counts(conn: sqlite3.Connection) -> dict[str, int]:
        counts = dict.fromkeys(
            (TaskState.PENDING, TaskState.RUNNING, TaskState.DONE, TaskState.FAILED), 0
        )
        for state, count in conn.execute(
            "SELECT state, COUNT(*) FROM tasks GROUP BY state"
        ):
            counts[state] = count
        return counts

    def tasks(self, state: str | None = None) -> Iterator[JournalTask]:
        """Return the tasks, optionally only those in `state`, in id order."""
        query = f"SELECT {_TASK_COLUMNS} FROM tasks"
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
                    f"SELECT {_TASK_COLUMNS} FROM tasks WHERE key = ?", (key,)
                ).fetchone()
            except sqlite3.Error as exc:
                raise JournalError(
                    f"journal {self.path}: reading failed: {exc}"
                ) from exc
        return None if row is None else self._decode(row)

    def _decode(self, row: Sequence[Any]) -> JournalTask:
        try:
            return _task_from_row(row)
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
                with _Transaction(self._conn):
                    self._conn.execute(
                        "UPDATE runs SET ended_at = ? WHERE run_id = ?",
                        (time.time(), self.run_id),
                    )
            except sqlite3.Error:
                logger.exception(
                    "journal %s: recording the end of run %s failed",
                    self.path,
                    self.run_id,
                )
            finally:
                self._stop_heartbeat.set()
                self._conn.close()
        if self._heartbeat is not None:
            self._heartbeat.join()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({self.path!r})"


class _Transaction:
    """Run the statements inside `with` in one write transaction, or none of them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        # IMMEDIATE takes the write lock at once, so two processes cannot both read
        # a row and then both decide to update it.
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._conn.execute("COMMIT")
        else:
            self._conn.execute("ROLLBACK")


def _check_keys(keys: Iterable[str]) -> list[str]:
    """Return `keys` as a list without repeats, checking that each is a str."""
    if isinstance(keys, str):
        raise TypeError(f"keys must be a collection of str keys, got str {keys!r}")
    listed = list(keys)
    for key in listed:
        if not isinstance(key, str):
            raise TypeError(
                f"keys must hold str keys, got {type(key).__name__} {key!r}"
            )
    return list(dict.fromkeys(listed))


def _check_states(states: Iterable[str]) -> list[str]:
    """Return `states` as a list without repeats, checking each is a task state."""
    if isinstance(states, str):
        raise TypeError(
            f"states must be a collection of task states such as ['done'], "
            f"got str {states!r}"
        )
    chosen = list(states)
    if not chosen:
        raise ValueError(f"states must name at least one of {', '.join(_STATES)}")
    for state in chosen:
        if not isinstance(state, str):
            raise TypeError(
                f"states must hold str task states, got {type(state).__name__} "
                f"{state!r}"
            )
        if state not in _STATES:
            raise ValueError(
                f"unknown task state {state!r} in states: expected {', '.join(_STATES)}"
            )
    return list(dict.fromkeys(chosen))


def _task_from_row(row: Sequence[Any]) -> JournalTask:
    task_id, key, function, args, kwargs, priority, state, attempts, result, error = (
        row[:10]
    )
    return JournalTask(
        id=task_id,
        key=key,
        function=function,
        args=json.loads(args),
        kwargs=json.loads(kwargs),
        priority=priority,
        state=state,
        attempts=attempts,
        result=None if result is None else json.loads(result),
        error=error,
    )


def _schema_version(path: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise JournalError(
            f"journal {path} is corrupt: its schema version is {value!r}, not a number"
        ) from None


def _describe_open_error(path: str, exc: sqlite3.Error) -> str:
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return f"journal {path} is corrupt or not an SQLite file: {text}"
    if "readonly" in text or "read-only" in text:
        return (
            f"journal {path} is read-only: {text}; "
            "syncq needs write access to the file and its folder"
        )
    if "locked" in text or "busy" in text:
        return f"journal {path} is locked by another process: {text}"
    return f"cannot open journal {path}: {text}"
