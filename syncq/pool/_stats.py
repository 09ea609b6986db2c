"""Throughput, error rate and run-time percentiles of a pool's recent attempts.

The pool records every finished attempt in an `AttemptRecorder` and reads the
figures back through an `AttemptSample` when `stats()` is called. Recording costs
a few index operations on rings allocated up front. The percentiles are computed
from a sorted copy of the run times, only when `AttemptSample.run_times()` is
called.
"""

from __future__ import annotations

import dataclasses
import math

from syncq._checks import check_int

# A slot's second before anything is recorded in it, older than any real clock
# reading.
_NEVER = -(2**63)


@dataclasses.dataclass(frozen=True)
class RunTimes:
    """Percentiles of the run times of a pool's recent attempts, in seconds.

    Each percentile is by nearest rank: the smallest recorded run time that at
    least that share of the recorded run times do not exceed. So every figure is
    one of the recorded run times, never an interpolation between two of them.
    """

    p50: float
    """The median run time: at least half of the attempts ran this long or less."""
    p90: float
    """The run time that at least 90% of the attempts did not exceed."""
    p99: float
    """The run time that at least 99% of the attempts did not exceed."""
    max: float
    """The maximum run time."""
    count: int
    """How many run times the percentiles are taken over, at least 1."""


@dataclasses.dataclass(frozen=True)
class AttemptSample:
    """A copy of an `AttemptRecorder`'s state at one clock reading.

    Taking a sample is cheap enough to do under the pool's lock. `run_times()`
    sorts the copied run times, so call it after releasing the lock.
    """

    finished: int
    """Attempts that finished in the window, failed ones included."""
    failed: int
    """Attempts that finished in the window by raising."""
    seconds: float
    """Seconds that `throughput` divides by: the window's length, or the time since
    the earliest recorded attempt started if that is shorter, but at least 1."""
    durations: list[float] = dataclasses.field(repr=False)
    """The latest run times in seconds, in no particular order."""

    @property
    def throughput(self) -> float:
        """Attempts finished per second over the window, or 0.0 if none did."""
        return self.finished / self.seconds

    @property
    def error_rate(self) -> float:
        """The share of the window's finished attempts that failed, or 0.0."""
        if self.finished == 0:
            return 0.0
        return self.failed / self.finished

    def run_times(self) -> RunTimes | None:
        """Compute the percentiles of the sampled run times, or None if there are none.

        This sorts the sample's run times, up to the recorder's `samples` floats,
        so call it without holding the pool's lock.
        """
        count = len(self.durations)
        if count == 0:
            return None
        ordered = sorted(self.durations)
        return RunTimes(
            p50=ordered[_rank(50, count)],
            p90=ordered[_rank(90, count)],
            p99=ordered[_rank(99, count)],
            max=ordered[-1],
            count=count,
        )


def _rank(percent: int, count: int) -> int:
    """Return the index in a sorted list of `count` items of its nearest-rank value."""
    # ceil(percent * count / 100) - 1, in integers so that no rounding error
    # moves the rank at exact multiples.
    return (percent * count + 99) // 100 - 1


class AttemptRecorder:
    """Record finished attempts for throughput, error rate and run-time percentiles.

    An attempt is one call of a task's function. A failed attempt that the pool
    will retry counts as a failure, so the error rate is a share of attempts,
    not of tasks. Attempts that never called the function, such as cancelled
    tasks, are not recorded.

    Throughput and error rate cover a window of whole seconds of the clock: the
    current second and the `window` seconds before it. So every attempt that
    finished in the last `window` seconds counts, and none that finished more
    than `window + 1` seconds ago. The run-time percentiles cover the latest
    `samples` attempts, however old they are.

    Not thread-safe: the pool calls every method with its own lock held, so the
    recorder needs no lock of its own. Memory is fixed when it is built.

    Args:
        window: Seconds of recent attempts that throughput and error rate cover,
            an int of at least 1; one counter per second is kept.
        samples: How many of the latest run times the percentiles are taken
            over, an int of at least 1.

    Raises:
        TypeError: `window` or `samples` is not an int, or is a bool.
        ValueError: `window` or `samples` is below 1.
    """

    __slots__ = (
        "_current",
        "_current_end",
        "_current_failed",
        "_current_finished",
        "_durations",
        "_failed",
        "_finished",
        "_full",
        "_next",
        "_origin",
        "_samples",
        "_seconds",
        "_slots",
        "_window",
    )

    def __init__(self, *, window: int = 60, samples: int = 1024) -> None:
        self._window = check_int("window", window, minimum=1)
        self._samples = check_int("samples", samples, minimum=1)

        # The run-time ring: _next is the index of the next write, and _full
        # turns true once every entry contains a recorded run time.
        self._durations = [0.0] * self._samples
        self._next = 0
        self._full = False

        # The per-second ring, one slot per second of the window plus one for
        # the current second. Slot i counts the attempts that finished in the
        # second _seconds[i], the floor of their clock reading.
        self._slots = window + 1
        self._seconds = [_NEVER] * self._slots
        self._finished = [0] * self._slots
        self._failed = [0] * self._slots
        # The second being counted now, kept out of the ring until the clock
        # passes _current_end, so that most records touch no list.
        self._current = _NEVER
        self._current_end = -math.inf
        self._current_finished = 0
        self._current_failed = 0

        # The earliest clock reading at which a recorded attempt started.
        self._origin = math.inf

    @property
    def window(self) -> int:
        """Seconds of recent attempts that throughput and error rate cover."""
        return self._window

    @property
    def samples(self) -> int:
        """How many of the latest run times the percentiles are taken over."""
        return self._samples

    def record(self, run_seconds: float, failed: bool, now: float) -> None:
        """Record one attempt that ran for `run_seconds` and finished at `now`.

        Call it with the pool's lock held. It writes one float into a ring and
        adds to one or two counters. Once a second, it also moves the counters
        into a ring of seconds. It allocates no objects beyond the numbers that
        its arithmetic makes.

        Args:
            run_seconds: How long the task's function ran, as a difference of two
                readings of the pool's clock.
            failed: True if the function raised, whether or not the task will be
                retried.
            now: The pool's clock reading when the attempt finished.
        """
        # NOTE: the arguments are not checked, which keeps this cheap. A
        # difference of two monotonic readings is finite and >= 0, and raising
        # here would stop a worker inside the pool's bookkeeping.
        index = self._next
        self._durations[index] = run_seconds
        index += 1
        if index == self._samples:
            index = 0
            self._full = True
        self._next = index

        # A comparison rather than min(), which would add a function call to
        # every record.
        started = now - run_seconds
        if started < self._origin:  # noqa: PLR1730
            self._origin = started

        if now >= self._current_end:
            self._next_second(now)
        self._current_finished += 1
        if failed:
            self._current_failed += 1

    def _next_second(self, now: float) -> None:
        """Move the counts of the second just ended into the ring, then count `now`'s.

        A record whose reading is a little older than the last one, from a
        thread that read the clock first but took the lock second, counts in
        the current second.
        """
        if self._current != _NEVER:
            slot = self._current % self._slots
            self._seconds[slot] = self._current
            self._finished[slot] = self._current_finished
            self._failed[slot] = self._current_failed
        second = int(now // 1.0)
        self._current = second
        self._current_end = second + 1.0
        self._current_finished = 0
        self._current_failed = 0

    def sample(self, now: float) -> AttemptSample:
        """Copy the counts of the window ending at `now` and the latest run times.

        Call it with the pool's lock held. It copies up to `samples` floats and
        sums `window + 1` pairs of counters, and sorts nothing.

        Args:
            now: The pool's clock reading, read with the pool's lock held so that
                it is at or after the latest `record`.
        """
        current = int(now // 1.0)
        oldest = current - self._window
        finished = 0
        failed = 0
        for second, slot_finished, slot_failed in zip(
            self._seconds, self._finished, self._failed
        ):
            if second >= oldest:
                finished += slot_finished
                failed += slot_failed
        if self._current >= oldest:
            finished += self._current_finished
            failed += self._current_failed

        # The window runs from the start of its oldest second to now. Early
        # on, the time since the first attempt started is shorter, and the
        # floor of 1 s keeps a few fast attempts from reading as a high rate.
        span = now - oldest
        seconds = max(1.0, min(span, now - self._origin))

        end = self._samples if self._full else self._next
        return AttemptSample(finished, failed, seconds, self._durations[:end])

    def __repr__(self) -> str:
        return f"AttemptRecorder(window={self._window}, samples={self._samples})"
