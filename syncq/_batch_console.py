"""The console of ``syncq run``: each command's output in one piece, and progress."""

from __future__ import annotations

import contextlib
import math
import os
import sys
from typing import TextIO

from syncq.clock import SYSTEM_CLOCK, Clock

# Seconds between redraws of the progress line while nothing finishes.
PROGRESS_INTERVAL = 0.2
# The shortest interval between two redraws.
PROGRESS_MIN_INTERVAL = 0.1
ERASE_LINE = "\r\x1b[K"


class Console:
    """The output side of a run: command output, the progress line, messages."""

    def __init__(
        self, stdout: TextIO, stderr: TextIO, *, progress: bool, clock: Clock | None
    ) -> None:
        self._stdout = stdout
        self._stderr = stderr
        self._progress = progress
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        self._progress_shown = False
        self._last_draw = -math.inf
        self._stdout_closed = False

    @property
    def progress(self) -> bool:
        """Whether the progress line is drawn."""
        return self._progress

    def output(self, stdout: str, stderr: str) -> None:
        """Write one command's output, standard output first, each in one piece.

        Raises:
            BrokenPipeError: Our standard output was closed by its reader.
        """
        if not stdout and not stderr:
            return
        self.clear_progress()
        if stdout and not self._stdout_closed:
            try:
                write_exact(self._stdout, stdout)
            except BrokenPipeError:
                self._stdout_closed = True
                discard_stdout()
                raise
        if stderr:
            write_exact(self._stderr, stderr)

    def message(self, text: str) -> None:
        """Write one line to stderr."""
        self.clear_progress()
        self._stderr.write(text + "\n")
        self._stderr.flush()

    def draw_progress(self, text: str) -> None:
        """Replace the progress line with `text`, at most every 0.1 s."""
        if not self._progress:
            return
        now = self._clock.monotonic()
        if now - self._last_draw < PROGRESS_MIN_INTERVAL:
            return
        self._last_draw = now
        self._stderr.write(ERASE_LINE + text)
        self._stderr.flush()
        self._progress_shown = True

    def clear_progress(self) -> None:
        """Erase the progress line, if it is shown."""
        if self._progress_shown:
            self._stderr.write(ERASE_LINE)
            self._stderr.flush()
            self._progress_shown = False
            self._last_draw = -math.inf


def write_exact(stream: TextIO, text: str) -> None:
    """Write `text` as the bytes the command produced, through the binary buffer."""
    stream.flush()
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(text)
        stream.flush()
        return
    buffer.write(text.encode("utf-8", "surrogateescape"))
    buffer.flush()


def discard_stdout() -> None:
    # Point file descriptor 1 at /dev/null, so the interpreter's final flush
    # does not fail again on the closed pipe.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
