"""The ``syncq status``, ``syncq retry`` and ``syncq purge`` subcommands."""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import TextIO

from syncq._batch import UserError, display_key, key_from_display
from syncq._batch_outcomes import EXIT_OK, pluralize
from syncq.journal import Journal, TaskState


def _check_exists(path: str) -> None:
    # Journal() would create a missing file, and an empty journal would hide a
    # mistyped path.
    if not os.path.exists(path):
        raise UserError(f"journal {path} not found")


def status(path: str, out: TextIO) -> int:
    """Print the task counts of the journal at `path`, and each failed task."""
    _check_exists(path)
    with Journal(path, read_only=True) as journal:
        counts = journal.counts()
        failed = list(journal.tasks(TaskState.FAILED))
    for state, count in counts.items():
        out.write(f"{state + ':':<9}{count}\n")
    if failed:
        out.write("failed tasks:\n")
    for task in failed:
        name = f"task {task.id}" if task.key is None else display_key(task.key)
        out.write(f"  {name}: {task.error}\n")
    return EXIT_OK


def retry(path: str, keys: list[str] | None, out: TextIO) -> int:
    """Move the failed tasks of a journal back to pending: all, or those with `keys`."""
    _check_exists(path)
    with Journal(path) as journal:
        if keys is not None:
            keys = [_stored_key(journal, key) for key in keys]
        moved = journal.requeue_failed(keys)
    if not moved:
        out.write(f"no failed tasks in {path}\n")
        return EXIT_OK
    out.write(
        f"moved {pluralize(moved, 'failed task')} back to pending; the next "
        f"syncq run with --journal {path} runs them\n"
    )
    return EXIT_OK


def _stored_key(journal: Journal, key: str) -> str:
    """Return the key that `key`, as given or as ``syncq status`` shows it, names."""
    if journal.get(key) is not None:
        return key
    stored = key_from_display(key)
    if stored is not None and journal.get(stored) is not None:
        return stored
    # Not in the journal: requeue_failed reports it by the name given.
    return key


def purge(args: argparse.Namespace, out: TextIO) -> int:
    """Delete the tasks in ``args.states`` from a journal, then vacuum it if asked."""
    path = args.journal
    _check_exists(path)
    with Journal(path) as journal:
        deleted = journal.purge(args.states, older_than=args.older_than)
        size_before = _file_size(path)
        if args.vacuum:
            journal.vacuum()
        size_after = _file_size(path)
    noun = "task" if len(args.states) > 1 else f"{args.states[0]} task"
    out.write(f"deleted {pluralize(deleted, noun)} from {path}\n")
    if args.vacuum:
        out.write(f"vacuumed {path}: {size_before} bytes before, {size_after} after\n")
    return EXIT_OK


def _file_size(path: str) -> int:
    """Return the size in bytes of a journal and its write-ahead log."""
    size = 0
    for name in (path, path + "-wal"):
        with contextlib.suppress(FileNotFoundError):
            size += os.path.getsize(name)
    return size
