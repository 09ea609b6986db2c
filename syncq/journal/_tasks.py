"""The task rows of a journal: their states, and the statements that change them.

The functions that take a connection run inside the journal's lock, and those
that write run inside its transaction.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from syncq.errors import JournalError
from syncq.journal._lease import Run


class TaskState:
    """The states a journaled task can be in."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


STATES = (TaskState.PENDING, TaskState.RUNNING, TaskState.DONE, TaskState.FAILED)

TASK_COLUMNS = (
    "id, key, function, args, kwargs, priority, state, attempts, result, error"
)


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


def task_from_row(row: Sequence[Any]) -> JournalTask:
    """Decode a row of `TASK_COLUMNS`.

    Raises:
        ValueError: The arguments or the result are not valid JSON.
    """
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


def count_states(conn: sqlite3.Connection) -> dict[str, int]:
    """Return how many tasks are in each state, every state included."""
    counts = dict.fromkeys(STATES, 0)
    for state, count in conn.execute(
        "SELECT state, COUNT(*) FROM tasks GROUP BY state"
    ):
        counts[state] = count
    return counts


def take_over_orphans(conn: sqlite3.Connection, run_id: str, now: float) -> int:
    """Give the unfinished tasks of runs that are gone to `run_id`, all pending.

    Returns:
        How many of them were running, and so were interrupted.
    """
    # Tasks whose owner has no runs row left: the dead runs just deleted, and
    # any run taken over earlier that kept adding tasks after it resumed.
    orphaned = (
        " AND owner IS NOT ? AND (owner IS NULL"
        " OR owner NOT IN (SELECT run_id FROM runs))"
    )
    interrupted = conn.execute(
        "UPDATE tasks SET owner = ?, state = 'pending', updated_at = ?"
        " WHERE state = 'running'" + orphaned,
        (run_id, now, run_id),
    ).rowcount
    conn.execute(
        "UPDATE tasks SET owner = ? WHERE state = 'pending'" + orphaned,
        (run_id, run_id),
    )
    return interrupted


def pending_rows(conn: sqlite3.Connection, run_id: str) -> list[Any]:
    """Return the pending task rows of `run_id`, by priority, then in id order."""
    return conn.execute(
        f"SELECT {TASK_COLUMNS} FROM tasks"
        " WHERE owner = ? AND state = 'pending' ORDER BY priority, id",
        (run_id,),
    ).fetchall()


def add_task(
    conn: sqlite3.Connection,
    run: Run,
    call: tuple[str, str, str, float],
    key: str | None,
    now: float,
) -> tuple[Any, bool]:
    """Insert a task, or reuse the row of `key`; see `Journal.add`.

    Args:
        conn: The connection, inside a transaction.
        run: The run that adds the task.
        call: The function name, the arguments and keyword arguments as JSON,
            and the priority.
        key: The task's key, or None.
        now: The wall-clock time to record.

    Returns:
        The task's row of `TASK_COLUMNS`, and whether `run` must run it.
    """
    row = None
    if key is not None:
        row = conn.execute(
            f"SELECT {TASK_COLUMNS}, owner FROM tasks WHERE key = ?",
            (key,),
        ).fetchone()
    if row is None:
        cursor = conn.execute(
            "INSERT INTO tasks (key, function, args, kwargs, priority,"
            " state, owner, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
            (key, *call, run.run_id, now, now),
        )
        task_id = cursor.lastrowid
        created = True
    else:
        task_id, created = _reuse(conn, run, row, now, call)
    task = conn.execute(
        f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,)
    ).fetchone()
    return task, created


def _reuse(
    conn: sqlite3.Connection,
    run: Run,
    row: tuple[Any, ...],
    now: float,
    call: tuple[str, str, str, float],
) -> tuple[int, bool]:
    task_id, key, state, owner = row[0], row[1], row[6], row[-1]
    if state == TaskState.DONE:
        return task_id, False
    if state == TaskState.FAILED:
        conn.execute(
            "UPDATE tasks SET state = 'pending', owner = ?, attempts = 0,"
            " function = ?, args = ?, kwargs = ?, priority = ?, updated_at = ?"
            " WHERE id = ?",
            (run.run_id, *call, now, task_id),
        )
        return task_id, True
    if owner == run.run_id:
        return task_id, False
    if run.is_gone(conn, owner):
        conn.execute(
            "UPDATE tasks SET state = 'pending', owner = ?,"
            " function = ?, args = ?, kwargs = ?, priority = ?, updated_at = ?"
            " WHERE id = ?",
            (run.run_id, *call, now, task_id),
        )
        return task_id, True
    raise JournalError(
        f"journal {run.path}: task key {key!r} is {state} in another live run "
        f"({owner}); wait for it to finish or use another key"
    )


def requeue(
    conn: sqlite3.Connection, path: str, keys: list[str] | None, now: float
) -> int:
    """Move the failed tasks with `keys`, or all of them, to pending, unowned.

    Raises:
        JournalError: A key is not in the journal or its task is not failed.
    """
    update = (
        "UPDATE tasks SET state = 'pending', owner = NULL, attempts = 0,"
        " updated_at = ? WHERE state = 'failed'"
    )
    if keys is None:
        return conn.execute(update, (now,)).rowcount
    problems = []
    for key in keys:
        row = conn.execute("SELECT state FROM tasks WHERE key = ?", (key,)).fetchone()
        if row is None:
            problems.append(f"no task has key {key!r}")
        elif row[0] != TaskState.FAILED:
            problems.append(f"task key {key!r} is {row[0]}, not failed")
    if problems:
        raise JournalError(
            f"journal {path}: cannot move tasks to pending: {'; '.join(problems)}"
        )
    conn.executemany(update + " AND key = ?", [(now, key) for key in keys])
    return len(keys)


def delete_tasks(
    conn: sqlite3.Connection, states: list[str], updated_before: float | None
) -> int:
    """Delete the tasks in `states`, if given only those last changed before then."""
    query = f"DELETE FROM tasks WHERE state IN ({', '.join('?' * len(states))})"
    params: list[Any] = list(states)
    if updated_before is not None:
        query += " AND updated_at < ?"
        params.append(updated_before)
    return conn.execute(query, params).rowcount


def check_keys(keys: Iterable[str]) -> list[str]:
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


def check_states(states: Iterable[str]) -> list[str]:
    """Return `states` as a list without repeats, checking each is a task state."""
    if isinstance(states, str):
        raise TypeError(
            f"states must be a collection of task states such as ['done'], "
            f"got str {states!r}"
        )
    chosen = list(states)
    if not chosen:
        raise ValueError(f"states must name at least one of {', '.join(STATES)}")
    for state in chosen:
        if not isinstance(state, str):
            raise TypeError(
                f"states must hold str task states, got {type(state).__name__} "
                f"{state!r}"
            )
        if state not in STATES:
            raise ValueError(
                f"unknown task state {state!r} in states: expected {', '.join(STATES)}"
            )
    return list(dict.fromkeys(chosen))
