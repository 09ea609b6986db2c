"""The input of ``syncq run``: a thread that reads commands a bounded window ahead."""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
from concurrent.futures import Future
from typing import IO, Any, Union


@dataclasses.dataclass(frozen=True)
class Line:
    """A command read from the input."""

    number: int
    command: str


@dataclasses.dataclass(frozen=True)
class EndOfInput:
    """The input is exhausted, or reading it failed with `error`."""

    error: OSError | None = None


Event = Union[Line, EndOfInput, Future[Any]]


class Reader:
    """A thread that reads commands into the event queue, a bounded window ahead.

    Each command takes one credit from the window; `release` gives it back once
    the command has been reported.
    """

    def __init__(self, stream: IO[Any], owned: bool, *, window: int) -> None:
        self._stream = stream
        self._owned = owned
        self._credits = threading.Semaphore(window)
        self._window = window
        self._stopped = threading.Event()
        self._events: queue.Queue[Event] | None = None
        self._started = False
        # A daemon, because it may block reading a terminal or a pipe forever.
        self._thread = threading.Thread(
            target=self._read, name="syncq-run-reader", daemon=True
        )

    def start(self, events: queue.Queue[Event]) -> None:
        """Start reading; lines and the end of input go to `events`."""
        self._events = events
        self._started = True
        self._thread.start()

    def close_unless_started(self) -> None:
        """Close a stream of ours that the thread never took over."""
        if not self._started and self._owned:
            self._stream.close()

    def release(self) -> None:
        """Return one credit to the window."""
        self._credits.release()

    def stop(self) -> None:
        """Ask the thread to stop before its next command."""
        self._stopped.set()
        self._credits.release(self._window)

    def _read(self) -> None:
        events = self._events
        if events is None:
            return
        try:
            self._read_lines(events)
        except OSError as exc:
            events.put(EndOfInput(exc))
        else:
            events.put(EndOfInput())
        finally:
            if self._owned:
                self._stream.close()

    def _read_lines(self, events: queue.Queue[Event]) -> None:
        for number, raw in enumerate(self._stream, 1):
            command = decode_line(raw)
            if not command.strip() or command.lstrip().startswith("#"):
                continue
            self._credits.acquire()
            if self._stopped.is_set():
                return
            events.put(Line(number, command))


def decode_line(raw: bytes | str) -> str:
    # os.fsdecode is what subprocess reverses with os.fsencode, so the shell
    # receives the bytes of the file unchanged, even if they are not UTF-8.
    line = os.fsdecode(raw) if isinstance(raw, bytes) else raw
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line
