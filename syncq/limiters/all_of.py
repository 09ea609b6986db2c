"""A limiter that enforces several limits at once, taking from all or from none."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from types import TracebackType

from syncq._checks import check_positive, check_timeout
from syncq.clock import Clock
from syncq.errors import RateLimitExceeded
from syncq.limiters._two_phase import TwoPhaseLimiter, Undo
from syncq.limiters.base import Limiter, LimiterBase, Reservation, wait_for
from syncq.limiters.keyed import KeyedLimiter

__all__ = ["AllOf"]

# The maximum number of passes over the parts in search of a time that suits
# every one. Two passes always suffice in exact arithmetic (see _schedule).
_MAX_PASSES = 4

_SUPPORTED = "TokenBucket, FixedWindow, SlidingWindow, LeakyBucket or AllOf"


class _LockSet:
    """The locks of several limiters, taken in one fixed order and released together.

    Every `AllOf` takes its parts' locks in the order of their `id()`, so two
    of them that share parts cannot deadlock, whatever order they were given.
    """

    __slots__ = ("_locks", "_reversed")

    def __init__(self, locks: Sequence[threading.Lock]) -> None:
        self._locks = tuple(locks)
        self._reversed = tuple(reversed(self._locks))

    def __enter__(self) -> None:
        locks = self._locks
        acquired = 0
        try:
            for lock in locks:
                lock.acquire()
                acquired += 1
        except BaseException:
            # A KeyboardInterrupt can stop a blocked acquire. The locks
            # acquired so far must not stay held.
            for lock in reversed(locks[:acquired]):
                lock.release()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for lock in self._reversed:
            lock.release()


class AllOf(LimiterBase):
    """A limiter that grants a request only if every one of its limiters can.

    ``AllOf(TokenBucket("5/s"), SlidingWindow(100, 60), SlidingWindow(5000, 3600))``
    keeps to 5 requests a second and 100 a minute and 5,000 an hour. Each
    grant takes `n` tokens from every part, or from none: a `try_acquire`
    that returns False, a `reserve` or `acquire` whose timeout cannot be met,
    and an `acquire` interrupted in its sleep leave every part as it was.

    A grant happens at one time T for all parts: the earliest time at which
    every part can grant `n` tokens. Each part counts the grant at T, even if
    it could have granted earlier on its own, so each part's own bound holds
    for the times at which the tokens are used. With parts that only this
    object uses, no capacity is wasted. A request is due at the latest of the
    times at which each part alone would grant it, so a request that every
    part could grant now is granted now. Blocked callers are served first
    come, first served, and none of them polls.

    Cancelling a reservation before it is due gives the tokens back to each
    part under that part's cancel rule, which returns them only if no later
    reservation was made in that part (see each limiter's `reserve`).

    **Parts shared with other callers.** A part may also be used on its own,
    or in other `AllOf` objects. Its bound still holds over all its grants,
    and grants stay atomic, because an `AllOf` holds the locks of all its
    parts while it decides and takes. But a part that other callers keep
    busy delays this object's requests, and the capacity of the other parts
    goes unused meanwhile. Cancelling a reservation returns fewer tokens when
    another caller has since reserved from a part, or taken tokens from a
    `TokenBucket` part. Before one of this object's reservations falls due, a
    `TokenBucket` part may grant other callers the tokens that the
    reservation leaves unused.

    Nested `AllOf` objects are flattened into one. Each limiter may appear
    once. All parts must read the same clock object, which this object also
    sleeps on. For several limits per key, give a `KeyedLimiter` a factory
    that returns an `AllOf`, with `burst` set and an `idle_timeout` no
    shorter than the longest window of the parts (see `KeyedLimiter`).

    Args:
        *limiters: The limits to enforce together: `TokenBucket`,
            `FixedWindow`, `SlidingWindow`, `LeakyBucket` or `AllOf`
            objects, at least one.

    Raises:
        TypeError: A limiter is of another kind. A `KeyedLimiter` is rejected
            because it needs a key on every call, and a limiter from outside
            syncq because it can only reserve one limiter at a time, so the
            grant could not be atomic.
        ValueError: No limiter is given, a limiter appears twice, or the
            parts use different clocks.
    """

    __slots__ = ("_locks", "_max_n", "_monotonic", "_parts")

    def __init__(self, *limiters: Limiter) -> None:
        parts = _flatten(limiters)
        clock = _check_parts(parts)
        super().__init__(clock)
        self._parts = parts
        self._locks = _LockSet([part._lock for part in sorted(parts, key=id)])
        self._max_n = min(part._largest_n() for part in parts)
        # Looked up once, because try_acquire is a hot path.
        self._monotonic = self._clock.monotonic

    @property
    def parts(self) -> tuple[Limiter, ...]:
        """The limiters that each grant takes from, nested `AllOf` flattened."""
        return self._parts

    def try_acquire(self, n: float = 1) -> bool:
        """Take `n` tokens from every part if all have them now (see `Limiter`)."""
        # An int that fits needs no further checks, and the default n=1 is one.
        if type(n) is not int or n <= 0 or n > self._max_n:
            n = self._check_n(n)
        parts = self._parts
        with self._locks:
            now = self._monotonic()
            for part in parts:
                if part._earliest(n, now, now) > now:
                    return False
            for part in parts:
                part._take_now(n, now)
            return True

    def retry_after(self, n: float = 1) -> float:
        """Return the seconds until every part could grant `n` (see `Limiter`).

        The value ignores the `max_waiting` of `LeakyBucket` parts, as
        `LeakyBucket.retry_after` does.
        """
        n = self._check_n(n)
        with self._locks:
            now = self._monotonic()
            ready_at = self._schedule(n, now)
        return ready_at - now

    def reserve(
        self, n: float = 1, *, timeout: float | None = None
    ) -> Reservation | None:
        """Take `n` tokens from every part at the earliest time all allow.

        Also returns None, taking nothing, if the reservation would have to
        wait while a `LeakyBucket` part already has `max_waiting`
        reservations waiting (see `Limiter.reserve`).
        """
        reservation, _ = self._reserve_or_reject(n, timeout)
        return reservation

    def acquire(
        self,
        n: float = 1,
        timeout: float | None = None,
        *,
        raise_on_timeout: bool = False,
    ) -> bool:
        """Block until every part grants `n` tokens (see `Limiter`).

        A request that would have to wait while a `LeakyBucket` part already
        has `max_waiting` reservations waiting is rejected at once, as a
        timeout that cannot be met is.
        """
        reservation, full_part = self._reserve_or_reject(n, timeout)
        if reservation is None:
            if raise_on_timeout:
                raise self._rejection(n, timeout, full_part)
            return False

        wait_for(reservation, self._clock)
        return True

    def _reserve_or_reject(
        self, n: float, timeout: float | None
    ) -> tuple[Reservation | None, TwoPhaseLimiter | None]:
        """Reserve as `reserve` does; also return the part whose queue was full."""
        n = self._check_n(n)
        max_wait = check_timeout("timeout", timeout)
        parts = self._parts
        with self._locks:
            now = self._monotonic()
            ready_at = self._schedule(n, now)
            if max_wait is not None and ready_at - now > max_wait:
                return None, None
            if ready_at > now:
                for part in parts:
                    if not part._can_wait(now):
                        return None, part
            undos = tuple(part._take_at(n, ready_at, now) for part in parts)

        on_cancel = functools.partial(self._cancel, undos)
        return Reservation(ready_at, self._clock, on_cancel), None

    def _schedule(self, n: float, now: float) -> float:
        """Return the earliest time at which every part can grant `n` tokens.

        Each part returns its earliest time no earlier than the best time so
        far, which moves the time on, until every part in a row accepts it.
        A part that can grant at some time can grant at every later one too,
        so after one pass over the parts the time is the latest of their
        results, and the second pass accepts it.
        """
        parts = self._parts
        count = len(parts)
        at = now
        accepted = 0
        index = 0
        for _ in range(_MAX_PASSES * count):
            earliest = parts[index]._earliest(n, now, at)
            if earliest > at:
                at = earliest
                accepted = 1
            else:
                accepted += 1
            if accepted == count:
                break
            index = index + 1 if index + 1 < count else 0
        # NOTE: in floating point, a token bucket's result can fall a step
        # short of the time at which its tokens exist, so the bucket may ask
        # for a slightly later time each time it is asked. The loop then stops
        # after _MAX_PASSES passes with the time it has, which leaves such a
        # bucket a rounding error of tokens short, repaid by its refill.
        return at

    def _cancel(self, undos: tuple[Undo, ...]) -> None:
        with self._locks:
            now = self._monotonic()
            for undo in undos:
                undo(now)

    def _check_n(self, n: object) -> float:
        tokens = check_positive("n", n)
        for part in self._parts:
            try:
                part._check_n(tokens)
            except ValueError as exc:
                raise ValueError(
                    f"n={n!r} is more than {part!r}, one of the limits of this "
                    f"AllOf, can ever grant ({exc})"
                ) from exc
        return tokens

    def _rejection(
        self, n: float, timeout: float | None, full_part: TwoPhaseLimiter | None
    ) -> RateLimitExceeded:
        retry_after = self.retry_after(n)
        if full_part is None:
            reason = (
                f"{n!r} tokens cannot be granted within timeout={timeout!r} seconds"
            )
        else:
            reason = (
                f"{n!r} tokens cannot be reserved because {full_part!r} already "
                "has max_waiting reservations waiting"
            )
        return RateLimitExceeded(
            f"{reason}, retry after {retry_after:.6g} seconds", retry_after
        )

    def __repr__(self) -> str:
        parts = ", ".join(repr(part) for part in self._parts)
        return f"AllOf({parts})"


def _flatten(limiters: Sequence[object]) -> tuple[TwoPhaseLimiter, ...]:
    """Return the parts of `limiters`, with nested `AllOf` objects expanded."""
    parts: list[TwoPhaseLimiter] = []
    for limiter in limiters:
        if isinstance(limiter, AllOf):
            parts.extend(limiter._parts)
        elif isinstance(limiter, TwoPhaseLimiter):
            parts.append(limiter)
        elif isinstance(limiter, KeyedLimiter):
            raise TypeError(
                f"AllOf cannot contain {limiter!r}, which takes a key on every "
                "call; for several limits per key, give the KeyedLimiter a "
                "factory that returns an AllOf, such as "
                "KeyedLimiter(lambda: AllOf(TokenBucket('5/s'), "
                "SlidingWindow(100, 60)), burst=5)"
            )
        else:
            raise TypeError(
                f"AllOf takes {_SUPPORTED} limiters, got "
                f"{type(limiter).__name__} {limiter!r}; a limiter from outside "
                "syncq can only reserve on its own, so AllOf could not take "
                "from all parts or from none"
            )
    return tuple(parts)


def _check_parts(parts: tuple[TwoPhaseLimiter, ...]) -> Clock:
    """Check the flattened parts and return the clock that they share."""
    if not parts:
        raise ValueError(f"AllOf needs at least one limiter ({_SUPPORTED}), got none")

    seen: set[int] = set()
    for part in parts:
        if id(part) in seen:
            raise ValueError(
                f"{part!r} is given to AllOf more than once, directly or in a "
                "nested AllOf; give each limiter once"
            )
        seen.add(id(part))

    clock = parts[0]._clock
    for part in parts[1:]:
        if part._clock is not clock:
            raise ValueError(
                f"the limiters of an AllOf must share one clock object, but "
                f"{parts[0]!r} reads {clock!r} and {part!r} reads "
                f"{part._clock!r}; pass the same clock= to each"
            )
    return clock
