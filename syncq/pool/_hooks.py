"""Event hooks: user objects that the pool calls as tasks run."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from syncq.pool._future import describe

if TYPE_CHECKING:
    from syncq.pool._task import Task

__all__ = [
    "HooksMixin",
    "PoolHooks",
    "TaskEvent",
    "call_hooks",
    "check_hook",
    "check_hooks",
]

logger = logging.getLogger(__name__)

HOOK_EVENTS = ("started", "succeeded", "failed", "retried", "gave_up")


@dataclasses.dataclass(frozen=True)
class TaskEvent:
    """The task that a hook is called about."""

    name: str
    """The task's key, or else its function's qualified name."""
    key: str | None
    attempt: int
    """The attempt this event is about: 1 for the first run."""
    future: Future[Any]
    """The task's future; it is not yet done when a hook is called."""


class PoolHooks:
    """Receive a pool's task events; subclass it and override what you need.

    The pool calls the methods on its worker threads, without holding a lock,
    before it completes the task's future. A method that raises is logged with
    its traceback and does not affect the task or the pool. A slow method
    delays the worker that calls it.
    """

    def started(self, task: TaskEvent) -> None:
        """Handle the start of an attempt, just before the function is called."""

    def succeeded(self, task: TaskEvent, result: Any) -> None:
        """Handle an attempt that returned `result`."""

    def failed(self, task: TaskEvent, exception: BaseException) -> None:
        """Handle an attempt that raised; `retried` or `gave_up` follows."""

    def retried(self, task: TaskEvent, exception: BaseException, delay: float) -> None:
        """Handle a failed attempt scheduled to run again in `delay` seconds."""

    def gave_up(self, task: TaskEvent, exception: BaseException) -> None:
        """Handle a task that failed for good, with `exception` as its outcome."""


def check_hook(hook: object) -> PoolHooks:
    """Return `hook` if it has every hook method, else raise TypeError."""
    missing = [name for name in HOOK_EVENTS if not callable(getattr(hook, name, None))]
    if missing:
        raise TypeError(
            "hook must be a PoolHooks or have its methods "
            f"({', '.join(HOOK_EVENTS)}); {hook!r} lacks {', '.join(missing)}"
        )
    return hook  # type: ignore[return-value]


def check_hooks(hooks: PoolHooks | Iterable[PoolHooks] | None) -> tuple[PoolHooks, ...]:
    """Return the hooks given to a pool as a tuple."""
    if hooks is None:
        return ()
    if isinstance(hooks, PoolHooks) or not isinstance(hooks, Iterable):
        return (check_hook(hooks),)
    return tuple(check_hook(hook) for hook in hooks)


def call_hooks(
    hooks: tuple[PoolHooks, ...], event: str, task: TaskEvent, *args: Any
) -> None:
    """Call `event` on each hook, logging any exception a hook raises."""
    for hook in hooks:
        try:
            getattr(hook, event)(task, *args)
        except Exception:
            logger.exception(
                "pool hook %r failed in %s for task %s", hook, event, task.name
            )
        except BaseException:
            # SystemExit from a hook, say, must not end a worker thread. Only
            # the main thread gets Ctrl-C, and there it still propagates.
            if threading.current_thread() is threading.main_thread():
                raise
            logger.exception(
                "pool hook %r raised in %s for task %s", hook, event, task.name
            )


class HooksMixin:
    """The part of `WorkerPool` that keeps its hooks and calls them."""

    _lock: threading.Lock
    _hooks: tuple[PoolHooks, ...]

    def add_hook(self, hook: PoolHooks) -> None:
        """Add `hook`, whose methods are called for tasks that start from now on.

        Each method gets a `TaskEvent`; see `PoolHooks` for when each is called.
        Thread-safe; a worker in the middle of a task may still call the hooks
        it read before the change.

        Raises:
            TypeError: `hook` lacks one of the `PoolHooks` methods.
        """
        check_hook(hook)
        with self._lock:
            self._hooks = (*self._hooks, hook)

    def remove_hook(self, hook: PoolHooks) -> None:
        """Remove a hook added earlier.

        Raises:
            ValueError: `hook` is not one of the pool's hooks.
        """
        with self._lock:
            hooks = list(self._hooks)
            if hook not in hooks:
                raise ValueError(f"hook {hook!r} is not one of this pool's hooks")
            hooks.remove(hook)
            self._hooks = tuple(hooks)

    def _emit(self, event: str, task: Task, attempt: int, *args: Any) -> None:
        name = describe(task.fn, task.key)
        call_hooks(
            self._hooks, event, TaskEvent(name, task.key, attempt, task.future), *args
        )
