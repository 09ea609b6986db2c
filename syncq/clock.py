"""Clocks that every timed part of syncq reads, so tests can replace time."""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A monotonic time source with a matching sleep.

    Limiters and breakers read time only through a clock, so a wall-clock change
    never affects them and tests can substitute `syncq.testing.FakeClock`.
    """

    def monotonic(self) -> float:
        """Return seconds on a clock that never goes backwards."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for `seconds` on this clock."""
        ...


class SystemClock:
    """The process's real monotonic clock: `time.monotonic` and `time.sleep`."""

    __slots__ = ()

    def monotonic(self) -> float:
        """Return `time.monotonic()`."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Sleep with `time.sleep`; a zero or negative duration returns at once."""
        if seconds > 0:
            time.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()
"""The shared default clock used when a part is built without `clock=`."""
