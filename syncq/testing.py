"""Test helpers for code that uses syncq: a clock that a test advances by hand."""

from __future__ import annotations

import math
import threading
import time

__all__ = ["FakeClock"]


class FakeClock:
    """A monotonic clock that a test advances by hand.

    `sleep` blocks the calling thread until another thread advances the clock past
    its deadline, as a real sleep would wait for real time. With
    `auto_advance=True`, `sleep` instead moves the clock forward itself and returns
    at once, which suits single-threaded tests. Every sleep is recorded in `sleeps`.

    Thread-safe.
    """

    def __init__(self, start: float = 0.0, *, auto_advance: bool = False) -> None:
        if not math.isfinite(start):
            raise ValueError(f"start must be a finite number, got {start!r}")
        self._now = float(start)
        self._auto_advance = auto_advance
        self._sleepers = 0
        self.sleeps: list[float] = []
        # Guards _now, _sleepers and sleeps. Notified whenever time moves or a
        # thread starts sleeping.
        self._changed = threading.Condition()

    def monotonic(self) -> float:
        """Return the fake time in seconds."""
        return self._now

    def sleep(self, seconds: float) -> None:
        """Block until the clock has been advanced by `seconds` (see the class)."""
        with self._changed:
            self.sleeps.append(seconds)
            if seconds <= 0:
                return
            if self._auto_advance:
                self._now += seconds
                self._changed.notify_all()
                return
            deadline = self._now + seconds
            self._sleepers += 1
            self._changed.notify_all()
            try:
                while self._now < deadline:
                    self._changed.wait()
            finally:
                self._sleepers -= 1
                self._changed.notify_all()

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds` and wake the sleepers now due."""
        if not seconds >= 0 or not math.isfinite(seconds):
            raise ValueError(f"seconds must be finite and >= 0, got {seconds!r}")
        with self._changed:
            self._now += seconds
            self._changed.notify_all()

    @property
    def sleepers(self) -> int:
        """Return how many threads are blocked in `sleep` right now."""
        return self._sleepers

    def wait_for_sleepers(self, count: int, timeout: float = 5.0) -> None:
        """Block until at least `count` threads sleep on this clock.

        `timeout` is in real seconds, so a broken test fails instead of hanging.

        Raises:
            TimeoutError: Fewer than `count` threads slept within `timeout`.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._sleepers < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{self._sleepers} of {count} threads sleep on the fake clock"
                    )
                self._changed.wait(remaining)

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"
