"""The listeners of a circuit breaker, and the delivery of its transitions to them."""

from __future__ import annotations

import collections
import logging
import threading
from typing import Callable, Generic, TypeVar

from syncq.breaker._logs import log_automatic_transition, log_manual_transition
from syncq.breaker._states import CircuitState, Transition

__all__ = ["Dispatcher"]

logger = logging.getLogger(__name__)

# The breaker, which every listener receives as its first argument.
S = TypeVar("S")


class Dispatcher(Generic[S]):
    """The listeners of one breaker, and the transitions not yet sent to them.

    The breaker queues each transition with `push` and calls `claim` before it
    releases its lock. If `claim` returns True, the breaker calls `deliver`
    after releasing the lock, which logs each transition and runs the
    listeners. One thread at a time delivers, so listeners see transitions in
    the order they happened.
    """

    def __init__(
        self,
        lock: threading.Lock,
        label: str,
        half_open_max_calls: int,
        success_threshold: int,
    ) -> None:
        # The breaker's lock, which guards _listeners, _pending and _delivering.
        self._lock = lock
        # What the log lines name and report besides the transition itself.
        self._label = label
        self._half_open_max_calls = half_open_max_calls
        self._success_threshold = success_threshold
        # Replaced, never mutated, so delivery can iterate it without the lock.
        self._listeners: tuple[Callable[[S, CircuitState, CircuitState], None], ...]
        self._listeners = ()
        # Transitions not yet logged and sent to listeners, oldest first. One
        # thread at a time delivers them (the one that set _delivering), so
        # listeners see transitions in the order they happened.
        self._pending: collections.deque[Transition] = collections.deque()
        self._delivering = False

    def add(self, listener: Callable[[S, CircuitState, CircuitState], None]) -> None:
        """Add `listener` after the listeners already registered."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove(self, listener: Callable[[S, CircuitState, CircuitState], None]) -> None:
        """Remove one registration of `listener`.

        Raises:
            ValueError: `listener` is not registered.
        """
        with self._lock:
            listeners = list(self._listeners)
            if listener not in listeners:
                raise ValueError(f"listener {listener!r} is not registered")
            listeners.remove(listener)
            self._listeners = tuple(listeners)

    def push(self, event: Transition) -> None:
        """Queue `event` for delivery. The caller holds the breaker's lock."""
        self._pending.append(event)

    def claim(self) -> bool:
        """Return True if the caller must run `deliver` after releasing the lock.

        The caller holds the breaker's lock. False means that nothing is
        pending or that another thread is already delivering, which then
        delivers these transitions too.
        """
        if not self._pending or self._delivering:
            return False
        self._delivering = True
        return True

    def deliver(self, source: S) -> None:
        """Log the pending transitions of `source` and run its listeners.

        Only the thread whose `claim` returned True calls this, without the lock.
        """
        try:
            while True:
                with self._lock:
                    if not self._pending:
                        self._delivering = False
                        return
                    event = self._pending.popleft()
                    listeners = self._listeners
                self._announce(source, event, listeners)
        except BaseException:
            with self._lock:
                self._delivering = False
            raise

    def _announce(
        self,
        source: S,
        event: Transition,
        listeners: tuple[Callable[[S, CircuitState, CircuitState], None], ...],
    ) -> None:
        if event.method:
            log_manual_transition(self._label, event)
        else:
            log_automatic_transition(
                self._label, event, self._half_open_max_calls, self._success_threshold
            )
        for listener in listeners:
            try:
                listener(source, event.old, event.new)
            except Exception:
                logger.exception(
                    "listener %r of circuit breaker %s failed on %s -> %s",
                    listener,
                    self._label,
                    event.old.value,
                    event.new.value,
                )
