"""Fixtures shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncq.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """Return a fake clock that moves only when the test advances it."""
    return FakeClock()


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    """Return the path of a journal file that does not exist yet."""
    return tmp_path / "journal.db"
