"""The "What is caught" table of docs/boundary.md, cell by cell, in plaintext and hashed mode.

Every cell that is not "–" is turned into a real repository with an identifier planted in that
place, scanned with that scope; the identifier must be found (exit 1) and never printed. A row
or column the table gains without a planting recipe here fails the test, so the table cannot
claim what no test checks.
"""

from __future__ import annotations

import io
import json
import os
import py_compile
import re
import secrets
import subprocess
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from customer_model_factory.boundary import make_hashed_denylist
from customer_model_factory.boundary.scanner import LEAK_CODES
from customer_model_factory.cli import app

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "boundary.md"
runner = CliRunner()


def _table() -> tuple[list[str], list[tuple[str, list[str]]]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## What is caught", 1)[1].split("\n#", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows.append((cells[0], cells[1:]))
    return header[1:], rows


def _git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env} if env else None,
    )
    return completed.stdout.strip()


@dataclass
class Cell:
    repo: Path
    identifier: str
    scope: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    push_ref: str = "main"
    files: bool = True  # the row plants files (committed or staged by the scope)

    def write(self, relative: str, data: str | bytes) -> None:
        target = self.repo / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            target.write_bytes(data)
        else:
            target.write_text(data, encoding="utf-8")

    def message_file(self, text: str) -> None:
        path = self.repo / ".git" / "COMMIT_EDITMSG"
        path.write_text(text)
        self.args = ["--commit-msg", str(path)]


def _text(cell: Cell) -> None:
    cell.write("notes/wide.txt", b"\xff\xfe" + f"see {cell.identifier}\n".encode("utf-16-le"))


def _archive(cell: Cell) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pkg/data.txt", f"x = {cell.identifier}\n")
    cell.write("dist/pkg.whl", buffer.getvalue())


def _binary(cell: Cell) -> None:
    source = cell.repo.parent / "mod.py"
    source.write_text(f"NAME = '{cell.identifier}'\n")
    compiled = cell.repo.parent / "mod.pyc"
    py_compile.compile(str(source), cfile=str(compiled), doraise=True)
    cell.write("pkg/mod.pyc", compiled.read_bytes())


def _path(cell: Cell) -> None:
    cell.write(f"docs/{cell.identifier}.md", "# notes\n")


def _message(cell: Cell) -> None:
    cell.files = False
    if cell.scope == "commit_msg":
        cell.message_file(f"Export for {cell.identifier}\n")
    else:
        _git(cell.repo, "commit", "-q", "--allow-empty", "-m", f"Export for {cell.identifier}")


def _author(cell: Cell) -> None:
    cell.files = False
    email = {"GIT_AUTHOR_EMAIL": f"{cell.identifier}@corp.example"}
    if cell.scope == "commit_msg":
        cell.message_file("An ordinary message\n")
        cell.env = email
    else:
        _git(cell.repo, "commit", "-q", "--allow-empty", "-m", "ordinary", env=email)


def _tag(cell: Cell) -> None:
    cell.files = False
    _git(cell.repo, "tag", "-a", "v9", "-m", f"Shipped to {cell.identifier}")
    cell.push_ref = "v9"


def _ref(cell: Cell) -> None:
    cell.files = False
    _git(cell.repo, "branch", f"feature/{cell.identifier}")
    cell.push_ref = f"feature/{cell.identifier}"


def _note(cell: Cell) -> None:
    cell.files = False
    _git(cell.repo, "notes", "add", "-m", f"reviewed by {cell.identifier}", "HEAD")
    cell.push_ref = "refs/notes/commits"


PLANTERS: dict[str, Callable[[Cell], None]] = {
    "text file content": _text,
    "archive members": _archive,
    "binaries": _binary,
    "file paths": _path,
    "commit message": _message,
    "author / committer": _author,
    "annotated tag": _tag,
    "branch, tag, notes": _ref,
    "git notes": _note,
}
SCOPES = {
    "tracked / all_files": ("tracked", "all_files"),
    "staged": ("staged",),
    "since": ("since",),
    "push": ("push",),
    "history": ("history",),
    "commit_msg": ("commit_msg",),
}


def _planter(row: str) -> Callable[[Cell], None]:
    found = [planter for prefix, planter in PLANTERS.items() if row.startswith(prefix)]
    assert len(found) == 1, f"no planting recipe for the row {row!r}"
    return found[0]


def _cells() -> list[tuple[str, str, str]]:
    columns, rows = _table()
    assert set(columns) == set(SCOPES), columns
    cells = []
    for row, values in rows:
        _planter(row)
        for column, value in zip(columns, values, strict=True):
            if value != "–":
                cells.extend(
                    (row, scope, mode) for scope in SCOPES[column] for mode in ("plain", "hashed")
                )
    return cells


@pytest.mark.parametrize(("row", "scope", "mode"), _cells())
def test_the_table_cell_holds(tmp_path: Path, row: str, scope: str, mode: str) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", "Public Tester")
    _git(repo, "config", "user.email", "tester@example.invalid")
    _git(repo, "config", "commit.gpgsign", "false")
    _git(repo, "config", "tag.gpgsign", "false")
    identifier = "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(10))
    denylist = tmp_path / "deny.txt"
    if mode == "plain":
        denylist.write_text(f"{identifier}\n")
    else:
        denylist.write_text("".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(12)))
        hashed = make_hashed_denylist([identifier], "salt-" + secrets.token_hex(6))
        (repo / "boundary-denylist.json").write_text(hashed.model_dump_json())
    (repo / "README.md").write_text("# public\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "initial")
    base = _git(repo, "rev-parse", "HEAD")
    if scope == "push":
        remote = tmp_path / "remote.git"
        subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
        _git(repo, "remote", "add", "origin", str(remote))
        _git(repo, "push", "-q", "origin", "main")
    cell = Cell(repo, identifier, scope)
    _planter(row)(cell)
    if cell.files:
        _git(repo, "add", "-A")
        if scope != "staged":
            _git(repo, "commit", "-q", "-m", "plant")
    args = {
        "tracked": [],
        "all_files": ["--all-files"],
        "staged": ["--staged"],
        "since": ["--since", base],
        "push": ["--push", cell.push_ref],
        "history": ["--history"],
        "commit_msg": cell.args,
    }[scope]
    # SARIF renders the same report as JSON; the red-team tests check all three formats.
    for fmt in ("text", "json"):
        result = runner.invoke(
            app,
            [
                "boundary",
                "verify",
                "--root",
                str(repo),
                "--no-plugins",
                "--no-progress",
                "--denylist",
                str(denylist),
                "--format",
                fmt,
                *args,
            ],
            env=cell.env or None,
        )
        assert result.exit_code == 1, (fmt, result.output)
        assert re.search(identifier, result.output, re.IGNORECASE) is None, result.output
        if fmt == "json":
            report = json.loads(result.stdout)
            assert report["leaks"], report
            blocking = {f["code"] for f in report["findings"] if f["severity"] == "error"}
            assert blocking <= set(LEAK_CODES), blocking  # exit 1 because of the leak, nothing else
