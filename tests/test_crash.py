"""Crash tests: a journaled pool killed with SIGKILL resumes on the next run.

A child process submits a batch of keyed tasks to ``WorkerPool(4, journal=...)``.
Each task appends its key to a log when it starts. The test kills the child at
several points, records what the log and the journal hold at that moment, then
runs the same batch again to completion and checks the at-least-once contract.

These tests use real processes and real time: each batch takes about 0.2 s, and
the log is polled with 1 ms waits.
"""

from __future__ import annotations

import collections
import dataclasses
import signal
import subprocess
import sys
import time
from pathlib import Path

import crash_worker
import pytest

from syncq.journal import Journal, TaskState

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="the crash test kills a child with SIGKILL"
)

ALL_KEYS = frozenset(crash_worker.batch_keys())
# Real-time bounds for one child, far above the 0.2 s that a batch takes.
CHILD_TIMEOUT = 15.0
POLL_INTERVAL = 0.001


@dataclasses.dataclass(frozen=True)
class CrashOutcome:
    """What one kill and the rerun that followed it left behind."""

    submitted_before_kill: frozenset[str]
    """Keys whose `submit` had returned in the killed child."""
    finished_before_kill: bool
    """Whether the killed child had already seen every result."""
    states_at_kill: dict[str, str]
    """The journal state of each key right after the kill."""
    first_runs: list[str]
    """Keys logged by the killed child, one entry per run."""
    second_runs: list[str]
    """Keys logged by the rerun, one entry per run."""
    final_states: dict[str, str]
    """The journal state of each key after the rerun."""

    def keys_in(self, state: str) -> frozenset[str]:
        """Return the keys that were in `state` right after the kill."""
        return frozenset(
            key for key, found in self.states_at_kill.items() if found == state
        )


def _start_batch(directory: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        crash_worker.command(
            "batch", str(directory / "journal.db"), str(directory / "runs.log")
        ),
        cwd=directory,
        env=crash_worker.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_runs(log: Path) -> list[str]:
    if not log.exists():
        return []
    return log.read_text().splitlines()


def _wait_for_runs(log: Path, count: int, child: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + CHILD_TIMEOUT
    while len(_read_runs(log)) < count:
        if child.poll() is not None:
            _, errors = child.communicate()
            pytest.fail(f"the batch exited before {count} runs: {errors}")
        if time.monotonic() > deadline:
            pytest.fail(f"fewer than {count} runs logged in {CHILD_TIMEOUT} s")
        time.sleep(POLL_INTERVAL)


def _wait_for_submits(child: subprocess.Popen[str]) -> list[str]:
    # readline returns "" at end of file, so a child that dies cannot hang this.
    assert child.stdout is not None
    lines: list[str] = []
    while len(lines) < len(ALL_KEYS):
        line = child.stdout.readline()
        if not line:
            pytest.fail(f"the batch exited after {len(lines)} submits")
        lines.append(line)
    return lines


def _journal_states(path: Path) -> dict[str, str]:
    with Journal(path) as journal:
        return {task.key: task.state for task in journal.tasks() if task.key}


def _crash_and_resume(directory: Path, kill_after: int | None) -> CrashOutcome:
    """Kill a batch after `kill_after` logged runs, or once all submits returned if
    None, then run it again to completion."""
    log = directory / "runs.log"
    journal = directory / "journal.db"

    child = _start_batch(directory)
    if kill_after is None:
        output = _wait_for_submits(child)
    else:
        output = []
        _wait_for_runs(log, kill_after, child)
    child.send_signal(signal.SIGKILL)
    rest, _ = child.communicate(timeout=CHILD_TIMEOUT)
    assert child.returncode == -signal.SIGKILL
    output.extend(rest.splitlines(keepends=True))
    first_runs = _read_runs(log)
    states_at_kill = _journal_states(journal)

    rerun = _start_batch(directory)
    _, errors = rerun.communicate(timeout=CHILD_TIMEOUT)
    assert rerun.returncode == 0, errors

    submitted = frozenset(
        line.split()[1] for line in output if line.startswith("submitted ")
    )
    return CrashOutcome(
        submitted_before_kill=submitted,
        finished_before_kill="finished\n" in output,
        states_at_kill=states_at_kill,
        first_runs=first_runs,
        second_runs=_read_runs(log)[len(first_runs) :],
        final_states=_journal_states(journal),
    )


@pytest.fixture(
    scope="class",
    params=[None, 5, 20, 35],
    ids=["after-submits", "after-5-runs", "after-20-runs", "after-35-runs"],
)
def outcome(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> CrashOutcome:
    """Return what a batch killed at the given point and then rerun left behind."""
    return _crash_and_resume(tmp_path_factory.mktemp("crash"), request.param)


@pytest.mark.timeout(40)
class TestCrash:
    def test_crash_kill_lands_before_batch_ends(self, outcome: CrashOutcome) -> None:
        assert not outcome.finished_before_kill

    def test_crash_keeps_every_submitted_task(self, outcome: CrashOutcome) -> None:
        missing = outcome.submitted_before_kill - outcome.states_at_kill.keys()

        assert missing == set()

    def test_crash_rerun_runs_every_key(self, outcome: CrashOutcome) -> None:
        ran = set(outcome.first_runs) | set(outcome.second_runs)

        assert ran == ALL_KEYS

    def test_crash_rerun_finishes_every_key(self, outcome: CrashOutcome) -> None:
        not_done = {
            key
            for key, state in outcome.final_states.items()
            if state != TaskState.DONE
        }

        assert not_done == set()
        assert outcome.final_states.keys() == ALL_KEYS

    def test_crash_rerun_skips_keys_done_before(self, outcome: CrashOutcome) -> None:
        done_before = outcome.keys_in(TaskState.DONE)

        assert done_before & set(outcome.second_runs) == set()

    def test_crash_duplicates_only_interrupted_keys(
        self, outcome: CrashOutcome
    ) -> None:
        counts = collections.Counter(outcome.first_runs + outcome.second_runs)
        duplicates = {key for key, count in counts.items() if count > 1}

        assert duplicates <= outcome.keys_in(TaskState.RUNNING)
        assert max(counts.values()) <= 2

    def test_crash_interrupts_at_most_one_task_per_worker(
        self, outcome: CrashOutcome
    ) -> None:
        # A row is "running" from the worker's start() until its finish(), and a
        # pool without retries has at most one such task per worker thread. So
        # at most WORKERS tasks run twice, and the bound needs no margin.
        interrupted = outcome.keys_in(TaskState.RUNNING)

        assert len(interrupted) <= crash_worker.WORKERS


def test_crash_worker_imports_from_a_fresh_interpreter(tmp_path: Path) -> None:
    # Guards the premise of the tests above: the child names its task function
    # crash_worker:record_run, which a later interpreter can import.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import crash_worker; from syncq.journal import function_name;"
            " print(function_name(crash_worker.record_run))",
        ],
        cwd=tmp_path,
        env=crash_worker.environment(),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )

    assert result.stdout.strip() == "crash_worker:record_run", result.stderr
