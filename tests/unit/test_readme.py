"""The README's two set-up commands are exactly the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _readme_setup_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    setup = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", setup)


def test_readme_has_exactly_two_setup_commands():
    commands = _readme_setup_commands()
    assert len(commands) == 2
    assert commands[0].startswith("python -m pip install")
    assert "plugins_example" in commands[0] and ".[dev]" in commands[0]
    assert commands[1] == "python -m pytest"


def test_ci_runs_the_readme_commands_verbatim():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in ci
    ci_lines = [line.strip() for line in ci.splitlines()]
    for command in _readme_setup_commands():
        assert command in ci_lines, f"`.ci/run` does not run the README's `{command}`"
    for check in ("ruff check .", "ruff format --check .", "lint-imports"):
        assert check in ci_lines
    assert "cmf schemas export --check" in ci_lines
