"""Close a pool gracefully when the process receives SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import queue
import signal
import threading
from collections.abc import Iterable
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, Union

from syncq._checks import check_timeout
from syncq.pool._executor import WorkerPool

if TYPE_CHECKING:
    from typing import TypeAlias

    Handler: TypeAlias = Union[
        Callable[[int, Union[FrameType, None]], Any], int, signal.Handlers, None
    ]

__all__ = ["DEFAULT_SIGNALS", "SignalCloser", "SignalExit", "close_on_signals"]

logger = logging.getLogger(__name__)

DEFAULT_SIGNALS = (signal.SIGTERM, signal.SIGINT)
"""The signals that `close_on_signals` handles by default."""

# Shells report a process ended by signal N with the status 128 + N.
EXIT_STATUS_BASE = 128

# Seconds between wake-ups of the main thread while the pool drains. A signal
# that the OS delivers to a worker thread does not interrupt the main thread's
# wait, and its Python handler runs only once the main thread runs again.
SIGNAL_POLL_INTERVAL = 0.1

_UNCATCHABLE = frozenset(
    getattr(signal, name) for name in ("SIGKILL", "SIGSTOP") if hasattr(signal, name)
)

# Put in the event queue by the thread that closes the pool, once close() returns.
_CLOSED = object()


class SignalExit(SystemExit):
    """Raised in the main thread when a signal ends a `close_on_signals` block.

    It derives from `SystemExit`, so an uncaught `SignalExit` ends the process
    without a traceback and with the status that shells use for a signal, 128
    plus the signal number. And as with `KeyboardInterrupt`, ``except
    Exception`` does not catch it.

    NOTE: unlike the other public syncq exceptions it does not derive from
    `SyncqError`, because `SyncqError` is an `Exception`.

    Attributes:
        signum: The signal received.
        code: The exit status, ``128 + signum``.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signal.Signals(signum)
        super().__init__(EXIT_STATUS_BASE + self.signum)

    def __str__(self) -> str:
        return f"received {self.signum.name}, exit status {self.code}"

    def __reduce__(self) -> tuple[type[SignalExit], tuple[int]]:
        return (type(self), (int(self.signum),))


class SignalCloser:
    """Context manager that closes a pool gracefully when a signal arrives.

    Build it with `close_on_signals`, which documents the behaviour. Entering
    it installs the signal handlers and returns it, and leaving it restores the
    previous handlers. An instance serves one ``with`` block.
    """

    def __init__(
        self,
        pool: WorkerPool,
        timeout: float | None,
        signals: tuple[signal.Signals, ...],
    ) -> None:
        self._pool = pool
        self._timeout = timeout
        self._signals = signals
        self._previous: dict[signal.Signals, Handler] = {}
        # The handler raises only while this is true, that is, while the body
        # of the block runs and no signal has arrived yet. Otherwise it puts the
        # signal number in _events. Only the main thread reads or writes this
        # field, _entered and _received, so they need no lock.
        self._interrupt = False
        self._entered = False
        self._received: signal.Signals | None = None
        # SimpleQueue.put is reentrant, so the handler may call it even when it
        # interrupts the main thread inside a put or get on the same queue.
        self._events: queue.SimpleQueue[object] = queue.SimpleQueue()
        # Set by the thread that runs close(), and read after it is joined.
        self._close_error: BaseException | None = None

    @property
    def received(self) -> signal.Signals | None:
        """The first signal received inside the block, or None."""
        return self._received

    def __enter__(self) -> SignalCloser:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "close_on_signals must be entered in the main thread, because "
                "Python runs signal handlers only there; it was entered in "
                f"thread {threading.current_thread().name!r}"
            )
        if self._entered:
            raise RuntimeError(
                "this close_on_signals object was entered already; "
                "call close_on_signals() again for each with block"
            )
        self._entered = True
        self._install_handlers()

        early = self._take_event()
        if early is not None:
            # A signal arrived while the handlers were being installed. The
            # body has not started, so close the pool here and raise at once.
            self._received = early
            try:
                self._close_pool(early)
                self._ignore_late_events(early)
            finally:
                self._restore_handlers()
            raise SignalExit(early)
        # NOTE: a signal handled between the check above and this line waits in
        # _events until the block ends, and then goes to the previous handler.
        self._interrupt = True
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # NOTE: a signal handled before this first line runs raises SignalExit
        # out of __exit__ and leaves the handlers installed. An exception from
        # a signal handler may be raised after any bytecode instruction:
        # https://docs.python.org/3/library/signal.html#note-on-signal-handlers-and-exceptions
        self._interrupt = False
        try:
            signum = self._received
            if signum is None and isinstance(exc, SignalExit):
                # Raised by a nested block for another pool, or by hand.
                signum = exc.signum
            if signum is not None:
                self._close_pool(signum)
                self._ignore_late_events(signum)
        finally:
            self._restore_handlers()
        if signum is None:
            self._forward_late_events()

    def _install_handlers(self) -> None:
        try:
            for signum in self._signals:
                self._previous[signum] = signal.signal(signum, self._handle)
        except BaseException:
            self._restore_handlers()
            raise

    def _restore_handlers(self) -> None:
        while self._previous:
            signum, handler = self._previous.popitem()
            # signal() returns None for a handler that was not installed from
            # Python. The default action is the closest one to put back.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread between two bytecodes of whatever it was
        # doing, which may hold a lock of the pool or of logging. So it only
        # raises or queues, and never logs or calls the pool.
        if self._interrupt:
            self._interrupt = False
            self._received = signal.Signals(signum)
            raise SignalExit(signum)
        self._events.put(signum)

    def _take_event(self) -> signal.Signals | None:
        try:
            event = self._events.get_nowait()
        except queue.Empty:
            return None
        if not isinstance(event, int):
            raise RuntimeError(f"unexpected event {event!r} in the signal queue")
        return signal.Signals(event)

    def _close_pool(self, signum: signal.Signals) -> None:
        """Drain the pool for the timeout, cancel the rest, and wait for it to end.

        A second signal cancels the queued tasks at once. Later signals are
        logged and ignored, since a running task cannot be stopped.
        """
        pool = self._pool
        cancelled_before = pool.stats().cancelled
        logger.info(
            "received %s; pool %r stops taking tasks and drains %s",
            signum.name,
            pool,
            _describe_timeout(self._timeout),
        )
        closer = threading.Thread(
            target=self._close_in_thread, name="syncq-signals-close", daemon=True
        )
        closer.start()

        cancelling = False
        while True:
            try:
                event = self._events.get(timeout=SIGNAL_POLL_INTERVAL)
            except queue.Empty:
                continue
            if event is _CLOSED:
                break
            if not isinstance(event, int):
                raise RuntimeError(f"unexpected event {event!r} in the signal queue")
            name = signal.Signals(event).name
            if not cancelling:
                cancelling = True
                logger.warning(
                    "received %s during the drain; pool %r cancels its queued "
                    "tasks now and waits only for the running ones",
                    name,
                    pool,
                )
                pool.shutdown(wait=False, cancel_futures=True)
            else:
                logger.warning(
                    "received %s; ignored, since pool %r waits for %d running "
                    "tasks that cannot be stopped",
                    name,
                    pool,
                    pool.stats().running,
                )
        closer.join()

        if self._close_error is not None:
            raise self._close_error
        cancelled = pool.stats().cancelled - cancelled_before
        logger.info(
            "pool %r closed after %s; %d tasks were cancelled before they started",
            pool,
            signum.name,
            cancelled,
        )

    def _close_in_thread(self) -> None:
        # close() blocks until the running tasks end. It runs here so that the
        # main thread stays free to receive a second signal in the meantime.
        try:
            self._pool.close(self._timeout)
        except BaseException as exc:
            self._close_error = exc
        finally:
            self._events.put(_CLOSED)

    def _ignore_late_events(self, signum: signal.Signals) -> None:
        """Drop the signals handled after the pool closed, with a log entry."""
        while True:
            late = self._take_event()
            if late is None:
                return
            logger.warning(
                "received %s after pool %r closed; ignored, since the process "
                "is already leaving because of %s",
                late.name,
                self._pool,
                signum.name,
            )

    def _forward_late_events(self) -> None:
        """Deliver again the signals handled while the block was ending normally.

        They arrived as the block ended, so the handlers that were in place
        before it, now restored, handle them.
        """
        while True:
            late = self._take_event()
            if late is None:
                return
            signal.raise_signal(late)


def close_on_signals(
    pool: WorkerPool,
    *,
    timeout: float | None = 30.0,
    signals: Iterable[int] = DEFAULT_SIGNALS,
) -> SignalCloser:
    """Return a context manager that turns a signal into a graceful close of `pool`.

    Inside the block, the first of `signals` raises `SignalExit` in the main
    thread, wherever it is: blocked in ``future.result()`` or in a `submit`
    waiting for a pending slot, for instance. Raising is the only way to
    interrupt such a wait. On leaving the block, the pool stops taking tasks
    and drains for at most `timeout` seconds. Then it cancels the tasks that
    have not started, which stay pending in the pool's journal if it has one,
    and waits for the running tasks to end. The exception then propagates, so
    a process that does not catch it exits with status 128 plus the signal
    number::

        with WorkerPool(8, journal="batch.db") as pool, close_on_signals(pool):
            for future in [pool.submit(fetch, url) for url in urls]:
                future.result()

    A second signal during the drain cancels the queued tasks at once. Later
    signals are logged and ignored, because a running task cannot be stopped;
    SIGKILL ends the process without waiting. The previous handlers are
    restored when the block ends, however it ends.

    Enter it inside the pool's own ``with`` block, as above. The pool's
    ``__exit__`` waits for every queued task, so outside it the timeout would
    come too late.

    If code in the block catches the `SignalExit`, the pool still closes when
    the block ends, and the block then ends normally. A `SignalExit` raised by
    a nested `close_on_signals` for another pool also closes this pool. When no
    signal arrives, leaving the block does nothing to the pool. A signal that
    arrives while a block without a signal is ending goes to the previous
    handler once it is restored.

    NOTE: a signal that lands inside a `submit` between two of the pool's
    counter updates may leave the pool counting a task that never runs. The
    drain then lasts the whole `timeout`. A signal that the OS delivers to
    another thread interrupts a blocked main thread only once that thread wakes
    up; Linux delivers a signal sent to the process to the main thread when it
    does not block that signal.

    Args:
        pool: The pool to close.
        timeout: The maximum number of real seconds to wait for queued tasks
            before they are cancelled. Zero cancels them at once, and None
            waits for all of them.
        signals: The signal numbers to handle, such as ``signal.SIGTERM``.
            SIGINT among them replaces `KeyboardInterrupt` by `SignalExit`.

    Returns:
        A `SignalCloser`; its `received` property contains the signal that
        ended the block, if any.

    Raises:
        TypeError: `pool` is not a `WorkerPool`, or an argument has the wrong
            type.
        ValueError: `timeout` is negative or NaN, or `signals` is empty, names
            an unknown signal, or names SIGKILL or SIGSTOP, which cannot be
            caught.
        RuntimeError: On entering, the calling thread is not the main thread,
            or the returned object was entered already.
    """
    if not isinstance(pool, WorkerPool):
        raise TypeError(
            f"pool must be a WorkerPool, got {type(pool).__name__} {pool!r}"
        )
    return SignalCloser(
        pool, check_timeout("timeout", timeout), _check_signals(signals)
    )


def _check_signals(signals: object) -> tuple[signal.Signals, ...]:
    """Return `signals` as a tuple of catchable signals without duplicates."""
    if isinstance(signals, (str, bytes)) or not isinstance(signals, Iterable):
        raise TypeError(
            "signals must be an iterable of signal numbers, such as "
            f"(signal.SIGTERM,), got {type(signals).__name__} {signals!r}"
        )
    checked: list[signal.Signals] = []
    for value in signals:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                "signals must contain signal numbers such as signal.SIGTERM, "
                f"got {type(value).__name__} {value!r}"
            )
        try:
            signum = signal.Signals(value)
        except ValueError:
            raise ValueError(
                f"signals contains {value!r}, which is not a signal on this platform"
            ) from None
        if signum in _UNCATCHABLE:
            raise ValueError(
                f"signals contains {signum.name}, which a process cannot catch"
            )
        if signum not in checked:
            checked.append(signum)
    if not checked:
        raise ValueError(f"signals must contain at least one signal, got {signals!r}")
    return tuple(checked)


def _describe_timeout(timeout: float | None) -> str:
    if timeout is None:
        return "until its queue is empty"
    return f"for up to {timeout:g} s"
