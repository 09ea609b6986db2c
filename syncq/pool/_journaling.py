"""Journal support for the pool, which recovers earlier tasks and records new ones."""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable

from syncq.errors import JournalError
from syncq.journal import (
    Journal,
    TaskState,
    encode_arguments,
    function_name,
    resolve_function,
)
from syncq.pool._ready import ReadyQueue
from syncq.pool._task import Options, Task
from syncq.retry import Retry

__all__ = ["JournalMixin"]

logger = logging.getLogger(__name__)


class JournalMixin:
    """The part of `WorkerPool` that reads and writes its journal."""

    _journal: Journal | None
    _owns_journal: bool
    _keys_lock: threading.Lock
    _by_key: dict[str, Future[Any]]
    _ready: ReadyQueue
    _retry: Retry | None
    _task_timeout: float | None
    recovered: list[Future[Any]]

    # Defined by the other parts of WorkerPool and declared here for mypy.
    if TYPE_CHECKING:

        def _reserve_slot(
            self, block: bool, block_timeout: float | None, *, bounded: bool = True
        ) -> None: ...

        def _release_slot(self) -> None: ...

        def _enqueue(self, task: Task, options: Options) -> None: ...

    def _open_journal(self, journal: Journal | str | os.PathLike[str]) -> None:
        if isinstance(journal, Journal):
            self._journal = journal
        else:
            self._journal = Journal(journal)
            self._owns_journal = True
        for entry in self._journal.recover():
            try:
                fn = resolve_function(entry.function)
            except (ImportError, AttributeError) as exc:
                logger.error(
                    "journal task %d (%s) cannot be recovered: %s",
                    entry.id,
                    entry.function,
                    exc,
                )
                self._journal.fail(entry.id, f"cannot import {entry.function}: {exc}")
                continue
            task = Task(
                fn,
                tuple(entry.args),
                entry.kwargs,
                entry.priority,
                self._retry,
                timeout=self._task_timeout,
            )
            task.journal_id = entry.id
            task.key = entry.key
            if entry.key is not None:
                self._by_key[entry.key] = task.future
            # Recovered tasks were accepted by an earlier run, so they do not
            # wait for a pending slot; opening the pool never blocks on them.
            self._reserve_slot(True, None, bounded=False)
            self._ready.put(task, priority=task.priority)
            self.recovered.append(task.future)
        if self.recovered:
            logger.info(
                "pool recovered %d tasks from journal %s",
                len(self.recovered),
                self._journal.path,
            )

    def _submit_journaled(
        self,
        journal: Journal,
        task: Task,
        options: Options,
    ) -> Future[Any]:
        key = options.key
        name = function_name(task.fn)
        args_json, kwargs_json = encode_arguments(name, task.args, task.kwargs)
        with self._keys_lock:
            if key is not None:
                existing = self._by_key.get(key)
                if existing is not None:
                    return existing
            # Take the pending slot first: a submit that raises queue.Full must
            # leave nothing in the journal for a later run to execute.
            self._reserve_slot(options.block, options.block_timeout)
            try:
                entry, created = journal.add(
                    name, args_json, kwargs_json, key=key, priority=task.priority
                )
                if not created and entry.state == TaskState.DONE:
                    self._release_slot()
                    done: Future[Any] = Future()
                    done.set_result(entry.result)
                    return done
                # Otherwise the row is new, or a pending row of this run whose
                # future was cancelled, which leaves the row for a rerun: this
                # submit is that rerun.
                task.journal_id = entry.id
                task.key = key
                if key is not None:
                    self._by_key[key] = task.future
                self._enqueue(task, options)
            except BaseException:
                # The row, if written, stays pending for the next run.
                if key is not None:
                    self._by_key.pop(key, None)
                self._release_slot()
                raise
        return task.future

    @staticmethod
    def _start_in_journal(journal: Journal, journal_id: int) -> JournalError | None:
        try:
            taken = journal.start(journal_id)
        except JournalError as exc:
            return exc
        if not taken:
            return JournalError(
                f"journal task {journal_id} was taken over by another run"
            )
        return None

    @staticmethod
    def _journal_write(
        write: Callable[[int, str], None], journal_id: int, exc: BaseException
    ) -> None:
        try:
            write(journal_id, f"{type(exc).__name__}: {exc}")
        except JournalError:
            logger.exception(
                "journal could not record the failure of task %d", journal_id
            )
