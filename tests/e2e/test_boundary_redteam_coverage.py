"""Red team: what `cmf boundary verify` covers, and that its own output gives nothing away.

Each test builds a real git repository (and real archives, binaries, clones) in ``tmp_path``,
plants identifiers generated for this run, runs the CLI in every output format and asserts the
exit code, the finding, and that no identifier text appears in stdout, stderr or any report.
The classes: no fail-open (content in other encodings, archives, binaries, size limits, rule
sources), git metadata and push/commit-msg scopes, redacted output, configuration mistakes.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import py_compile
import secrets
import subprocess
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from customer_model_factory.boundary import make_hashed_denylist
from customer_model_factory.cli import app

pytestmark = pytest.mark.slow

runner = CliRunner()
FORMATS = ("text", "json", "sarif")


def _word(n: int = 10) -> str:
    return "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(n))


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env} if env else None,
    )
    return completed.stdout.strip()


@dataclass
class Repo:
    path: Path
    secret: str  # in the private plaintext denylist
    hashed: str  # only in the committed hashed denylist
    denylist: Path

    def write(self, relative: str, content: str | bytes) -> Path:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
        return target

    def commit(self, message: str = "change", *, env: dict[str, str] | None = None) -> str:
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "--allow-empty", "-m", message, env=env)
        return git(self.path, "rev-parse", "HEAD")


def _init(path: Path) -> None:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Public Tester")
    git(path, "config", "user.email", "tester@example.invalid")
    git(path, "config", "commit.gpgsign", "false")
    git(path, "config", "tag.gpgsign", "false")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    root = tmp_path / "repo"
    _init(root)
    secret, hashed = _word(), _word()
    denylist = tmp_path / "private-denylist.txt"
    denylist.write_text(f"{secret}\n")
    hashed_list = make_hashed_denylist([hashed], "salt-" + secrets.token_hex(8))
    (root / "boundary-denylist.json").write_text(hashed_list.model_dump_json(indent=2))
    (root / "README.md").write_text("# A public project\n")
    created = Repo(root, secret, hashed, denylist)
    created.commit("initial")
    return created


@dataclass
class Outcome:
    code: int
    outputs: list[str]
    reports: dict[str, str]

    @property
    def text(self) -> str:
        return self.reports["text"]

    @property
    def json(self) -> dict:
        return json.loads(self.reports["json"])

    def codes(self) -> set[str]:
        return {finding["code"] for finding in self.json["findings"]}

    def assert_silent_about(self, *secrets_: str) -> None:
        for output in self.outputs:
            lowered = output.lower()
            for secret in secrets_:
                assert secret.lower() not in lowered, output


def verify(r: Repo, *args: str, root: Path | None = None, **invoke: object) -> Outcome:
    """Run `cmf boundary verify` in every format; the exit code must not depend on it."""
    codes: set[int] = set()
    outputs: list[str] = []
    reports: dict[str, str] = {}
    for fmt in FORMATS:
        result = runner.invoke(
            app,
            [
                "boundary",
                "verify",
                "--root",
                str(root or r.path),
                "--no-plugins",
                "--no-progress",
                "--denylist",
                str(r.denylist),
                "--format",
                fmt,
                *args,
            ],
            **invoke,  # type: ignore[arg-type]
        )
        assert "Traceback" not in result.output
        codes.add(result.exit_code)
        outputs.extend([result.stdout, result.stderr])
        reports[fmt] = result.stdout
    assert len(codes) == 1, codes
    return Outcome(codes.pop(), outputs, reports)


def leak_paths(outcome: Outcome) -> set[str]:
    return {leak["path"] for leak in outcome.json["leaks"]}


# ---- class 1: no fail-open: other encodings, archives, binaries ----


@pytest.mark.parametrize(
    ("codec", "bom"),
    [
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-16-le", b""),
        ("utf-16-be", b""),
        ("utf-32-le", b"\xff\xfe\x00\x00"),
        ("utf-32-be", b""),
    ],
)
def test_wide_encodings_are_decoded_and_located(repo: Repo, codec: str, bom: bytes) -> None:
    text = f"first line\nsecond line names {repo.secret} here\n"
    repo.write("notes/wide.txt", bom + text.encode(codec))
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    [leak] = outcome.json["leaks"]
    assert (leak["path"], leak["line"], leak["col"], leak["form"]) == (
        "notes/wide.txt",
        2,
        19,
        codec,
    )
    outcome.assert_silent_about(repo.secret)


def test_utf16_hashed_identifier_is_found(repo: Repo) -> None:
    repo.write("data.csv", b"\xff\xfe" + f"id,name\n1,{repo.hashed}\n".encode("utf-16-le"))
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    assert leak_paths(outcome) == {"data.csv"}
    outcome.assert_silent_about(repo.secret, repo.hashed)


def _zip(members: dict[str, bytes], comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.comment = comment
    return buffer.getvalue()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_archives_are_scanned_member_by_member(repo: Repo) -> None:
    secret = repo.secret
    repo.write("dist/pkg-1.0-py3-none-any.whl", _zip({"pkg/core.py": f"X = '{secret}'\n".encode()}))
    repo.write(
        "dist/bundle.zip", _zip({"a/readme.txt": b"fine\n", "a/b.txt": f"x\n{secret}\n".encode()})
    )
    repo.write("dist/src.tar.gz", _tar_gz({"src/cfg.ini": f"[a]\nk = {repo.hashed}\n".encode()}))
    repo.write("dist/plain.txt.gz", gzip.compress(f"hello {secret}\n".encode()))
    repo.write("dist/comment.zip", _zip({"ok.txt": b"ok\n"}, comment=secret.encode()))
    inner = _zip({"deep/inner.txt": f"{secret}\n".encode()})
    repo.write("dist/nested.tar.gz", _tar_gz({"inner.zip": inner}))
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    found = {(leak["path"], leak["line"]) for leak in outcome.json["leaks"]}
    assert found == {
        ("dist/pkg-1.0-py3-none-any.whl!/pkg/core.py", 1),
        ("dist/bundle.zip!/a/b.txt", 2),
        ("dist/src.tar.gz!/-!/src/cfg.ini", 2),
        ("dist/plain.txt.gz!/-", 1),
        ("dist/comment.zip", None),
        ("dist/nested.tar.gz!/-!/inner.zip!/deep/inner.txt", 1),
    }
    outcome.assert_silent_about(repo.secret, repo.hashed)


def _ar(members: dict[str, bytes]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members.items():
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n"
        out += header.encode() + data + (b"\n" if len(data) % 2 else b"")
    return out


def _png_with_ztxt(text: bytes) -> bytes:
    body = b"Comment\0\0" + zlib.compress(text)
    chunk = (
        len(body).to_bytes(4, "big")
        + b"zTXt"
        + body
        + zlib.crc32(b"zTXt" + body).to_bytes(4, "big")
    )
    end = (0).to_bytes(4, "big") + b"IEND" + zlib.crc32(b"IEND").to_bytes(4, "big")
    return b"\x89PNG\r\n\x1a\n" + chunk + end


def test_archives_hidden_inside_other_files_are_opened(repo: Repo) -> None:
    secret = repo.secret
    member = {"pkg/data.txt": f"{secret}\n".encode()}
    repo.write("tools/installer.exe", b"MZ\x90\x00stub\x00" * 40 + _zip(member))
    repo.write(
        "dist/tool_1.0_all.deb", _ar({"debian-binary": b"2.0\n", "data.tar.gz": _tar_gz(member)})
    )
    repo.write("docs/diagram.png", _png_with_ztxt(f"drawn for {repo.hashed}".encode()))
    repo.write("blob.bin", b"\x00\x01header" + gzip.compress(f"{secret}\n".encode()))
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    paths = leak_paths(outcome)
    assert "tools/installer.exe!/pkg/data.txt" in paths
    assert "dist/tool_1.0_all.deb!/data.tar.gz!/-!/pkg/data.txt" in paths
    assert any(path.startswith("docs/diagram.png!/zTXt") for path in paths)
    assert any(path.startswith("blob.bin!/@") for path in paths)
    outcome.assert_silent_about(repo.secret, repo.hashed)


@pytest.mark.parametrize(
    ("name", "magic"),
    [
        ("a.7z", b"7z\xbc\xaf\x27\x1c"),
        ("a.rar", b"Rar!\x1a\x07\x00"),
        ("a.zst", b"\x28\xb5\x2f\xfd"),
    ],
)
def test_archives_that_cannot_be_opened_are_unscanned_errors(
    repo: Repo, name: str, magic: bytes
) -> None:
    repo.write(f"dist/{name}", magic + os.urandom(200))
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    assert "BOUNDARY_UNSCANNED" in outcome.codes()


def test_archive_member_names_are_checked_and_redacted(repo: Repo) -> None:
    repo.write("dist/app.whl", _zip({f"{repo.secret}/__init__.py": b"X = 1\n"}))
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    assert "dist/app.whl!/[redacted]/__init__.py" in leak_paths(outcome)
    outcome.assert_silent_about(repo.secret)


def test_path_globs_alone_see_archive_members(repo: Repo) -> None:
    pack = f"cmf_{_word(6)}_pack"
    (repo.path / "boundary-denylist.json").unlink()
    repo.denylist.write_text(f"path: **/{pack}/**\n")
    repo.write("dist/app-1.0-py3-none-any.whl", _zip({f"{pack}/__init__.py": b"X = 1\n"}))
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    assert leak_paths(outcome) == {"dist/app-1.0-py3-none-any.whl!/[redacted]/__init__.py"}
    outcome.assert_silent_about(pack)


def test_archives_beyond_the_bounds_are_errors_not_passes(repo: Repo) -> None:
    nested = f"{repo.secret}\n".encode()
    for level in range(4):
        nested = _zip({f"level{level}.zip" if level else "leaf.txt": nested})
    repo.write("dist/deep.zip", nested)
    repo.write("dist/bomb.zip", _zip({"zeros.bin": b"\0" * 300_000}))
    repo.commit()
    outcome = verify(repo, "--max-archive-depth", "3", "--max-file-size", "200000")
    assert outcome.code == 1
    assert "BOUNDARY_UNSCANNED" in outcome.codes()
    messages = " ".join(f["message"] for f in outcome.json["findings"])
    assert "nested deeper than 3 levels" in messages
    assert "member above the 200000-byte limit" in messages
    outcome.assert_silent_about(repo.secret)
    # Deep enough: the leaf is scanned and the leak found.
    deeper = verify(repo, "--max-archive-depth", "6", "--exclude", "dist/bomb.zip")
    assert deeper.code == 1
    assert "BOUNDARY_UNSCANNED" not in deeper.codes()
    assert any(path.endswith("!/leaf.txt") for path in leak_paths(deeper))


def test_corrupt_archive_is_an_error(repo: Repo) -> None:
    repo.write("dist/broken.zip", b"PK\x03\x04" + os.urandom(64))
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    assert "BOUNDARY_UNSCANNED" in outcome.codes()


def test_compiled_python_is_scanned(repo: Repo, tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(f"TENANT = '{repo.secret}'\n\ndef {repo.hashed}():\n    return 1\n")
    compiled = tmp_path / "mod.pyc"
    py_compile.compile(str(source), cfile=str(compiled), doraise=True)
    repo.write("pkg/__pycache__/mod.cpython-311.pyc", compiled.read_bytes())
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    forms = {(leak["path"], leak["form"]) for leak in outcome.json["leaks"]}
    assert forms == {("pkg/__pycache__/mod.cpython-311.pyc", "strings")}
    assert {leak["rule_kind"] for leak in outcome.json["leaks"]} == {"literal", "hashed"}
    outcome.assert_silent_about(repo.secret, repo.hashed)


def test_pdf_streams_and_binary_strings_are_scanned(repo: Repo) -> None:
    stream = zlib.compress(f"BT /F1 12 Tf ({repo.secret}) Tj ET".encode())
    pdf = (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Filter /FlateDecode /Length "
        + str(len(stream)).encode()
        + b" >>\nstream\n"
        + stream
        + b"\nendstream\nendobj\n\x00\x00trailer\n%%EOF\n"
    )
    repo.write("docs/report.pdf", pdf)
    repo.write(
        "bin/tool.exe", b"MZ\x90\x00\x03" + os.urandom(32) + f"\x00{repo.hashed}\x00".encode()
    )
    repo.write(
        "bin/res.dll", b"MZ\x00\x00" + b"\x01\x02" + f"{repo.secret}".encode("utf-16-le") + b"\0\0"
    )
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    assert {"docs/report.pdf!/stream-1", "bin/tool.exe", "bin/res.dll"} <= leak_paths(outcome)
    outcome.assert_silent_about(repo.secret, repo.hashed)


def test_utf8_bom_does_not_hide_the_first_word(repo: Repo) -> None:
    repo.write("first.txt", b"\xef\xbb\xbf" + f"{repo.secret} starts the file\n".encode())
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    [leak] = outcome.json["leaks"]
    assert (leak["path"], leak["line"], leak["col"]) == ("first.txt", 1, 2)


def test_a_wide_bom_cannot_hide_ascii_content(repo: Repo) -> None:
    repo.write("fake-wide.txt", b"\xff\xfe" + f"plain ascii naming {repo.secret} here\n".encode())
    repo.write(
        "mixed.txt",
        b"\xff\xfe" + "wide text\n".encode("utf-16-le") + f"\x00{repo.hashed}\x00".encode(),
    )
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    assert leak_paths(outcome) == {"fake-wide.txt", "mixed.txt"}
    outcome.assert_silent_about(repo.secret, repo.hashed)


def test_wide_text_after_the_binary_probe_is_found(repo: Repo) -> None:
    repo.write("late.txt", b"a" * 9000 + b"\n" + f"x {repo.secret} y".encode("utf-16-le"))
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    assert leak_paths(outcome) == {"late.txt"}


def test_latin1_text_is_read_as_such(repo: Repo) -> None:
    identifier = "Zürich" + _word(5)
    repo.denylist.write_text(f"{identifier}\n")
    repo.write("legacy.csv", f"id;name\n1;{identifier}\n".encode("latin-1"))
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    [leak] = outcome.json["leaks"]
    assert (leak["path"], leak["line"], leak["form"]) == ("legacy.csv", 2, "cp1252")
    outcome.assert_silent_about(identifier)


def test_text_that_looks_like_a_tar_header_is_read_as_text(repo: Repo) -> None:
    repo.write("notes.txt", "x" * 257 + "ustar is the tar format\n" + f"{repo.secret}\n")
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    assert "BOUNDARY_UNSCANNED" not in outcome.codes()
    assert leak_paths(outcome) == {"notes.txt"}


def test_a_fifo_in_place_of_a_tracked_file_is_unreadable_not_a_hang(repo: Repo) -> None:
    repo.write("pipe.txt", "clean\n")
    repo.commit()
    (repo.path / "pipe.txt").unlink()
    os.mkfifo(repo.path / "pipe.txt")
    outcome = verify(repo)
    assert outcome.code == 1
    assert "BOUNDARY_FILE_UNREADABLE" in outcome.codes()


def test_a_tracked_file_replaced_by_a_link_is_read_as_its_target_text(
    repo: Repo, tmp_path: Path
) -> None:
    outside = tmp_path / f"{repo.secret}.txt"
    outside.write_text("clean content\n")
    repo.write("doc.txt", "clean\n")
    repo.commit()
    (repo.path / "doc.txt").unlink()
    (repo.path / "doc.txt").symlink_to(outside)
    outcome = verify(repo)
    assert outcome.code == 1  # the link's target text names the identifier
    assert leak_paths(outcome) == {"doc.txt"}
    outcome.assert_silent_about(repo.secret)


def test_oversized_files_fail_unless_excluded_or_allowlisted(repo: Repo) -> None:
    name = f"data/{repo.secret}-dump.txt"
    repo.write(name, "x" * 5000 + "\n")
    repo.commit()
    outcome = verify(repo, "--max-file-size", "4096")
    assert outcome.code == 1
    assert "BOUNDARY_FILE_TOO_LARGE" in outcome.codes()
    assert outcome.json["too_large"] == ["data/[redacted]-dump.txt"]
    outcome.assert_silent_about(repo.secret)
    assert verify(repo, "--max-file-size", "4096", "--exclude", "data/").code == 0
    allow = repo.path.parent / "allow.toml"
    allow.write_text(
        '[[allow]]\npath = "data/*"\nrule = "BOUNDARY_FILE_TOO_LARGE"\n'
        'reason = "a generated dump, checked elsewhere"\nexpires = 2999-01-01\n'
    )
    # The path itself still leaks: only the size is accepted.
    accepted = verify(repo, "--max-file-size", "4096", "--allowlist", str(allow))
    assert "BOUNDARY_FILE_TOO_LARGE" not in accepted.codes()
    assert accepted.json["leaks"][0]["code"] == "BOUNDARY_PATH_LEAK"
    # A "*" rule is not enough to accept unscanned content.
    star = repo.path.parent / "star.toml"
    star.write_text('[[allow]]\npath = "data/*"\nrule = "*"\nreason = "r"\nexpires = 2999-01-01\n')
    assert (
        "BOUNDARY_FILE_TOO_LARGE"
        in verify(repo, "--max-file-size", "4096", "--allowlist", str(star)).codes()
    )


# ---- class 1: no fail-open: rule sources ----


def test_no_rules_is_exit_2(repo: Repo) -> None:
    (repo.path / "boundary-denylist.json").unlink()
    result = runner.invoke(
        app, ["boundary", "verify", "--root", str(repo.path), "--no-plugins", "--no-progress"]
    )
    assert result.exit_code == 2
    assert "no boundary rule is configured" in result.output


def test_subdirectory_run_reads_the_roots_hashed_denylist(repo: Repo) -> None:
    repo.write("pkg/sub/code.py", f"NAME = '{repo.hashed}'\n")
    repo.commit()
    result = runner.invoke(
        app,
        [
            "boundary",
            "verify",
            "--root",
            str(repo.path / "pkg" / "sub"),
            "--no-plugins",
            "--no-progress",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert {leak["path"] for leak in report["leaks"]} == {"pkg/sub/code.py"}
    assert repo.hashed not in result.output


def test_an_explicit_hashed_denylist_does_not_switch_off_the_committed_one(
    repo: Repo, tmp_path: Path
) -> None:
    extra = tmp_path / "extra.json"
    extra.write_text(make_hashed_denylist([_word()], "salt-extra-1").model_dump_json())
    repo.write("a.txt", f"{repo.hashed}\n")
    repo.commit()
    outcome = verify(repo, "--hashed-denylist", str(extra))
    assert outcome.code == 1
    assert leak_paths(outcome) == {"a.txt"}


@pytest.mark.parametrize("separator", ["\t", "\t\t", " \t ", "   "])
def test_a_label_after_any_whitespace_is_a_label(repo: Repo, separator: str) -> None:
    repo.denylist.write_text(f"{repo.secret}{separator}# customer-x\n")
    repo.write("a.txt", f"{repo.secret}\n")
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    assert {leak["rule_id"] for leak in outcome.json["leaks"]} == {"customer-x"}


def test_hashed_denylist_without_hashes_is_exit_2(repo: Repo) -> None:
    empty = json.loads((repo.path / "boundary-denylist.json").read_text())
    empty["hashes"] = []
    # Whatever per-hash tables the format has are emptied with the hashes.
    empty.update({key: {} for key, value in empty.items() if isinstance(value, dict)})
    (repo.path / "boundary-denylist.json").write_text(json.dumps(empty))
    outcome = verify(repo)
    assert outcome.code == 2
    assert "holds no hash" in outcome.outputs[1]


@pytest.mark.parametrize("kind", ["dangling link", "directory"])
def test_a_default_hashed_denylist_that_cannot_be_read_is_exit_2(repo: Repo, kind: str) -> None:
    default = repo.path / "boundary-denylist.json"
    default.unlink()
    if kind == "directory":
        default.mkdir()
    else:
        default.symlink_to(repo.path / "missing.json")
    outcome = verify(repo)
    assert outcome.code == 2
    assert "boundary-denylist.json" in outcome.outputs[1]


def test_history_on_a_shallow_clone_fails_unless_allowed(repo: Repo, tmp_path: Path) -> None:
    repo.write("old.txt", f"{repo.secret}\n")
    repo.commit("add")
    (repo.path / "old.txt").unlink()
    repo.commit("remove")
    repo.write("new.txt", "clean\n")
    repo.commit("more")
    clone = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{repo.path}", str(clone)],
        check=True,
        capture_output=True,
    )
    outcome = verify(repo, "--history", root=clone)
    assert outcome.code == 1
    assert "BOUNDARY_SHALLOW_HISTORY" in outcome.codes()
    allowed = verify(repo, "--history", "--allow-shallow", root=clone)
    assert allowed.code == 0
    assert "BOUNDARY_SHALLOW_HISTORY" in allowed.codes()
    full = verify(repo, "--history")
    assert full.code == 1
    assert "old.txt" in leak_paths(full)


# ---- class 2: git metadata ----


def _metadata_leaks(outcome: Outcome) -> set[str]:
    return {
        leak["path"].split("/")[0]
        for leak in outcome.json["leaks"]
        if leak["code"] == "BOUNDARY_METADATA_LEAK"
    }


def test_commit_message_is_scanned_by_history(repo: Repo) -> None:
    repo.write("x.txt", "clean\n")
    sha = repo.commit(f"Fix the export for {repo.secret}\n\nBody also says {repo.hashed}.")
    outcome = verify(repo, "--history")
    assert outcome.code == 1
    leaks = [leak for leak in outcome.json["leaks"] if leak["path"] == f"git:commit/{sha}"]
    assert {leak["rule_kind"] for leak in leaks} == {"literal", "hashed"}
    assert all(leak["commits"] == [sha] for leak in leaks)
    outcome.assert_silent_about(repo.secret, repo.hashed)


@pytest.mark.parametrize(
    "variable",
    ["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"],
)
def test_author_and_committer_are_scanned(repo: Repo, variable: str) -> None:
    value = f"{repo.secret}@corp.example" if "EMAIL" in variable else f"Ann {repo.secret}"
    repo.commit("ordinary message", env={variable: value})
    outcome = verify(repo, "--history")
    assert outcome.code == 1
    assert _metadata_leaks(outcome) == {"git:commit"}
    outcome.assert_silent_about(repo.secret)


def test_tag_names_and_annotated_tag_messages_are_scanned(repo: Repo) -> None:
    git(repo.path, "tag", f"release-{repo.secret}")
    outcome = verify(repo, "--history")
    assert outcome.code == 1
    assert _metadata_leaks(outcome) == {"git:refs"}
    outcome.assert_silent_about(repo.secret)
    git(repo.path, "tag", "-d", f"release-{repo.secret}")
    git(repo.path, "tag", "-a", "v1.0", "-m", f"Shipped to {repo.hashed}")
    annotated = verify(repo, "--history")
    assert annotated.code == 1
    assert _metadata_leaks(annotated) == {"git:tag"}
    annotated.assert_silent_about(repo.hashed)


def test_branch_and_other_ref_names_are_scanned(repo: Repo) -> None:
    git(repo.path, "branch", f"feature/{repo.secret}-import")
    outcome = verify(repo, "--history")
    assert outcome.code == 1
    assert _metadata_leaks(outcome) == {"git:refs"}
    outcome.assert_silent_about(repo.secret)
    git(repo.path, "branch", "-D", f"feature/{repo.secret}-import")
    git(repo.path, "update-ref", f"refs/custom/{repo.hashed}", "HEAD")
    other = verify(repo, "--history")
    assert other.code == 1
    assert _metadata_leaks(other) == {"git:refs"}


def test_blobs_and_trees_named_by_tags_are_scanned(repo: Repo) -> None:
    blob = subprocess.run(
        ["git", "-C", str(repo.path), "hash-object", "-w", "--stdin"],
        input=f"stashed {repo.secret}\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    git(repo.path, "tag", "loose-blob", blob)
    outcome = verify(repo, "--history")
    assert outcome.code == 1
    assert leak_paths(outcome) == {"git:refs/tags/loose-blob"}
    git(repo.path, "tag", "-d", "loose-blob")
    repo.write(f"kept/{repo.hashed}.txt", "x\n")
    git(repo.path, "add", "-A")
    tree = git(repo.path, "write-tree")
    git(repo.path, "reset", "-q", "--hard")
    git(repo.path, "tag", "-a", "-m", "a tree", "loose-tree", tree)
    tagged = verify(repo, "--history")
    assert tagged.code == 1
    assert "git:refs/tags/loose-tree:kept/[redacted].txt" in leak_paths(tagged)
    tagged.assert_silent_about(repo.secret, repo.hashed)


def test_notes_are_scanned(repo: Repo) -> None:
    git(repo.path, "notes", "add", "-m", f"reviewed with {repo.secret}", "HEAD")
    outcome = verify(repo, "--history")
    assert outcome.code == 1
    assert outcome.json["leaks"], outcome.text
    outcome.assert_silent_about(repo.secret)


def test_a_commit_message_in_latin1_is_decoded(repo: Repo) -> None:
    identifier = "Zürich" + _word(6)
    repo.denylist.write_text(f"{identifier}\n")
    git(repo.path, "config", "i18n.commitEncoding", "ISO-8859-1")
    message = repo.path.parent / "msg.txt"
    message.write_bytes(f"Deploy {identifier}\n".encode("latin-1"))
    git(repo.path, "commit", "-q", "--allow-empty", "-F", str(message))
    outcome = verify(repo, "--history")
    assert outcome.code == 1
    assert _metadata_leaks(outcome) == {"git:commit"}
    outcome.assert_silent_about(identifier)


@pytest.mark.parametrize("encoding", ["idna", "rot13", "no-such-codec", "utf-16"])
def test_a_commit_with_a_hostile_encoding_header_is_still_scanned(
    repo: Repo, encoding: str
) -> None:
    git(repo.path, "config", "i18n.commitEncoding", encoding)
    git(repo.path, "commit", "-q", "--allow-empty", "-m", f"ship {repo.secret} now")
    outcome = verify(repo, "--history")
    assert outcome.code == 1
    assert _metadata_leaks(outcome) == {"git:commit"}
    outcome.assert_silent_about(repo.secret)


def test_commit_msg_hook_blocks_the_message(repo: Repo) -> None:
    message = repo.path / ".git" / "COMMIT_EDITMSG"
    message.write_text(f"Add the {repo.hashed} exporter\n\n# Please enter the message\n")
    outcome = verify(repo, "--commit-msg", str(message))
    assert outcome.code == 1
    [leak] = outcome.json["leaks"]
    assert (leak["code"], leak["path"], leak["line"]) == (
        "BOUNDARY_METADATA_LEAK",
        "git:commit-message",
        1,
    )
    outcome.assert_silent_about(repo.hashed)
    # Comment lines and the verbose diff below the scissors are not part of the message.
    message.write_text(
        "Remove a stale file\n\n"
        f"# deleted: {repo.secret}.txt\n"
        "# ------------------------ >8 ------------------------\n"
        f"-{repo.secret}\n"
    )
    assert verify(repo, "--commit-msg", str(message)).code == 0


def test_commit_msg_hook_checks_the_identity(repo: Repo) -> None:
    message = repo.path / ".git" / "COMMIT_EDITMSG"
    message.write_text("An ordinary message\n")
    outcome = verify(
        repo,
        "--commit-msg",
        str(message),
        env={"GIT_AUTHOR_EMAIL": f"dev@{repo.secret}.example"},
    )
    assert outcome.code == 1
    assert leak_paths(outcome) == {"git:identity"}
    outcome.assert_silent_about(repo.secret)


def test_pre_commit_hooks_list_commit_msg_and_pre_push() -> None:
    hooks = (Path(__file__).resolve().parents[2] / ".pre-commit-hooks.yaml").read_text()
    assert "entry: cmf boundary verify --no-progress --commit-msg\n" in hooks
    assert "stages: [commit-msg]" in hooks
    assert "entry: cmf boundary verify --pre-push" in hooks


@pytest.fixture
def pushed(repo: Repo, tmp_path: Path) -> tuple[Repo, str]:
    """A repository whose `origin` already has one commit holding an (old, public) leak."""
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True, capture_output=True)
    git(repo.path, "remote", "add", "origin", str(remote))
    repo.write("old.txt", f"{repo.secret}\n")
    published = repo.commit("published long ago")
    git(repo.path, "push", "-q", "origin", "main")
    return repo, published


def test_push_scope_scans_exactly_what_the_push_publishes(pushed: tuple[Repo, str]) -> None:
    repo, _published = pushed
    repo.write("new.txt", f"now {repo.hashed}\n")
    repo.commit("add new")
    outcome = verify(repo, "--push", "main")
    assert outcome.code == 1
    assert leak_paths(outcome) == {"new.txt"}  # old.txt is already on the remote
    outcome.assert_silent_about(repo.secret, repo.hashed)


def test_push_scope_finds_messages_and_tag_names(pushed: tuple[Repo, str]) -> None:
    repo, _published = pushed
    sha = repo.commit(f"mention {repo.secret}")
    outcome = verify(repo, "--push", "main")
    assert outcome.code == 1
    assert leak_paths(outcome) == {f"git:commit/{sha}"}
    git(repo.path, "commit", "-q", "--amend", "--allow-empty", "-m", "clean message")
    git(repo.path, "tag", "-a", f"v-{repo.hashed}", "-m", "tag")
    tagged = verify(repo, "--push", f"v-{repo.hashed}")
    assert tagged.code == 1
    assert "git:refs" in leak_paths(tagged)
    tagged.assert_silent_about(repo.hashed)


def test_push_scope_reads_whole_file_names(pushed: tuple[Repo, str]) -> None:
    repo, _published = pushed
    repo.write(f"docs/a\n{repo.hashed}.md", "clean\n")
    repo.write("b\nc.txt", f"{repo.secret} inside\n")
    repo.commit("names with line breaks")
    outcome = verify(repo, "--push", "main")
    assert outcome.code == 1
    assert leak_paths(outcome) == {"docs/a\\n[redacted].md", "b\\nc.txt"}
    outcome.assert_silent_about(repo.secret, repo.hashed)


def test_pre_push_reads_git_stdin(pushed: tuple[Repo, str]) -> None:
    repo, published = pushed
    # Not the content of old.txt: a blob the remote already holds is not sent again.
    repo.write("leak.md", f"# new\n{repo.secret}\n")
    head = repo.commit("new work")
    line = f"refs/heads/main {head} refs/heads/main {published}\n"
    outcome = verify(repo, "--pre-push", input=line)
    assert outcome.code == 1
    assert leak_paths(outcome) == {"leak.md"}
    deletion = f"(delete) {'0' * 40} refs/heads/old {published}\n"
    assert verify(repo, "--pre-push", input=deletion).code == 0
    bad = verify(repo, "--pre-push", input="refs/heads/main nonsense\n")
    assert bad.code == 2
    # Run from pre-commit: no stdin, the push described in variables.
    env = {"PRE_COMMIT_TO_REF": head, "PRE_COMMIT_FROM_REF": published}
    assert leak_paths(verify(repo, "--pre-push", input="", env=env)) == {"leak.md"}
    broken = verify(repo, "--pre-push", input="", env={"PRE_COMMIT_TO_REF": "HEAD"})
    assert broken.code == 2


# ---- class 5: the verifier's own output ----


def test_paths_holding_an_identifier_are_redacted_everywhere(repo: Repo) -> None:
    repo.write(f"tests/{repo.secret}/test_export.py", f"# {repo.secret}\n")
    repo.write(f"docs/{repo.hashed}.md", "# notes\n")
    repo.write(f"big/{repo.secret}.bin", b"\0" * 9000)
    repo.write(f"dist/{repo.secret}.zip", _zip({"a.zip": _zip({"b.zip": _zip({"c.txt": b"x"})})}))
    repo.commit()
    outcome = verify(repo, "--max-file-size", "8192", "--max-archive-depth", "2")
    assert outcome.code == 1
    assert {"BOUNDARY_FILE_TOO_LARGE", "BOUNDARY_UNSCANNED"} <= outcome.codes()
    assert "tests/[redacted]/test_export.py" in leak_paths(outcome)
    assert "docs/[redacted].md" in leak_paths(outcome)
    outcome.assert_silent_about(repo.secret, repo.hashed)


@pytest.mark.parametrize(
    "template", ["tests/test_{}.py", "src/{}_client/api.py", "data/export_{}_2024.csv"]
)
def test_identifiers_joined_by_underscores_in_paths_are_redacted(repo: Repo, template: str) -> None:
    name = template.format(repo.secret)
    repo.write(name, f"# {repo.hashed}\n")
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    assert template.format("[redacted]") in leak_paths(outcome)
    outcome.assert_silent_about(repo.secret, repo.hashed)


def test_a_submodule_path_is_checked(repo: Repo, tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    _init(sub)
    (sub / "f.txt").write_text("x\n")
    git(sub, "add", "-A")
    git(sub, "commit", "-q", "-m", "sub")
    sha = git(sub, "rev-parse", "HEAD")
    # A gitlink entry without .gitmodules: only the tree entry names the identifier.
    git(repo.path, "update-index", "--add", "--cacheinfo", f"160000,{sha},vendor/{repo.secret}")
    git(repo.path, "commit", "-q", "-m", "vendor")
    for scope in ([], ["--history"]):
        outcome = verify(repo, *scope)
        assert outcome.code == 1
        assert leak_paths(outcome) == {"vendor/[redacted]"}
        outcome.assert_silent_about(repo.secret)


def test_private_path_globs_are_not_printed(repo: Repo) -> None:
    pack = f"cmf_{_word(6)}_pack"
    repo.denylist.write_text(f"path: **/{pack}/**\n")
    repo.write(f"src/{pack}/scoring.py", "X = 1\n")
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    assert leak_paths(outcome) == {"src/[redacted]/scoring.py"}
    outcome.assert_silent_about(pack)


def test_plaintext_rules_are_named_by_position_not_by_a_public_hash(repo: Repo) -> None:
    import hashlib

    repo.denylist.write_text(f"# private list\n{repo.secret}\n")
    repo.write("a.txt", f"{repo.secret}\n")
    repo.commit()
    outcome = verify(repo)
    [leak] = outcome.json["leaks"]
    assert leak["rule_id"] == "private-denylist.txt:2"
    # The former fixed public salt let anyone confirm a guess against a report.
    old = hashlib.sha256(f"cmf-boundary-v1-report\x00literal\x00{repo.secret}".encode())
    for output in outcome.outputs:
        assert old.hexdigest()[:12] not in output


def test_allowlist_warnings_do_not_print_their_globs(repo: Repo) -> None:
    allow = repo.path.parent / "private-allow.toml"
    allow.write_text(
        f'[[allow]]\npath = "docs/{repo.secret}/**"\nrule = "x"\nreason = "r"\n'
        "expires = 2999-01-01\n\n"
        f'[[allow]]\npath = "{repo.hashed}/*"\nrule = "y"\nreason = "r"\nexpires = 2000-01-01\n'
    )
    outcome = verify(repo, "--allowlist", str(allow))
    assert outcome.code == 1  # the expired entry is an error
    assert {"BOUNDARY_ALLOWLIST_UNUSED", "BOUNDARY_ALLOWLIST_EXPIRED"} <= outcome.codes()
    outcome.assert_silent_about(repo.secret, repo.hashed)


def test_a_malformed_hashed_denylist_does_not_echo_its_content(repo: Repo) -> None:
    data = json.loads((repo.path / "boundary-denylist.json").read_text())
    data["hashes"] = [f"{repo.secret}-{repo.hashed}"]
    data.update({key: {} for key, value in data.items() if isinstance(value, dict)})
    (repo.path / "boundary-denylist.json").write_text(json.dumps(data))
    outcome = verify(repo)
    assert outcome.code == 2
    assert "boundary-denylist.json" in outcome.outputs[1]
    outcome.assert_silent_about(repo.secret, repo.hashed, repo.secret[:6], repo.hashed[:6])


# ---- class 7: configuration mistakes ----


def _hash(args: list[str]) -> object:
    return runner.invoke(app, ["boundary", "hash-denylist", *args])


def test_hash_denylist_reads_the_denylist_format(repo: Repo, tmp_path: Path) -> None:
    pack = f"cmf_{_word(6)}_pack"
    host = f"schemas.{_word(6)}.example"
    schema_id = f"https://{host}/private/loan-book.json"
    identifiers = tmp_path / "ids.txt"
    identifiers.write_text(
        f"{repo.secret}\t# customer\npath: **/{pack}/**  # pack\nschema: {schema_id}\n"
    )
    output = repo.path / "boundary-denylist.json"
    result = _hash([str(identifiers), "-o", str(output)])
    assert result.exit_code == 0, result.output
    repo.denylist.write_text(f"{_word()}\n")
    repo.write(f"src/{pack}/x.py", "X = 1\n")
    repo.write("schema.json", f'{{"$id": "{schema_id}"}}\n')
    repo.write("notes.txt", f"{repo.secret}\n")
    repo.commit()
    outcome = verify(repo)
    assert outcome.code == 1
    assert {"schema.json", "notes.txt", "src/[redacted]/x.py"} <= leak_paths(outcome)
    outcome.assert_silent_about(repo.secret, pack, host)


def test_hash_denylist_errors_name_file_and_line(tmp_path: Path) -> None:
    secret = _word()
    identifiers = tmp_path / "ids.txt"
    # A hashed rule starts and ends where a word does: one ending in a separator never matches.
    identifiers.write_text(f"fine\n{secret}-\n")
    result = _hash([str(identifiers), "-o", str(tmp_path / "out.json")])
    assert result.exit_code == 2
    assert f"{identifiers}:2:" in result.output
    assert secret not in result.output
    for line in ("path: **/*", "path:", "schema:", "schema: https://"):
        identifiers.write_text(f"fine\n{line}\n")
        result = _hash([str(identifiers), "-o", str(tmp_path / "out.json")])
        assert result.exit_code == 2, line
        assert f"{identifiers}:2:" in result.output


@pytest.mark.parametrize(("salt", "message"), [("", "--salt is empty"), ("short", "shorter")])
def test_empty_or_short_salt_is_an_error(tmp_path: Path, salt: str, message: str) -> None:
    identifiers = tmp_path / "ids.txt"
    identifiers.write_text(f"{_word()}\n")
    result = _hash([str(identifiers), "-o", str(tmp_path / "out.json"), "--salt", salt])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "out.json").exists()


def test_hash_denylist_never_overwrites_its_input(tmp_path: Path) -> None:
    identifiers = tmp_path / "ids.txt"
    identifiers.write_text(f"{_word()}\n")
    before = identifiers.read_text()
    result = _hash([str(identifiers), "-o", str(identifiers)])
    assert result.exit_code == 2
    assert identifiers.read_text() == before


def test_since_names_the_revision_it_cannot_resolve(repo: Repo) -> None:
    outcome = verify(repo, "--since", "origin/no-such-branch")
    assert outcome.code == 2
    assert "'origin/no-such-branch' could not be resolved" in outcome.outputs[1]


@pytest.mark.parametrize("glob", ["**", "*", "**/*", "/**"])
def test_a_blanket_allowlist_entry_is_refused(repo: Repo, glob: str) -> None:
    repo.write("a.txt", f"{repo.secret}\n")
    repo.commit()
    (repo.path / "boundary-allowlist.toml").write_text(
        f'[[allow]]\npath = "{glob}"\nrule = "*"\nreason = "quiet"\nexpires = 2999-01-01\n'
    )
    outcome = verify(repo)
    assert outcome.code == 2
    assert "boundary-allowlist.toml:1:" in outcome.outputs[1]
    assert verify(repo, "--allow-blanket-allowlist").code == 0


@pytest.mark.parametrize(
    "args",
    [["--exclude", "[z-a]"], ["--path-glob", "[z-a]"], ["--exclude", "!"], ["--path-glob", "\\"]],
)
def test_an_invalid_glob_is_exit_2(repo: Repo, args: list[str]) -> None:
    outcome = verify(repo, *args)
    assert outcome.code == 2
    assert "invalid glob" in outcome.outputs[1]


def test_invalid_glob_in_a_private_denylist_is_exit_2_without_echo(repo: Repo) -> None:
    repo.denylist.write_text(f"path: {repo.secret}/[z-a]\n")
    outcome = verify(repo)
    assert outcome.code == 2
    outcome.assert_silent_about(repo.secret)


def test_invalid_glob_in_the_allowlist_is_exit_2(repo: Repo) -> None:
    (repo.path / "boundary-allowlist.toml").write_text(
        '[[allow]]\npath = "[z-a]"\nrule = "x"\nreason = "r"\nexpires = 2999-01-01\n'
    )
    outcome = verify(repo)
    assert outcome.code == 2
    assert "boundary-allowlist.toml:1:" in outcome.outputs[1]


def test_file_names_with_newlines_are_escaped_and_attributed(repo: Repo) -> None:
    forged = f"a\n{repo.secret}.txt"
    repo.write(forged, "clean\n")
    repo.write("b\nsrc/app.py:1:1: BOUNDARY_LEAK rule forged.txt", f"x {repo.hashed}\n")
    repo.write("clean\nname.txt", "nothing\n")
    repo.commit()
    for scope in ([], ["--history"], ["--all-files"]):
        outcome = verify(repo, *scope)
        assert outcome.code == 1
        paths = leak_paths(outcome)
        assert "a\\n[redacted].txt" in paths, (scope, paths)
        assert "b\\nsrc/app.py:1:1: BOUNDARY_LEAK rule forged.txt" in paths
        assert not any("clean" in path for path in paths)
        for line in outcome.text.splitlines():
            assert not line.startswith("src/app.py")
        outcome.assert_silent_about(repo.secret, repo.hashed)
