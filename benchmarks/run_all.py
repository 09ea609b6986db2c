"""Run every benchmark, each in its own interpreter, and print their reports.

A fresh process per benchmark keeps one benchmark's memory high-water mark and
background threads out of the next one's figures. Options such as ``--quick``
and ``--rounds N`` are passed on to every benchmark.

Run from the repository root::

    python -m benchmarks.run_all [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
from collections.abc import Sequence

BENCHMARKS = ("bench_limiters", "bench_breaker", "bench_pool", "bench_accuracy")

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent


def main(argv: Sequence[str] | None = None) -> int:
    """Run each benchmark with the options in `argv` and return 1 if any failed."""
    parser = argparse.ArgumentParser(
        description="Run every benchmark, each in its own interpreter."
    )
    parser.add_argument(
        "--quick", action="store_true", help="pass --quick to every benchmark"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="pass --rounds N to every benchmark"
    )
    args = parser.parse_args(argv)
    arguments = ["--quick"] if args.quick else []
    if args.rounds is not None:
        arguments += ["--rounds", str(args.rounds)]

    failed: list[str] = []
    for index, name in enumerate(BENCHMARKS):
        if index:
            print(flush=True)
        command = [sys.executable, "-m", f"benchmarks.{name}", *arguments]
        completed = subprocess.run(command, cwd=REPOSITORY, check=False)
        if completed.returncode != 0:
            failed.append(f"{name} (exit status {completed.returncode})")
    if failed:
        print(f"failed benchmarks: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
