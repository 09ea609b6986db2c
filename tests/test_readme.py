"""Check that the README's examples and commands still run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
SHELL_BLOCKS = re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)
LIMITER_GUIDE = (ROOT / "docs" / "limiters.md").read_text(encoding="utf-8")
GUIDE_BLOCKS = re.findall(r"```python\n(.*?)```", LIMITER_GUIDE, flags=re.DOTALL)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("source", PYTHON_BLOCKS, ids=lambda s: s.splitlines()[0][:40])
def test_readme_python_example_runs(
    source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exec(compile(source, "README.md", "exec"), {"__name__": "readme_example"})

    assert capsys.readouterr().out.strip()


def test_readme_has_python_examples() -> None:
    assert len(PYTHON_BLOCKS) >= 6


def test_readme_test_command_is_what_ci_runs() -> None:
    test_command = next(block.strip() for block in SHELL_BLOCKS if "pytest" in block)
    ci_script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")

    assert test_command in ci_script.splitlines()


def test_readme_quick_start_runs_the_example() -> None:
    quick_start = SHELL_BLOCKS[0].strip()
    script = quick_start.split("&&")[1].split()[1]

    assert (ROOT / script).is_file()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("source", GUIDE_BLOCKS, ids=lambda s: s.splitlines()[0][:40])
def test_limiter_guide_example_runs(source: str) -> None:
    exec(compile(source, "docs/limiters.md", "exec"), {"__name__": "guide_example"})


def test_limiter_guide_has_examples() -> None:
    assert len(GUIDE_BLOCKS) >= 3
