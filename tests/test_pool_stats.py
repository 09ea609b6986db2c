"""Tests for the recorder of the pool's throughput, error rate and run times."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncq.pool import WorkerPool
from syncq.pool._stats import AttemptRecorder, AttemptSample, RunTimes
from syncq.retry import FixedBackoff, Retry
from syncq.testing import FakeClock

_RUN_SECONDS = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)


def record_times(recorder: AttemptRecorder, *times: float) -> None:
    """Record an attempt that finished at each of `times` after running 0 s."""
    for now in times:
        recorder.record(0.0, False, now)


def nearest_rank(values: list[float], percent: int) -> float:
    """Return the smallest value that at least `percent`% of `values` do not exceed."""
    for candidate in sorted(values):
        not_above = sum(1 for value in values if value <= candidate)
        if not_above * 100 >= percent * len(values):
            return candidate
    raise AssertionError("no value reaches the rank")


def run_times_of(recorder: AttemptRecorder, now: float = 0.0) -> RunTimes:
    """Return the recorder's run times at `now`, failing if there are none."""
    run_times = recorder.sample(now).run_times()
    if run_times is None:
        raise AssertionError("expected run times, got None")
    return run_times


class TestAttemptRecorderArguments:
    def test_recorder_defaults_to_60_s_and_1024_samples(self) -> None:
        recorder = AttemptRecorder()

        assert recorder.window == 60
        assert recorder.samples == 1024

    @pytest.mark.parametrize("name", ["window", "samples"])
    @pytest.mark.parametrize("value", [0, -1, -60])
    def test_recorder_rejects_sizes_below_one(self, name: str, value: int) -> None:
        with pytest.raises(
            ValueError, match=rf"{name} must be an int >= 1, got {value}"
        ):
            AttemptRecorder(**{name: value})

    @pytest.mark.parametrize("name", ["window", "samples"])
    @pytest.mark.parametrize(
        "value", [True, False, 60.0, 1.5, math.nan, math.inf, "60", None]
    )
    def test_recorder_rejects_sizes_of_wrong_type(
        self, name: str, value: object
    ) -> None:
        with pytest.raises(TypeError, match=rf"{name} must be an int >= 1, got"):
            AttemptRecorder(**{name: value})  # type: ignore[arg-type]

    def test_recorder_accepts_sizes_of_one(self) -> None:
        recorder = AttemptRecorder(window=1, samples=1)

        assert recorder.window == 1
        assert recorder.samples == 1

    def test_recorder_repr_names_its_sizes(self) -> None:
        recorder = AttemptRecorder(window=10, samples=32)

        assert repr(recorder) == "AttemptRecorder(window=10, samples=32)"


class TestAttemptRecorderThroughput:
    def test_throughput_is_zero_before_any_record(self) -> None:
        sample = AttemptRecorder().sample(100.0)

        assert sample.finished == 0
        assert sample.throughput == 0.0

    def test_throughput_divides_by_time_since_first_start(self) -> None:
        recorder = AttemptRecorder()
        recorder.record(2.0, False, 10.0)
        recorder.record(1.0, False, 11.0)
        recorder.record(0.5, False, 12.0)

        sample = recorder.sample(12.0)

        assert sample.seconds == 4.0
        assert sample.throughput == 0.75

    def test_throughput_divides_by_time_since_earliest_start(self) -> None:
        recorder = AttemptRecorder()
        recorder.record(0.5, False, 10.0)
        recorder.record(5.0, False, 11.0)

        sample = recorder.sample(12.0)

        assert sample.seconds == 6.0
        assert sample.throughput == 2 / 6

    def test_throughput_divides_by_at_least_one_second(self) -> None:
        recorder = AttemptRecorder()
        for _ in range(3):
            recorder.record(0.01, False, 5.0)

        sample = recorder.sample(5.05)

        assert sample.seconds == 1.0
        assert sample.throughput == 3.0

    def test_throughput_divides_by_window_once_full(self) -> None:
        recorder = AttemptRecorder(window=60)
        record_times(recorder, 0.0, *range(41, 101))

        sample = recorder.sample(100.25)

        assert sample.finished == 60
        assert sample.seconds == 60.25
        assert sample.throughput == pytest.approx(60 / 60.25)

    def test_throughput_adds_records_of_one_second(self) -> None:
        recorder = AttemptRecorder()
        record_times(recorder, 3.1, 3.3, 3.5, 3.7, 3.9)

        sample = recorder.sample(3.9)

        assert sample.finished == 5

    def test_throughput_reads_a_fake_clock(self, clock: FakeClock) -> None:
        recorder = AttemptRecorder()
        for _ in range(20):
            started = clock.monotonic()
            clock.advance(0.25)
            recorder.record(clock.monotonic() - started, False, clock.monotonic())

        sample = recorder.sample(clock.monotonic())

        assert sample.seconds == 5.0
        assert sample.throughput == 4.0


class TestAttemptRecorderWindow:
    def test_window_drops_record_61_seconds_old(self) -> None:
        recorder = AttemptRecorder(window=60)
        record_times(recorder, 0.0)

        sample = recorder.sample(61.0)

        assert sample.finished == 0
        assert sample.throughput == 0.0

    def test_window_keeps_record_60_seconds_old(self) -> None:
        recorder = AttemptRecorder(window=60)
        record_times(recorder, 0.5)

        sample = recorder.sample(60.5)

        assert sample.finished == 1

    def test_window_keeps_whole_oldest_second(self) -> None:
        recorder = AttemptRecorder(window=60)
        record_times(recorder, 0.1)

        sample = recorder.sample(60.9)

        assert sample.finished == 1

    def test_window_drops_second_before_oldest(self) -> None:
        recorder = AttemptRecorder(window=60)
        record_times(recorder, 0.9)

        sample = recorder.sample(61.0)

        assert sample.finished == 0

    def test_window_reuses_slot_after_wrap_around(self) -> None:
        recorder = AttemptRecorder(window=2)
        recorder.record(0.0, True, 0.5)
        recorder.record(0.0, False, 3.5)

        sample = recorder.sample(3.5)

        assert sample.finished == 1
        assert sample.failed == 0

    def test_window_empties_after_idle_window(self) -> None:
        recorder = AttemptRecorder(window=10)
        for second in range(50):
            recorder.record(0.1, second % 2 == 0, second + 0.5)

        sample = recorder.sample(60.0)

        assert sample.finished == 0
        assert sample.throughput == 0.0
        assert sample.error_rate == 0.0

    def test_window_floors_negative_clock_readings(self) -> None:
        recorder = AttemptRecorder(window=60)
        record_times(recorder, -0.5)

        in_window = recorder.sample(59.9)
        past_window = recorder.sample(60.0)

        assert in_window.finished == 1
        assert past_window.finished == 0

    @settings(max_examples=150, deadline=None)
    @given(
        window=st.integers(min_value=1, max_value=6),
        steps=st.lists(
            st.tuples(st.floats(min_value=0.0, max_value=3.0), st.booleans()),
            max_size=80,
        ),
        wait=st.floats(min_value=0.0, max_value=10.0),
    )
    def test_window_counts_match_brute_force(
        self, window: int, steps: list[tuple[float, bool]], wait: float
    ) -> None:
        clock = FakeClock(start=1000.0)
        recorder = AttemptRecorder(window=window)
        records: list[tuple[float, bool]] = []
        for elapsed, failed in steps:
            clock.advance(elapsed)
            recorder.record(0.0, failed, clock.monotonic())
            records.append((clock.monotonic(), failed))
        clock.advance(wait)
        now = clock.monotonic()

        sample = recorder.sample(now)

        oldest = math.floor(now) - window
        in_window = [failed for when, failed in records if math.floor(when) >= oldest]
        assert sample.finished == len(in_window)
        assert sample.failed == sum(in_window)


class TestAttemptRecorderErrorRate:
    def test_error_rate_is_zero_with_nothing_finished(self) -> None:
        sample = AttemptRecorder().sample(0.0)

        assert sample.error_rate == 0.0

    def test_error_rate_is_failed_share_of_finished(self) -> None:
        recorder = AttemptRecorder()
        recorder.record(0.1, True, 1.0)
        for _ in range(3):
            recorder.record(0.1, False, 2.0)

        sample = recorder.sample(2.0)

        assert sample.failed == 1
        assert sample.finished == 4
        assert sample.error_rate == 0.25

    def test_error_rate_counts_retried_attempt_as_failure(self) -> None:
        recorder = AttemptRecorder()
        # One task: its first attempt fails and is retried, its second succeeds.
        recorder.record(0.2, True, 1.0)
        recorder.record(0.2, False, 2.0)

        sample = recorder.sample(2.0)

        assert sample.error_rate == 0.5

    def test_error_rate_is_one_when_every_attempt_fails(self) -> None:
        recorder = AttemptRecorder()
        for second in range(5):
            recorder.record(0.1, True, float(second))

        sample = recorder.sample(5.0)

        assert sample.error_rate == 1.0

    def test_error_rate_drops_expired_failures(self) -> None:
        recorder = AttemptRecorder(window=60)
        recorder.record(0.1, True, 0.0)
        recorder.record(0.1, False, 30.0)

        sample = recorder.sample(61.5)

        assert sample.failed == 0
        assert sample.finished == 1
        assert sample.error_rate == 0.0


class TestAttemptRecorderRunTimes:
    def test_run_times_is_none_before_any_record(self) -> None:
        sample = AttemptRecorder().sample(0.0)

        assert sample.run_times() is None

    def test_run_times_of_one_record(self) -> None:
        recorder = AttemptRecorder()
        recorder.record(0.75, False, 1.0)

        run_times = run_times_of(recorder, 1.0)

        assert run_times == RunTimes(p50=0.75, p90=0.75, p99=0.75, max=0.75, count=1)

    def test_run_times_take_nearest_rank_of_hundred(self) -> None:
        recorder = AttemptRecorder()
        values = [float(value) for value in range(1, 101)]
        random.Random(7).shuffle(values)
        for value in values:
            recorder.record(value, False, 200.0)

        run_times = run_times_of(recorder, 200.0)

        assert run_times == RunTimes(p50=50.0, p90=90.0, p99=99.0, max=100.0, count=100)

    def test_run_times_rank_rounds_up_between_values(self) -> None:
        recorder = AttemptRecorder()
        for value in (1.0, 2.0, 3.0):
            recorder.record(value, False, 10.0)

        run_times = run_times_of(recorder, 10.0)

        assert run_times.p50 == 2.0
        assert run_times.p90 == 3.0
        assert run_times.p99 == 3.0

    def test_run_times_keep_only_latest_samples(self) -> None:
        recorder = AttemptRecorder(samples=4)
        for value in (100.0, 1.0, 2.0, 3.0, 4.0):
            recorder.record(value, False, 10.0)

        run_times = run_times_of(recorder, 10.0)

        assert run_times.max == 4.0
        assert run_times.count == 4

    def test_run_times_wrap_around_more_than_once(self) -> None:
        recorder = AttemptRecorder(samples=3)
        for value in range(10):
            recorder.record(float(value), False, 10.0)

        sample = recorder.sample(10.0)

        assert sorted(sample.durations) == [7.0, 8.0, 9.0]

    def test_run_times_include_failed_attempts(self) -> None:
        recorder = AttemptRecorder()
        recorder.record(1.0, False, 10.0)
        recorder.record(9.0, True, 10.0)

        run_times = run_times_of(recorder, 10.0)

        assert run_times.max == 9.0

    def test_run_times_outlast_the_window(self) -> None:
        recorder = AttemptRecorder(window=60)
        recorder.record(2.0, False, 0.0)

        sample = recorder.sample(10_000.0)

        assert sample.finished == 0
        assert sample.run_times() == RunTimes(2.0, 2.0, 2.0, 2.0, 1)

    def test_sample_is_unchanged_by_later_records(self) -> None:
        recorder = AttemptRecorder(samples=2)
        recorder.record(1.0, False, 10.0)
        sample = recorder.sample(10.0)

        recorder.record(5.0, False, 11.0)
        recorder.record(6.0, False, 12.0)

        assert sample.durations == [1.0]
        assert sample.finished == 1

    def test_run_times_is_frozen(self) -> None:
        run_times = RunTimes(p50=1.0, p90=2.0, p99=3.0, max=4.0, count=5)

        with pytest.raises(dataclasses.FrozenInstanceError):
            run_times.p50 = 0.0  # type: ignore[misc]

    def test_sample_is_frozen(self) -> None:
        sample = AttemptRecorder().sample(0.0)

        with pytest.raises(dataclasses.FrozenInstanceError):
            sample.finished = 3  # type: ignore[misc]

    @settings(max_examples=200, deadline=None)
    @given(
        samples=st.integers(min_value=1, max_value=40),
        values=st.lists(_RUN_SECONDS, min_size=1, max_size=120),
    )
    def test_run_times_match_sorted_reference(
        self, samples: int, values: list[float]
    ) -> None:
        recorder = AttemptRecorder(samples=samples)
        for value in values:
            recorder.record(value, False, 1e7)

        run_times = run_times_of(recorder, 1e7)

        latest = values[-samples:]
        assert run_times.count == len(latest)
        assert run_times.p50 == nearest_rank(latest, 50)
        assert run_times.p90 == nearest_rank(latest, 90)
        assert run_times.p99 == nearest_rank(latest, 99)
        assert run_times.max == max(latest)


class TestAttemptSample:
    def test_sample_repr_leaves_out_durations(self) -> None:
        sample = AttemptSample(finished=2, failed=1, seconds=1.0, durations=[0.5])

        assert repr(sample) == "AttemptSample(finished=2, failed=1, seconds=1.0)"

    def test_sample_computes_rates_from_counts(self) -> None:
        sample = AttemptSample(finished=10, failed=2, seconds=4.0, durations=[])

        assert sample.throughput == 2.5
        assert sample.error_rate == 0.2


def run_for(clock: FakeClock, seconds: float, fail: bool = False) -> str:
    """Stand for a task that takes `seconds` on the pool's clock."""
    clock.advance(seconds)
    if fail:
        raise ValueError("planned failure")
    return "done"


class TestPoolStatsFigures:
    @pytest.mark.timeout(10)
    def test_no_figures_before_any_attempt(self, clock: FakeClock) -> None:
        with WorkerPool(1, clock=clock) as pool:
            stats = pool.stats()
        assert stats.run_times is None
        assert stats.throughput == 0.0
        assert stats.error_rate == 0.0

    @pytest.mark.timeout(10)
    def test_run_times_are_measured_on_pool_clock(self, clock: FakeClock) -> None:
        with WorkerPool(1, clock=clock) as pool:
            for seconds in (0.1, 0.2, 0.3, 0.4):
                pool.submit(run_for, clock, seconds).result(5)
            stats = pool.stats()
        assert stats.run_times is not None
        assert stats.run_times.count == 4
        assert stats.run_times.p50 == pytest.approx(0.2)
        assert stats.run_times.max == pytest.approx(0.4)

    @pytest.mark.timeout(10)
    def test_error_rate_counts_failed_attempts(self, clock: FakeClock) -> None:
        with WorkerPool(1, clock=clock) as pool:
            futures = [pool.submit(run_for, clock, 0.5, fail=i < 3) for i in range(4)]
            for future in futures:
                future.exception(5)
            stats = pool.stats()
        assert stats.error_rate == pytest.approx(0.75)
        assert stats.failed == 3

    @pytest.mark.timeout(10)
    def test_retried_attempts_count(self, clock: FakeClock) -> None:
        calls: list[int] = []

        def flaky() -> str:
            calls.append(1)
            return run_for(clock, 0.1, fail=len(calls) < 3)

        retry = Retry(3, backoff=FixedBackoff(0))
        with WorkerPool(1, retry=retry, clock=clock) as pool:
            assert pool.submit(flaky).result(5) == "done"
            stats = pool.stats()
        assert stats.run_times is not None
        assert stats.run_times.count == 3
        assert stats.error_rate == pytest.approx(2 / 3)

    @pytest.mark.timeout(10)
    def test_throughput_over_recent_attempts(self, clock: FakeClock) -> None:
        with WorkerPool(1, clock=clock) as pool:
            for _ in range(20):
                pool.submit(run_for, clock, 0.5).result(5)
            stats = pool.stats()
        # Twenty attempts of half a second each, one after another: 2 per second.
        assert stats.throughput == pytest.approx(2.0)
