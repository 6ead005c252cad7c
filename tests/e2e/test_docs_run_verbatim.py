"""The README tour and the quick-start run verbatim, from an empty directory, after the README's
install command: every bash block, in order, each command required to succeed."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def _tour() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## A 5-minute tour") :]
    section = section[: section.index("\n## ", 1)]
    return "\n".join(_blocks(section))


def _quickstart() -> str:
    return "\n".join(_blocks((REPO / "docs" / "quickstart.md").read_text(encoding="utf-8")))


def _run(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CMF_")}
    env["CI"] = "1"
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize("name", ["README tour", "quick-start"])
def test_the_documented_commands_run_verbatim(name: str, tmp_path: Path) -> None:
    script = _tour() if name == "README tour" else _quickstart()
    assert script.count("cmf ") >= 10, f"the {name} lost its commands"
    result = _run(script, tmp_path)
    assert result.returncode == 0, (
        f"{name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    assert "promotion allowed" in result.stdout


def test_the_tour_writes_nothing_into_the_repository(tmp_path: Path) -> None:
    # Every path the tour writes is relative to its own directory (or its parent, for the files
    # it keeps out of the tree); none names this repository.
    assert str(REPO) not in _tour() and "benchmarks/run.py" not in _tour()
