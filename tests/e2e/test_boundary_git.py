"""The boundary verifier on real git repositories: every scope finds exactly what it should.

Identifiers are generated per test run; none is written into a committed test file.
"""

from __future__ import annotations

import datetime as dt
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from customer_model_factory.boundary import (
    Scope,
    VerifyOptions,
    gather_rules,
    make_hashed_denylist,
    verify,
)
from customer_model_factory.boundary.scanner import BoundaryReport

TODAY = dt.date(2026, 1, 15)


def _word(n: int = 8) -> str:
    return "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(n))


def git(repo: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    )
    return completed.stdout.strip()


@dataclass
class Planted:
    repo: Path
    plain: str  # in the plaintext denylist (kept outside the repo)
    hashed: str  # only in the hashed denylist
    module: str  # multi-token hashed identifier (a module path)
    in_name: str  # plaintext identifier used in a file name
    denylist: Path
    first_commit: str
    second_commit: str


def _write(repo: Path, relative: str, content: str | bytes) -> None:
    path = repo / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


@pytest.fixture
def planted(tmp_path: Path) -> Planted:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test")
    git(repo, "config", "user.email", "test@example.invalid")
    git(repo, "config", "commit.gpgsign", "false")
    plain, hashed, in_name = _word(), _word(), _word()
    module = f"{_word(5)}.{_word(6)}.{_word(4)}"
    denylist = tmp_path / "private-denylist.txt"
    denylist.write_text(f"{plain}  # customer-plain\n{in_name}\npath: **/private_pack/**\n")
    salt = "salt-" + secrets.token_hex(8)
    hashed_list = make_hashed_denylist([hashed, module], salt, labels=["customer-hashed", None])
    _write(repo, "boundary-denylist.json", hashed_list.model_dump_json(indent=2))
    _write(repo, "src/app.py", f'"""App."""\n\nCLIENT = "{plain.upper()}"\n# talks to {hashed}\n')
    _write(repo, "src/loader.py", f"import os\n\nimport {module}\n")
    _write(repo, "data/config.json", f'{{\n  "tenant": "{hashed}",\n  "ok": true\n}}\n')
    _write(repo, "docs/guide.md", f"# Guide\n\nAsk the {plain} team.\n")
    _write(repo, f"docs/{in_name}.md", "# Notes\n")
    _write(repo, "private_pack/mod.py", "X = 1\n")
    _write(repo, "assets/blob.bin", b"\x00\x01binary " + plain.encode() + b"\x00")
    _write(repo, "legacy.txt", b"caf\xe9 \xff\xfe " + hashed.encode() + b" fin\n")
    _write(repo, "old.txt", f"line one\n{plain}\n")
    _write(repo, "clean.txt", "nothing to see\n")
    _write(repo, ".gitignore", "build/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "rm", "-q", "old.txt")
    _write(repo, "clean.txt", "still nothing\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "second")
    second = git(repo, "rev-parse", "HEAD")
    return Planted(repo, plain, hashed, module, in_name, denylist, first, second)


def _run(p: Planted, scope: Scope, **options: object) -> BoundaryReport:
    rules = gather_rules(p.repo, denylists=[p.denylist])
    return verify(
        rules,
        VerifyOptions(root=p.repo, scope=scope, today=TODAY, jobs=1, **options),  # type: ignore[arg-type]
    )


def _where(report: BoundaryReport) -> set[tuple[str, str, int | None]]:
    return {(leak.code, leak.path, leak.line) for leak in report.leaks}


def _expected_tracked(p: Planted) -> set[tuple[str, str, int | None]]:
    return {
        ("BOUNDARY_LEAK", "src/app.py", 3),
        ("BOUNDARY_LEAK", "src/app.py", 4),
        ("BOUNDARY_LEAK", "src/loader.py", 3),
        ("BOUNDARY_LEAK", "data/config.json", 2),
        ("BOUNDARY_LEAK", "docs/guide.md", 3),
        ("BOUNDARY_LEAK", "legacy.txt", 1),
        # A binary is scanned for its printable runs, so no line number exists.
        ("BOUNDARY_LEAK", "assets/blob.bin", None),
        ("BOUNDARY_PATH_LEAK", "docs/[redacted].md", None),
        # The glob's literal segment is private too: the path is shown redacted.
        ("BOUNDARY_PATH_GLOB", "[redacted]/mod.py", None),
    }


def test_tracked_scope_finds_every_planted_identifier(planted: Planted) -> None:
    report = _run(planted, Scope("tracked"))
    assert _where(report) == _expected_tracked(planted)
    assert report.decoded == {"cp1252": 1, "strings": 1}
    assert not report.clean
    assert report.rules["hashed"] == 2
    assert set(report.rule_origins) == {
        "denylist:private-denylist.txt",
        "hashed-denylist:boundary-denylist.json",
    }
    rendered = report.model_dump_json()
    for secret in (planted.plain, planted.hashed, planted.module, planted.in_name):
        assert secret not in rendered.lower()
    by_line = {(leak.path, leak.line): leak for leak in report.leaks}
    assert by_line[("src/app.py", 3)].rule_id == "customer-plain"
    assert by_line[("src/app.py", 3)].col == 11
    assert by_line[("data/config.json", 2)].rule_id == "customer-hashed"
    assert by_line[("legacy.txt", 1)].col == 9  # "caf", three replacement characters, spaces


def test_show_matches_reveals_the_text_only_when_asked(planted: Planted) -> None:
    report = _run(planted, Scope("tracked"), show_matches=True)
    matches = {leak.match for leak in report.leaks if leak.code == "BOUNDARY_LEAK"}
    assert planted.plain.upper() in matches
    assert planted.module in matches
    paths = {leak.path for leak in report.leaks}
    assert f"docs/{planted.in_name}.md" in paths
    assert "docs/[redacted].md" not in paths


def test_history_scope_finds_the_deleted_file_with_its_commits(planted: Planted) -> None:
    report = _run(planted, Scope("history"))
    old = [leak for leak in report.leaks if leak.path == "old.txt"]
    assert len(old) == 1
    assert old[0].commits == (planted.first_commit,)
    app = next(leak for leak in report.leaks if leak.path == "src/app.py")
    assert set(app.commits) == {planted.first_commit, planted.second_commit}
    assert _where(report) == _expected_tracked(planted) | {("BOUNDARY_LEAK", "old.txt", 2)}
    assert report.decoded == {"cp1252": 1, "strings": 1}


def test_since_scope_reads_only_changed_files(planted: Planted) -> None:
    report = _run(planted, Scope("since", planted.first_commit))
    # clean.txt (old.txt is deleted) and the commit object of the second commit.
    assert report.files_scanned == 2
    assert report.clean
    _write(planted.repo, "docs/guide.md", f"# Guide\n\nnew line\nAsk {planted.hashed}.\n")
    report = _run(planted, Scope("since", planted.second_commit))
    assert _where(report) == {("BOUNDARY_LEAK", "docs/guide.md", 4)}


def test_staged_scope_reads_the_index_not_the_working_tree(planted: Planted) -> None:
    _write(planted.repo, "notes.md", f"call {planted.plain} now\n")
    git(planted.repo, "add", "notes.md")
    _write(planted.repo, "notes.md", "cleaned after staging\n")
    _write(planted.repo, "unstaged.md", f"{planted.plain}\n")
    report = _run(planted, Scope("staged"))
    assert _where(report) == {("BOUNDARY_LEAK", "notes.md", 1)}


def test_all_files_scope_honours_gitignore(planted: Planted) -> None:
    _write(planted.repo, "build/out.txt", f"{planted.plain}\n")
    _write(planted.repo, "untracked.md", f"{planted.hashed}\n")
    report = _run(planted, Scope("all_files"))
    where = _where(report)
    assert ("BOUNDARY_LEAK", "untracked.md", 1) in where
    assert not any(path.startswith("build/") for _code, path, _line in where)
    assert not any(path.startswith(".git/") for _code, path, _line in where)
    tracked = _run(planted, Scope("tracked"))
    assert ("BOUNDARY_LEAK", "untracked.md", 1) not in _where(tracked)


def test_symlinks_are_not_followed_out_of_the_root(planted: Planted, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text(f"{planted.plain}\n")
    (planted.repo / "link.txt").symlink_to(outside)
    git(planted.repo, "add", "link.txt")
    for scope in (Scope("tracked"), Scope("all_files"), Scope("staged")):
        report = _run(planted, scope)
        assert not any(leak.path == "link.txt" for leak in report.leaks), scope


def test_clean_tree_exits_clean(tmp_path: Path) -> None:
    repo = tmp_path / "clean"
    repo.mkdir()
    git(repo, "init", "-q")
    _write(repo, "README.md", "# Nothing private here\n")
    git(repo, "add", "-A")
    denylist = tmp_path / "deny.txt"
    denylist.write_text(_word() + "\n")
    report = verify(
        gather_rules(repo, denylists=[denylist]),
        VerifyOptions(root=repo, today=TODAY),
    )
    assert report.clean
    assert report.files_scanned == 1


def test_large_files_are_reported_not_skipped_silently(planted: Planted) -> None:
    _write(planted.repo, "big.txt", "x" * 5000 + planted.plain)
    git(planted.repo, "add", "big.txt")
    report = _run(planted, Scope("tracked"), max_file_size=4096)
    assert "big.txt" in report.too_large
    assert any(
        f.code == "BOUNDARY_FILE_TOO_LARGE" and f.location == "big.txt" and f.severity == "error"
        for f in report.findings
    )
    assert not report.clean


def test_parallel_workers_find_the_same_leaks(planted: Planted, monkeypatch) -> None:
    from customer_model_factory.boundary import scanner

    monkeypatch.setattr(scanner, "_PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(scanner, "_CHUNK_FILES", 2)
    rules = gather_rules(planted.repo, denylists=[planted.denylist])
    report = verify(rules, VerifyOptions(root=planted.repo, today=TODAY, jobs=2))
    assert report.parallel_workers == 2
    assert _where(report) == _expected_tracked(planted)


def test_git_errors_are_input_errors(planted: Planted, tmp_path: Path) -> None:
    from customer_model_factory.errors import InputError

    with pytest.raises(InputError, match="revision 'no-such-rev' could not be resolved"):
        _run(planted, Scope("since", "no-such-rev"))
    plain_dir = tmp_path / "not-a-repo"
    plain_dir.mkdir()
    with pytest.raises(InputError, match="git rev-parse failed"):
        verify(gather_rules(plain_dir, denylists=[planted.denylist]), VerifyOptions(root=plain_dir))
