"""Property and stress tests of WorkerPool: concurrency, completion, order, timeouts.

The properties draw their cases with hypothesis, and every example builds a pool
of its own and shuts it down before the next one starts. They run on real
threads, so each waits for events with a real-time limit of `WAIT` seconds, and
the timeout properties run the pool on a `FakeClock`. The stress tests at the
end run thousands of tasks on the real clock, with the submitting threads
started on a barrier.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait

import pytest
from hypothesis import Phase, assume, example, given, settings
from hypothesis import strategies as st

from syncq.errors import TaskTimeout
from syncq.limiters import TokenBucket
from syncq.pool import WorkerPool
from syncq.pool._future import PoolFuture
from syncq.retry import FixedBackoff, Retry
from syncq.testing import FakeClock

WAIT = 5.0  # real seconds any expected event may take before the test fails
SETTLE = 0.01  # real seconds given to a wrong extra start before checking
# Three attempts with no delay: a task that fails once or twice still succeeds.
RETRY_NOW = Retry(3, backoff=FixedBackoff(0))

# Settings for properties run on threads. A failing example can spend up to
# WAIT real seconds in each wait, so shrinking it could take many minutes. The
# examples are small enough to read unshrunk. pytest-timeout's thread method
# ends the whole run on a hang, since hypothesis would catch the exception of
# the signal method as one more failure and replay the example.
THREADED = settings(deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])

TASK_KINDS = ("quick", "failing", "retried", "cancelled")
PRIORITIES = st.one_of(
    st.integers(min_value=-3, max_value=3),
    st.sampled_from([0.0, -0.0, 0.5, -0.5, math.inf, -math.inf]),
    st.floats(allow_nan=False),
)


def wait_until(predicate: Callable[[], bool], description: str) -> None:
    """Poll `predicate` until it is true, or fail after `WAIT` seconds.

    The AssertionError names the condition by its `description`.
    """
    pause = threading.Event()
    for _ in range(int(WAIT / 0.001)):
        if predicate():
            return
        pause.wait(0.001)
    raise AssertionError(f"timed out waiting until {description}")


def settle() -> None:
    """Give worker threads `SETTLE` real seconds to do the wrong thing."""
    threading.Event().wait(SETTLE)


def submit_kind(
    pool: WorkerPool, fn: Callable[[int, str], int], index: int, kind: str
) -> Future[int]:
    """Submit `fn(index, kind)` as a task of that kind.

    Kinds ``retried`` and ``exhausted`` get `RETRY_NOW`. A task of kind
    ``cancelled`` is cancelled at once, which fails if a worker started it.
    """
    if kind in ("retried", "exhausted"):
        return pool.options(retry=RETRY_NOW).submit(fn, index, kind)
    future = pool.submit(fn, index, kind)
    if kind == "cancelled":
        future.cancel()
    return future


class ConcurrencyProbe:
    """A task that counts the calls running at once, held inside by a gate.

    Each call enters, samples the pool's `running` count, waits until the gate
    opens, then leaves. While the gate is closed, the calls inside are exactly the
    tasks that the pool runs. Calls of kind ``failing`` raise after leaving, and
    calls of kind ``retried`` raise on their first call only.
    """

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self.gate = threading.Event()
        self.inside = 0
        self.peak = 0
        self.running_samples: list[int] = []
        self.calls: collections.Counter[int] = collections.Counter()
        # Guards every counter above.
        self._lock = threading.Lock()

    def __call__(self, index: int, kind: str) -> int:
        running = self.pool.stats().running
        with self._lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
            self.calls[index] += 1
            call = self.calls[index]
            self.running_samples.append(running)
        try:
            if not self.gate.wait(WAIT):
                raise TimeoutError("the test never opened the gate")
        finally:
            with self._lock:
                self.inside -= 1
        if kind == "failing" or (kind == "retried" and call == 1):
            raise ValueError(f"task {index} failed on call {call}")
        return index


class TestConcurrencyBound:
    @pytest.mark.timeout(30, method="thread")
    @settings(THREADED, max_examples=40)
    @given(
        max_workers=st.integers(min_value=1, max_value=8),
        operations=st.lists(
            st.sampled_from([*TASK_KINDS, "pause", "resume"]), max_size=24
        ),
    )
    def test_pool_runs_at_most_max_workers(
        self, max_workers: int, operations: list[str]
    ) -> None:
        pool = WorkerPool(max_workers)
        probe = ConcurrencyProbe(pool)
        sampled: list[int] = []
        futures: list[Future[int]] = []
        try:
            for index, operation in enumerate(operations):
                if operation == "pause":
                    pool.pause()
                elif operation == "resume":
                    pool.resume()
                else:
                    futures.append(submit_kind(pool, probe, index, operation))
                sampled.append(pool.stats().running)
            runnable = sum(not future.cancelled() for future in futures)
            pool.resume()
            # No call leaves while the gate is closed, so the first calls fill
            # every worker, or take every task if there are fewer.
            first_wave = min(max_workers, runnable)
            wait_until(lambda: probe.inside == first_wave, f"{first_wave} calls run")
            settle()
            inside = probe.inside
            running = pool.stats().running
            probe.gate.set()
            joined = pool.join(WAIT)
        finally:
            probe.gate.set()
            # Cancelling what has not started keeps a lost worker from hanging
            # the shutdown.
            pool.shutdown(wait=True, cancel_futures=True)
        # Reading each failure keeps the pool from logging it as unread.
        for future in futures:
            if not future.cancelled():
                future.exception(0)

        assert joined
        assert inside == first_wave
        assert running == first_wave
        assert probe.peak <= max_workers
        assert max([*sampled, *probe.running_samples], default=0) <= max_workers


class CompletionLog:
    """A task of several kinds, and a done-callback that counts completions.

    ``quick`` returns its index, ``failing`` raises on every call,
    ``retried`` raises on its first call only and ``exhausted`` on every call
    (so it fails on all of `RETRY_NOW`'s attempts). ``cancelled`` returns like
    ``quick`` if it runs.
    """

    def __init__(self) -> None:
        self.calls: collections.Counter[int] = collections.Counter()
        self.completions: collections.Counter[int] = collections.Counter()
        # Guards both counters.
        self._lock = threading.Lock()

    def __call__(self, index: int, kind: str) -> int:
        with self._lock:
            self.calls[index] += 1
            call = self.calls[index]
        if kind in ("failing", "exhausted") or (kind == "retried" and call == 1):
            raise ValueError(f"task {index} failed on call {call}")
        return index

    def completed(self, index: int, future: Future[int]) -> None:
        """Count one completion of the future of task `index`."""
        with self._lock:
            self.completions[index] += 1


def outcome(future: Future[int]) -> str:
    """Describe how a done future ended, in the same words as `expected_outcome`."""
    if future.cancelled():
        return "cancelled"
    error = future.exception(0)
    if error is not None:
        return f"{type(error).__name__}: {error}"
    return f"result {future.result(0)}"


def expected_outcome(index: int, kind: str, cancelled: bool) -> tuple[str, int, int]:
    """Return the outcome, the calls and the retries expected of task `index`."""
    if cancelled:
        return "cancelled", 0, 0
    if kind == "failing":
        return f"ValueError: task {index} failed on call 1", 1, 0
    if kind == "retried":
        return f"result {index}", 2, 1
    if kind == "exhausted":
        return f"ValueError: task {index} failed on call 3", 3, 2
    return f"result {index}", 1, 0


class TestCompletion:
    @pytest.mark.timeout(30, method="thread")
    @settings(THREADED, max_examples=40)
    @given(
        max_workers=st.integers(min_value=1, max_value=4),
        operations=st.lists(
            st.sampled_from([*TASK_KINDS, "exhausted", "pause", "resume"]),
            max_size=30,
        ),
    )
    def test_pool_completes_every_future_once(
        self, max_workers: int, operations: list[str]
    ) -> None:
        log = CompletionLog()
        submitted: list[tuple[int, str, Future[int]]] = []
        with WorkerPool(max_workers) as pool:
            for index, operation in enumerate(operations):
                if operation == "pause":
                    pool.pause()
                elif operation == "resume":
                    pool.resume()
                else:
                    future = submit_kind(pool, log, index, operation)
                    future.add_done_callback(functools.partial(log.completed, index))
                    submitted.append((index, operation, future))
            pool.resume()
            joined = pool.join(WAIT)
            stats = pool.stats()
            # join() returns only after every future is set and its callbacks
            # have run, so these need no wait.
            not_done = [index for index, _, future in submitted if not future.done()]
            completions = [log.completions[index] for index, _, _ in submitted]

        expected = [
            expected_outcome(index, kind, future.cancelled())
            for index, kind, future in submitted
        ]
        outcomes = [outcome(future) for _, _, future in submitted]
        calls = [log.calls[index] for index, _, _ in submitted]
        assert joined
        assert not_done == []
        assert completions == [1] * len(submitted)
        assert outcomes == [text for text, _, _ in expected]
        assert calls == [count for _, count, _ in expected]
        assert stats.submitted == len(submitted)
        assert stats.submitted == stats.succeeded + stats.failed + stats.cancelled
        assert stats.succeeded == sum(text.startswith("result") for text in outcomes)
        assert stats.cancelled == outcomes.count("cancelled")
        assert stats.retried == sum(retries for _, _, retries in expected)
        assert stats.queued == 0
        assert stats.running == 0


class TestJoin:
    @pytest.mark.timeout(10)
    def test_join_waits_until_future_is_set(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        release = threading.Event()

        def set_result_late(future: Future[int], result: int) -> None:
            # Keeps the worker waiting between counting the task finished and
            # setting its future, where join() once returned early.
            release.wait(0.2)
            Future.set_result(future, result)

        monkeypatch.setattr(PoolFuture, "set_result", set_result_late)
        with WorkerPool(1) as pool:
            future = pool.submit(abs, -1)
            joined = pool.join(WAIT)
            done = future.done()
            release.set()

        assert joined
        assert done


def sorted_by_priority(priorities: Sequence[float]) -> list[int]:
    """Return the task indexes in (priority, submit order) order."""
    return sorted(range(len(priorities)), key=lambda index: (priorities[index], index))


class Gate:
    """A task that signals its start and blocks until the test opens the gate."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self) -> None:
        self.entered.set()
        if not self.opened.wait(WAIT):
            raise TimeoutError("the test never opened the gate")


def occupy_workers(pool: WorkerPool) -> list[Gate]:
    """Block every worker of `pool` in a gate, and return the gates."""
    gates = [Gate() for _ in range(pool.max_workers)]
    for gate in gates:
        pool.submit(gate)
    for gate in gates:
        assert gate.entered.wait(WAIT)
    return gates


class WaveProbe:
    """A task that records its start and blocks until its wave is released.

    The calls that start form waves of `width`, in the order they start: the
    first `width` calls are wave 0, the next `width` wave 1 and so on. A call
    blocks until the test sets ``waves[n]`` for its wave `n`.
    """

    def __init__(self, width: int, count: int) -> None:
        self.width = width
        self.starts: list[int] = []
        self.waves = [threading.Event() for _ in range(math.ceil(count / width))]
        # Guards starts; notified on every start.
        self._started = threading.Condition()

    def __call__(self, index: int) -> int:
        with self._started:
            position = len(self.starts)
            self.starts.append(index)
            self._started.notify_all()
        if not self.waves[position // self.width].wait(WAIT):
            raise TimeoutError(f"the test never released wave {position // self.width}")
        return index

    def wait_for_starts(self, count: int) -> bool:
        """Block until `count` calls have started; False after `WAIT` seconds."""
        with self._started:
            return self._started.wait_for(lambda: len(self.starts) >= count, WAIT)

    def release_all(self) -> None:
        """Let every call, started or not, run to its end."""
        for wave in self.waves:
            wave.set()


class TestPriorityOrder:
    @pytest.mark.timeout(30, method="thread")
    @settings(THREADED, max_examples=50)
    @given(priorities=st.lists(PRIORITIES, max_size=30))
    # The task put back in front is the first of several of its priority: the
    # default priority, kept in a deque, and another, kept in a heap.
    @example(priorities=[0, 0.0, 2, -0.0])
    @example(priorities=[1, 1, 2, 1.0])
    def test_pool_one_worker_runs_in_priority_order(
        self, priorities: list[float]
    ) -> None:
        order: list[int] = []
        gate = Gate()
        with WorkerPool(1) as pool:
            finished = pool.submit(gate)
            assert gate.entered.wait(WAIT)
            pool.pause()
            for index, priority in enumerate(priorities):
                pool.options(priority=priority).submit(order.append, index)
            gate.opened.set()
            finished.result(WAIT)
            # Meanwhile the worker takes the first task, finds the pool paused
            # and puts the task back in front of the others.
            settle()
            pool.resume()

        assert order == sorted_by_priority(priorities)

    @pytest.mark.timeout(30, method="thread")
    @settings(THREADED, max_examples=30)
    @given(
        max_workers=st.integers(min_value=2, max_value=6),
        priorities=st.lists(PRIORITIES, max_size=40),
    )
    def test_pool_start_runs_at_most_workers_ahead(
        self, max_workers: int, priorities: list[float]
    ) -> None:
        # With every worker busy, the queue takes all tasks before any starts,
        # so workers take them in (priority, submit order). Between taking a
        # task and calling it, a worker can be overtaken by the other workers,
        # but each of them has at most one task taken and not yet called.
        # So the task of rank r is called after at least r - (max_workers - 1)
        # of the tasks ranked before it: no call starts more than
        # max_workers - 1 places ahead of its rank. A call may start any
        # number of places behind it, since its worker may be slow to call it.
        starts: list[int] = []
        with WorkerPool(max_workers) as pool:
            gates = occupy_workers(pool)
            for index, priority in enumerate(priorities):
                pool.options(priority=priority).submit(starts.append, index)
            for gate in gates:
                gate.opened.set()

        rank = {
            index: rank for rank, index in enumerate(sorted_by_priority(priorities))
        }
        too_early = [
            (index, rank[index], position)
            for position, index in enumerate(starts)
            if rank[index] - position > max_workers - 1
        ]
        assert sorted(starts) == list(range(len(priorities)))
        assert too_early == []

    @pytest.mark.timeout(30, method="thread")
    @settings(THREADED, max_examples=30)
    @given(
        max_workers=st.integers(min_value=2, max_value=6),
        priorities=st.lists(PRIORITIES, min_size=1, max_size=40),
    )
    def test_pool_waves_take_next_ranks(
        self, max_workers: int, priorities: list[float]
    ) -> None:
        # When each call blocks until its whole wave has started, no worker
        # takes a second task before the wave is released. So the calls of
        # wave n are exactly the tasks ranked n * max_workers up to
        # (n + 1) * max_workers, though in any order within the wave.
        probe = WaveProbe(max_workers, len(priorities))
        waves: list[set[int]] = []
        with WorkerPool(max_workers) as pool:
            try:
                gates = occupy_workers(pool)
                for index, priority in enumerate(priorities):
                    pool.options(priority=priority).submit(probe, index)
                for gate in gates:
                    gate.opened.set()
                for wave, release in enumerate(probe.waves):
                    end = min(len(priorities), (wave + 1) * max_workers)
                    if not probe.wait_for_starts(end):
                        break
                    waves.append(set(probe.starts[wave * max_workers : end]))
                    release.set()
            finally:
                probe.release_all()

        ranked = sorted_by_priority(priorities)
        expected = [
            set(ranked[start : start + max_workers])
            for start in range(0, len(ranked), max_workers)
        ]
        assert waves == expected


@dataclasses.dataclass
class TimedRun:
    """One task of the timeout simulation, in whole fake seconds."""

    run: int
    """Seconds the task's call sleeps on the fake clock."""
    timeout: float | None
    """The task's own timeout option: None for the pool's, math.inf for none."""
    effective: float
    """The timeout that applies, math.inf for none."""
    started: float = math.nan
    """The fake time the call started, once it has."""

    @property
    def times_out(self) -> bool:
        """Whether the call runs past its timeout."""
        return self.run > self.effective


def napper(clock: FakeClock) -> Callable[[int, int], int]:
    """Return a task that sleeps `seconds` on `clock` and returns `index`."""

    def nap(index: int, seconds: int) -> int:
        clock.sleep(seconds)
        return index

    return nap


def shut_down_on_fake_clock(pool: WorkerPool, clock: FakeClock) -> None:
    """Cancel what has not started, and advance `clock` until the rest ends."""
    pool.shutdown(wait=False, cancel_futures=True)
    # A worker may have taken a task just before the cancel, and its call then
    # sleeps from a later clock reading, so advance until nothing is left.
    for _ in range(int(WAIT / 0.05)):
        clock.advance(100)
        if pool.join(0.05):
            break
    pool.shutdown(wait=True)


class TimeoutSimulation:
    """Drive a pool on a fake clock from event to event, as a model predicts.

    In the model, the pool starts queued tasks in submit order as workers free
    up, and a call that ends before its deadline keeps its result. A call still
    running at its deadline times out and frees its worker at once. It runs on,
    abandoned, until its sleep ends. Each step advances the clock to the next
    event of the model, waits in real time until the pool shows that event, and
    raises AssertionError at the first difference from the model.
    """

    def __init__(self, pool: WorkerPool, clock: FakeClock, runs: list[TimedRun]):
        self.pool = pool
        self.clock = clock
        self.runs = runs
        self.futures: list[Future[int]] = []
        self.queued = collections.deque(range(len(runs)))
        self.live: set[int] = set()
        self.abandoned: set[int] = set()
        self.timed_out = 0
        self.running_samples: list[int] = []

    def run(self) -> None:
        """Submit every task, then step through the events until none is left."""
        nap = napper(self.clock)
        for index, timed in enumerate(self.runs):
            options = self.pool.options(timeout=timed.timeout)
            self.futures.append(options.submit(nap, index, timed.run))
        self._start_free_workers()
        while self.live or self.abandoned:
            self._step()

    def _start_free_workers(self) -> None:
        now = self.clock.monotonic()
        while self.queued and len(self.live) < self.pool.max_workers:
            index = self.queued.popleft()
            self.runs[index].started = now
            self.live.add(index)
        # Every call sleeps on the clock before it moves again.
        self.clock.wait_for_sleepers(len(self.live) + len(self.abandoned), WAIT)

    def _step(self) -> None:
        ends = {
            index: self.runs[index].started + self.runs[index].run
            for index in self.live | self.abandoned
        }
        deadlines = {
            index: self.runs[index].started + self.runs[index].effective
            for index in self.live
        }
        now = min([*ends.values(), *deadlines.values()])
        self.clock.advance(now - self.clock.monotonic())

        for index in sorted(self.live):
            if ends[index] == now:
                self.live.discard(index)
                self._expect(index, f"result {index}")
            elif deadlines[index] == now:
                self.live.discard(index)
                self.abandoned.add(index)
                self.timed_out += 1
                self._expect(index, "TaskTimeout")
        for index in sorted(self.abandoned):
            if ends[index] == now:
                self.abandoned.discard(index)
        wait_until(
            lambda: self.pool.stats().abandoned == len(self.abandoned),
            f"{len(self.abandoned)} attempts are abandoned at {now}",
        )
        stats = self.pool.stats()
        if stats.timed_out != self.timed_out:
            raise AssertionError(
                f"timed_out is {stats.timed_out} at {now}, expected {self.timed_out}"
            )
        self.running_samples.append(stats.running)
        self._start_free_workers()

    def _expect(self, index: int, expected: str) -> None:
        now = self.clock.monotonic()
        _, not_done = wait([self.futures[index]], WAIT)
        if not_done:
            raise AssertionError(f"task {index} is not done at {now}")
        error = self.futures[index].exception(0)
        if error is None:
            got = f"result {self.futures[index].result(0)}"
        elif isinstance(error, TaskTimeout):
            got = "TaskTimeout"
        else:
            got = repr(error)
        if got != expected:
            raise AssertionError(
                f"task {index} ended with {got} at {now}, not {expected}"
            )


TIMEOUTS = st.one_of(st.none(), st.integers(min_value=1, max_value=8))


class TestTimeouts:
    @pytest.mark.timeout(40, method="thread")
    @settings(THREADED, max_examples=30)
    @given(
        max_workers=st.integers(min_value=1, max_value=4),
        pool_timeout=TIMEOUTS,
        tasks=st.lists(
            st.tuples(
                st.integers(min_value=1, max_value=8),
                st.one_of(TIMEOUTS, st.just(math.inf)),
            ),
            min_size=1,
            max_size=6,
        ),
    )
    def test_pool_times_out_exactly_late_calls(
        self,
        max_workers: int,
        pool_timeout: int | None,
        tasks: list[tuple[int, float | None]],
    ) -> None:
        runs = []
        for run, timeout in tasks:
            effective = pool_timeout if timeout is None else timeout
            runs.append(
                TimedRun(run, timeout, math.inf if effective is None else effective)
            )
        # A call whose sleep ends just as its deadline passes may go either way.
        assume(all(timed.run != timed.effective for timed in runs))
        clock = FakeClock()
        pool = WorkerPool(max_workers, task_timeout=pool_timeout, clock=clock)
        simulation = TimeoutSimulation(pool, clock, runs)
        try:
            simulation.run()
            joined = pool.join(WAIT)
        finally:
            shut_down_on_fake_clock(pool, clock)
        stats = pool.stats()

        late = sum(timed.times_out for timed in runs)
        assert joined
        assert max(simulation.running_samples) <= max_workers
        assert stats.timed_out == late
        assert stats.failed == late
        assert stats.succeeded == len(runs) - late
        assert stats.abandoned == 0


class StressWork:
    """A task that fails once for a chosen share of tasks, and counts its calls.

    Task ``(submitter, index)`` returns ``submitter * 1000 + index``. When
    `fails_once` is true for it, its first call raises OSError.
    """

    def __init__(self, fails_once: Callable[[int, int], bool]) -> None:
        self.fails_once = fails_once
        self.calls: collections.Counter[tuple[int, int]] = collections.Counter()
        # Calls made after the task had already succeeded once.
        self.after_success: list[tuple[int, int]] = []
        self._succeeded: set[tuple[int, int]] = set()
        # Guards calls, after_success and _succeeded.
        self._lock = threading.Lock()

    def __call__(self, submitter: int, index: int) -> int:
        task = (submitter, index)
        with self._lock:
            self.calls[task] += 1
            call = self.calls[task]
            if task in self._succeeded:
                self.after_success.append(task)
        if call == 1 and self.fails_once(submitter, index):
            raise OSError(f"task {task} fails once")
        with self._lock:
            self._succeeded.add(task)
        return submitter * 1000 + index


def fails_once(submitter: int, index: int) -> bool:
    """Choose about one task in seven, spread over every submitter."""
    return (submitter * 31 + index) % 7 == 0


class StressRun:
    """Submit `tasks_each` tasks from each of `submitters` threads into one pool.

    The submitting threads and any `extra` threads start together on a
    barrier. Errors raised in any of them are kept in `errors`.
    """

    def __init__(self, pool: WorkerPool, submitters: int, tasks_each: int) -> None:
        self.pool = pool
        self.work = StressWork(fails_once)
        self.tasks_each = tasks_each
        self.futures: list[list[Future[int]]] = [[] for _ in range(submitters)]
        self.errors: list[BaseException] = []
        self.submitters = [
            threading.Thread(target=self._submit_all, args=(n,), name=f"submitter-{n}")
            for n in range(submitters)
        ]
        self._barrier: threading.Barrier | None = None

    def start(self, extra: Sequence[threading.Thread] = ()) -> None:
        """Start the submitters and `extra`, which must call `wait_for_start`."""
        self._barrier = threading.Barrier(len(self.submitters) + len(extra) + 1)
        for thread in [*self.submitters, *extra]:
            thread.start()
        self.wait_for_start()

    def wait_for_start(self) -> None:
        """Block until every thread of the run has reached the barrier."""
        assert self._barrier is not None
        self._barrier.wait(WAIT)

    def join_submitters(self) -> None:
        """Join the submitting threads with a timeout and check that they ended."""
        for thread in self.submitters:
            thread.join(WAIT)
        assert not any(thread.is_alive() for thread in self.submitters)

    def expected_results(self) -> list[list[int]]:
        """Return what the futures of each submitter should contain, in order."""
        return [
            [submitter * 1000 + index for index in range(self.tasks_each)]
            for submitter in range(len(self.submitters))
        ]

    def expected_calls(self) -> collections.Counter[tuple[int, int]]:
        """Return the calls each task should get: 2 if it fails once, else 1."""
        return collections.Counter(
            {
                (submitter, index): 2 if fails_once(submitter, index) else 1
                for submitter in range(len(self.submitters))
                for index in range(self.tasks_each)
            }
        )

    def results(self) -> list[list[int]]:
        """Return the result of every future, waiting at most `WAIT` for each."""
        return [[future.result(WAIT) for future in futures] for futures in self.futures]

    def _submit_all(self, submitter: int) -> None:
        try:
            self.wait_for_start()
            for index in range(self.tasks_each):
                future = self.pool.submit(self.work, submitter, index)
                self.futures[submitter].append(future)
        except BaseException as exc:
            self.errors.append(exc)


class PauseToggler:
    """Two threads that disturb a `StressRun`: one pauses, one joins the pool.

    The toggler pauses and resumes the pool in a loop until `joined` is set. The
    joiner waits for `submitted`, calls ``join(WAIT)`` once, keeps its return
    value in `join_results` and sets `joined`. Both start on the run's barrier
    and keep their errors in the run's `errors`.
    """

    def __init__(self, run: StressRun) -> None:
        self.run = run
        self.submitted = threading.Event()
        self.joined = threading.Event()
        self.join_results: list[bool] = []
        self.pauses = 0
        self.threads = [
            threading.Thread(target=self._toggle, name="toggler"),
            threading.Thread(target=self._join_when_submitted, name="joiner"),
        ]

    def join_threads(self) -> bool:
        """Join both threads with a timeout, and return whether both ended."""
        for thread in self.threads:
            thread.join(2 * WAIT)
        return not any(thread.is_alive() for thread in self.threads)

    def _toggle(self) -> None:
        pause = threading.Event()
        try:
            self.run.wait_for_start()
            while not self.joined.is_set():
                self.run.pool.pause()
                self.pauses += 1
                pause.wait(0.0005)
                self.run.pool.resume()
                pause.wait(0.001)
        except BaseException as exc:
            self.run.errors.append(exc)

    def _join_when_submitted(self) -> None:
        try:
            self.run.wait_for_start()
            if self.submitted.wait(WAIT):
                self.join_results.append(self.run.pool.join(WAIT))
        except BaseException as exc:
            self.run.errors.append(exc)
        finally:
            self.joined.set()


def stress_pool() -> WorkerPool:
    """Return the pool of the stress tests: bounded, rate limited, retrying."""
    # 50,000 tokens a second is fast enough for the whole run to take well
    # under a second of tokens, yet a burst of 50 makes workers wait for some.
    bucket = TokenBucket(50_000, capacity=50)
    return WorkerPool(8, max_pending=64, rate_limit=bucket, retry=RETRY_NOW)


@pytest.mark.slow
class TestStress:
    SUBMITTERS = 16
    TASKS_EACH = 500

    @pytest.mark.timeout(30)
    def test_stress_loses_and_repeats_no_task(self) -> None:
        pool = stress_pool()
        run = StressRun(pool, self.SUBMITTERS, self.TASKS_EACH)
        try:
            run.start()
            run.join_submitters()
            joined = pool.join(WAIT)
            stats = pool.stats()
            results = run.results()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

        expected_calls = run.expected_calls()
        total = self.SUBMITTERS * self.TASKS_EACH
        assert run.errors == []
        assert joined
        assert results == run.expected_results()
        assert run.work.calls == expected_calls
        assert run.work.after_success == []
        assert stats.submitted == total
        assert stats.succeeded == total
        assert stats.failed == 0
        assert stats.cancelled == 0
        assert stats.retried == sum(count == 2 for count in expected_calls.values())
        assert stats.queued == 0
        assert stats.running == 0

    @pytest.mark.timeout(30)
    def test_stress_survives_pause_toggles_and_join(self) -> None:
        pool = stress_pool()
        run = StressRun(pool, self.SUBMITTERS, self.TASKS_EACH)
        toggler = PauseToggler(run)
        try:
            run.start(toggler.threads)
            run.join_submitters()
            toggler.submitted.set()
            ended = toggler.join_threads()
            stats = pool.stats()
            results = run.results()
            paused_at_end = pool.paused
        finally:
            toggler.joined.set()
            pool.shutdown(wait=True, cancel_futures=True)

        total = self.SUBMITTERS * self.TASKS_EACH
        assert ended
        assert run.errors == []
        assert toggler.join_results == [True]
        assert toggler.pauses > 0
        assert not paused_at_end
        assert results == run.expected_results()
        assert run.work.calls == run.expected_calls()
        assert run.work.after_success == []
        assert stats.submitted == total
        assert stats.succeeded == total
        assert stats.queued == 0
        assert stats.running == 0
