"""A limiter per key (user, host, API token) with bounded memory."""

from __future__ import annotations

import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Callable, Generic, TypeVar

from syncq._checks import check_int, check_positive, check_timeout
from syncq.clock import SYSTEM_CLOCK, Clock
from syncq.errors import RateLimitExceeded
from syncq.limiters.base import Limiter, Reservation, wait_for

__all__ = ["KeyedLimiter"]

_K = TypeVar("_K", bound=Hashable)

# How many of the least recently used keys a full table looks at for one to
# evict. The bound keeps a new key's request from scanning the whole table.
_EVICTION_CHECKS = 16

# How many of the oldest keys each request checks for idle expiry. A request for
# a new key checks two, so expiry can keep up with keys that arrive.
_EXPIRY_CHECKS = 1
_EXPIRY_CHECKS_ON_INSERT = 2


class _Entry:
    """The state that a KeyedLimiter keeps for one key."""

    __slots__ = ("blocked_until", "busy_until", "limiter", "touched")

    def __init__(self, limiter: Limiter, now: float) -> None:
        self.limiter = limiter
        # The time of the last request, or of the last expiry check that found
        # the key busy. Entries sit in the map in the order of this time.
        self.touched = now
        # When the latest reservation made for this key falls due.
        self.busy_until = -math.inf
        # When the block that a rejected request started ends.
        self.blocked_until = -math.inf


class KeyedLimiter(Generic[_K]):
    """One limiter per key, built on demand, with idle keys dropped.

    Each key (a user, a host, an API token: any hashable value) gets its own
    limiter from ``factory()`` on its first request, so keys never share
    capacity. The methods are those of `Limiter` with the key as first
    argument, and behave as that key's limiter does, apart from what is
    described below. Every method is thread-safe.

    **Idle keys.** A key is dropped, so that a later request starts with a new
    limiter, only when all of these hold:

    - no request for it came for `idle_timeout` seconds;
    - every reservation made for it is due, and it is not blocked;
    - its limiter is at rest: ``limiter.retry_after(burst)`` is 0, so it would
      grant a full burst now.

    The last rule keeps dropping from loosening the limit. A `TokenBucket`
    that can grant its capacity at once is full, which is the state a new one
    starts in. The rule holds for any limiter that can grant `burst` at once
    only when no earlier grant still counts against it. It breaks for a
    limiter that can grant `burst` while earlier grants still count, such as
    an `AllOf` whose parts have different capacities. For such a limiter, set
    `idle_timeout` to at least the time its slowest part takes to recover.

    Expiry is amortised: each request checks the oldest key, and a request
    that adds a key checks the two oldest. Idle keys therefore stay in the
    table until later requests come; nothing runs in the background.

    **max_keys.** When the table is full, a new key takes the place of the
    least recently used key that is at rest, whether or not it was idle for
    `idle_timeout`. Only the 16 least recently used keys are looked at, so
    that one request never scans the whole table. If none of them is at rest,
    the new key's request is rejected. `try_acquire`
    returns False, `reserve` returns None, and `acquire` returns False or
    raises `RateLimitExceeded` as `raise_on_timeout` says. Without a timeout,
    `acquire` cannot return False, so it raises in that case.

    **block_duration.** When a `try_acquire` for a key returns False, or a
    `reserve` or `acquire` for it cannot meet its timeout, the key is blocked
    for `block_duration` seconds. While it is blocked, `try_acquire` returns
    False at once, a `reserve` or `acquire` whose timeout ends before the block
    does is rejected at once, and `retry_after` reports at least the time left.
    A request without a timeout, or with one that outlasts the block, takes its
    place in the key's limiter at once and is due when the block ends, or
    later if the limiter needs longer. Requests rejected during a block do not
    extend it.

    **Locks and clocks.** One lock guards the key table. The non-blocking calls
    into a key's limiter (`try_acquire`, `reserve`, `retry_after`) run under
    it, so that no key can be dropped between a check and a grant, which
    means a limiter from `factory` must not block or call back into this
    object. `acquire` sleeps without the lock, so a key that waits never holds
    up requests for other keys. ``factory()`` also runs without the lock. The
    limiters from `factory` should read the same clock as this object, which
    uses its clock to time idleness and blocks and to sleep in `acquire`.

    Args:
        factory: A callable without arguments that returns a new limiter each
            time, such as ``lambda: TokenBucket("5/s")``. It is called once at
            construction to check it, and again for each key that is added.
        idle_timeout: Seconds without a request after which a key at rest is
            dropped.
        max_keys: The maximum number of keys held, or None for no limit other
            than idle expiry.
        block_duration: Seconds for which a key is blocked after a rejected
            request, or None to never block.
        burst: The request size that a new limiter from `factory` grants at
            once, used to tell when a limiter is at rest. By default, the
            `capacity` attribute of the factory's limiters (`TokenBucket`), or
            else their `limit` attribute (the window limiters). Give it for
            limiters that have neither.
        clock: The clock to read and sleep on. By default, the system clock.

    Raises:
        TypeError: An argument has the wrong type, or `burst` is None and the
            factory's limiter has neither a `capacity` nor a `limit`.
        ValueError: A number is zero, negative, NaN or infinite, `factory`
            returns the same limiter twice, or a new limiter cannot grant
            `burst` at once.
    """

    def __init__(
        self,
        factory: Callable[[], Limiter],
        *,
        idle_timeout: float = 60.0,
        max_keys: int | None = None,
        block_duration: float | None = None,
        burst: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._idle_timeout = check_positive(
            "idle_timeout", idle_timeout, unit=" of seconds"
        )
        self._max_keys = (
            None if max_keys is None else check_int("max_keys", max_keys, minimum=1)
        )
        self._block_duration = (
            None
            if block_duration is None
            else check_positive("block_duration", block_duration, unit=" of seconds")
        )
        self._clock = _check_clock(clock)
        # A limiter that takes no requests, so it stays as new. It checks `n`
        # and returns retry_after for keys that are not held.
        self._probe = _check_factory(factory)
        self._burst = _check_burst(self._probe, burst)
        self._factory = factory
        self._monotonic = self._clock.monotonic

        # Guards _entries and every _Entry in it.
        self._lock = threading.Lock()
        # The keys held, least recently touched first.
        self._entries: OrderedDict[_K, _Entry] = OrderedDict()

    @property
    def idle_timeout(self) -> float:
        """Seconds without a request after which a key at rest is dropped."""
        return self._idle_timeout

    @property
    def max_keys(self) -> int | None:
        """The maximum number of keys held, or None for no limit."""
        return self._max_keys

    @property
    def block_duration(self) -> float | None:
        """Seconds for which a rejected key is blocked, or None."""
        return self._block_duration

    def try_acquire(self, key: _K, n: float = 1) -> bool:
        """Take `n` tokens from `key`'s limiter if it has them now.

        Returns False at once while `key` is blocked, and when `key` is new but
        the table is full (see the class).
        """
        with self._lock:
            now = self._monotonic()
            entry = self._touch(key, now)
            if entry is not None:
                return self._try_acquire_entry(entry, n, now)

        limiter = self._factory()
        with self._lock:
            now = self._monotonic()
            entry = self._touch_or_add(key, limiter, now)
            if entry is None:
                self._probe.retry_after(n)  # Raises for an invalid n.
                return False
            return self._try_acquire_entry(entry, n, now)

    def acquire(
        self,
        key: _K,
        n: float = 1,
        timeout: float | None = None,
        *,
        raise_on_timeout: bool = False,
    ) -> bool:
        """Block until `key`'s limiter grants `n` tokens (see `Limiter.acquire`).

        Waiting for one key does not hold up other keys. A request made while
        `key` is blocked is due when the block ends, if the timeout allows. If
        `key` is new and the table is full, the call returns False at once, or
        raises `RateLimitExceeded` if `raise_on_timeout` is true or `timeout`
        is None.
        """
        max_wait = check_timeout("timeout", timeout)
        reservation, retry_after, table_full = self._reserve(key, n, max_wait)
        if reservation is None:
            if table_full:
                message = (
                    f"cannot add a key: all max_keys={self._max_keys!r} keys are "
                    "in use, retry after about "
                    f"{retry_after:.6g} seconds"
                )
            else:
                message = (
                    f"{n!r} tokens cannot be granted within timeout={timeout!r} "
                    f"seconds, retry after {retry_after:.6g} seconds"
                )
            if raise_on_timeout or max_wait is None:
                raise RateLimitExceeded(message, retry_after)
            return False

        wait_for(reservation, self._clock)
        return True

    def retry_after(self, key: _K, n: float = 1) -> float:
        """Return the seconds until `key` could be granted `n` tokens.

        This includes what is left of a block. For a key that is not held, it
        is 0.0 unless the table is full with no key to evict, when it is an
        estimate of when the least recently used keys are at rest. The value
        is a snapshot, and asking does not count as a request for `key`.
        """
        with self._lock:
            now = self._monotonic()
            entry = self._get(key)
            if entry is None:
                wait = self._probe.retry_after(n)
                if self._is_full() and self._find_evictable(now) is None:
                    rest_wait = self._eviction_wait(now)
                    wait = rest_wait if rest_wait > wait else wait
                return wait
            wait = entry.limiter.retry_after(n)
            blocked_for = entry.blocked_until - now
            return blocked_for if blocked_for > wait else wait

    def reserve(
        self, key: _K, n: float = 1, *, timeout: float | None = None
    ) -> Reservation | None:
        """Reserve `n` tokens from `key`'s limiter (see `Limiter.reserve`).

        Returns None while `key` is blocked beyond `timeout`, and when `key` is
        new and the table is full. A reservation made while `key` is blocked
        is due when the block ends, if not later, and its `cancel()` does what
        the key's limiter does.
        """
        max_wait = check_timeout("timeout", timeout)
        reservation, _, _ = self._reserve(key, n, max_wait)
        return reservation

    def __len__(self) -> int:
        """Return the number of keys held, idle ones not yet dropped included."""
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        """Return True if `key` has a limiter in the table now."""
        with self._lock:
            return key in self._entries

    def __repr__(self) -> str:
        return (
            f"KeyedLimiter(keys={len(self._entries)}, "
            f"idle_timeout={self._idle_timeout!r}, max_keys={self._max_keys!r}, "
            f"block_duration={self._block_duration!r})"
        )

    def _reserve(
        self, key: _K, n: float, max_wait: float | None
    ) -> tuple[Reservation | None, float, bool]:
        """Reserve for `key`: the reservation or None, retry_after, table full."""
        with self._lock:
            now = self._monotonic()
            entry = self._touch(key, now)
            if entry is not None:
                reservation, wait = self._reserve_entry(entry, n, max_wait, now)
                return reservation, wait, False

        limiter = self._factory()
        with self._lock:
            now = self._monotonic()
            entry = self._touch_or_add(key, limiter, now)
            if entry is None:
                self._probe.retry_after(n)  # Raises for an invalid n.
                return None, self._eviction_wait(now), True
            reservation, wait = self._reserve_entry(entry, n, max_wait, now)
            return reservation, wait, False

    def _try_acquire_entry(self, entry: _Entry, n: float, now: float) -> bool:
        if now < entry.blocked_until:
            entry.limiter.retry_after(n)  # Raises for an invalid n.
            return False
        if entry.limiter.try_acquire(n):
            return True
        if self._block_duration is not None:
            entry.blocked_until = now + self._block_duration
        return False

    def _reserve_entry(
        self, entry: _Entry, n: float, max_wait: float | None, now: float
    ) -> tuple[Reservation | None, float]:
        limiter = entry.limiter
        blocked_for = entry.blocked_until - now
        if blocked_for > 0 and max_wait is not None and blocked_for > max_wait:
            wait = limiter.retry_after(n)
            return None, blocked_for if blocked_for > wait else wait

        inner = limiter.reserve(n, timeout=max_wait)
        if inner is None:
            if blocked_for <= 0 and self._block_duration is not None:
                entry.blocked_until = now + self._block_duration
                blocked_for = self._block_duration
            wait = limiter.retry_after(n)
            return None, blocked_for if blocked_for > wait else wait

        # On this object's clock, which should be the limiter's too. A block
        # that ends later than the limiter's wait delays the reservation.
        ready_at = max(now + inner.delay(), entry.blocked_until)
        entry.busy_until = max(entry.busy_until, ready_at)
        if blocked_for <= 0:
            return inner, 0.0
        return Reservation(ready_at, self._clock, inner.cancel), 0.0

    def _get(self, key: _K) -> _Entry | None:
        try:
            return self._entries.get(key)
        except TypeError:
            raise TypeError(
                f"key must be hashable, got {type(key).__name__} {key!r}"
            ) from None

    def _touch(self, key: _K, now: float) -> _Entry | None:
        """Mark a request for `key` and return its entry, or None if not held."""
        entry = self._get(key)
        if entry is None:
            return None
        entry.touched = now
        self._entries.move_to_end(key)
        self._expire_idle(now, _EXPIRY_CHECKS)
        return entry

    def _touch_or_add(self, key: _K, limiter: Limiter, now: float) -> _Entry | None:
        """Return `key`'s entry, adding one with `limiter` if needed.

        Returns None if the table is full and no key can be evicted.
        """
        # Another thread may have added the key while the lock was free.
        entry = self._touch(key, now)
        if entry is not None:
            return entry

        self._expire_idle(now, _EXPIRY_CHECKS_ON_INSERT)
        if self._is_full():
            victim = self._find_evictable(now)
            if victim is None:
                return None
            del self._entries[victim]
        entry = _Entry(limiter, now)
        self._entries[key] = entry
        return entry

    def _expire_idle(self, now: float, checks: int) -> None:
        """Drop up to `checks` of the oldest keys if they are idle and at rest.

        A key that has been idle long enough but is not at rest goes to the
        end of the table, to be checked again `idle_timeout` later, so that it
        does not hold up the expiry of the keys behind it.
        """
        entries = self._entries
        for _ in range(checks):
            if not entries:
                return
            key = next(iter(entries))
            entry = entries[key]
            if now - entry.touched < self._idle_timeout:
                return
            if self._is_at_rest(entry, now):
                del entries[key]
            else:
                entry.touched = now
                entries.move_to_end(key)

    def _is_full(self) -> bool:
        return self._max_keys is not None and len(self._entries) >= self._max_keys

    def _is_at_rest(self, entry: _Entry, now: float) -> bool:
        """Return True if dropping `entry` cannot loosen the key's limit."""
        return (
            now >= entry.busy_until
            and now >= entry.blocked_until
            and entry.limiter.retry_after(self._burst) == 0
        )

    def _find_evictable(self, now: float) -> _K | None:
        """Return the least recently used key at rest among the oldest few."""
        for key, entry in itertools.islice(self._entries.items(), _EVICTION_CHECKS):
            if self._is_at_rest(entry, now):
                return key
        return None

    def _eviction_wait(self, now: float) -> float:
        """Estimate the seconds until one of the oldest few keys is at rest."""
        shortest = math.inf
        for entry in itertools.islice(self._entries.values(), _EVICTION_CHECKS):
            wait = max(
                entry.busy_until - now,
                entry.blocked_until - now,
                entry.limiter.retry_after(self._burst),
                0.0,
            )
            shortest = min(shortest, wait)
        return 0.0 if math.isinf(shortest) else shortest


def _check_clock(clock: Clock | None) -> Clock:
    if clock is None:
        return SYSTEM_CLOCK
    if not isinstance(clock, Clock):
        raise TypeError(
            "clock must provide monotonic() and sleep(), "
            f"got {type(clock).__name__} {clock!r}"
        )
    return clock


def _check_factory(factory: object) -> Limiter:
    """Build a limiter from `factory`, checking that each call makes a new one."""
    # A limiter is callable too (as a decorator), so it is rejected by name.
    if isinstance(factory, Limiter):
        raise TypeError(
            "factory must be a callable that returns a new limiter, not a limiter, "
            f"got {factory!r}; pass a function such as lambda: TokenBucket('5/s')"
        )
    if not callable(factory):
        raise TypeError(
            "factory must be a callable that returns a new limiter, "
            f"got {type(factory).__name__} {factory!r}"
        )
    probe = factory()
    if not isinstance(probe, Limiter):
        raise TypeError(
            "factory must return a limiter with try_acquire, acquire, "
            f"retry_after and reserve, got {type(probe).__name__} {probe!r}"
        )
    if factory() is probe:
        raise ValueError(
            f"factory must return a new limiter on each call, got {probe!r} twice, "
            "which would make every key share one limiter"
        )
    return probe


def _check_burst(probe: Limiter, burst: object) -> float:
    """Return the burst by which a limiter like `probe` is known to be at rest."""
    if burst is not None:
        name = "burst"
        value = burst
    else:
        for name in ("capacity", "limit"):
            value = getattr(probe, name, None)
            if value is not None:
                break
        else:
            raise TypeError(
                f"burst must be given for {type(probe).__name__}, which has "
                "neither a capacity nor a limit attribute"
            )
        name = f"{type(probe).__name__}.{name}"
    amount = check_positive(name, value)

    try:
        wait = probe.retry_after(amount)
    except ValueError as exc:
        raise ValueError(
            f"{name}={value!r} is more than a new {probe!r} can ever grant"
        ) from exc
    if wait > 0:
        raise ValueError(
            f"a new {probe!r} cannot grant {name}={value!r} at once, so no key "
            "would ever be at rest and dropped; give a smaller burst"
        )
    return amount
