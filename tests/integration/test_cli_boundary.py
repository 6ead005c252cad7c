"""``cmf boundary``: verify (exit codes, formats, rule sources, plugins) and hash-denylist."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from customer_model_factory.boundary import hash_identifier, load_hashed_denylist
from customer_model_factory.boundary.scanner import collect_pack_identifiers
from customer_model_factory.cli import app

runner = CliRunner()
SARIF_SCHEMA = Path(__file__).resolve().parents[1] / "data" / "sarif-schema-2.1.0.json"


def _word(n: int = 8) -> str:
    return "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(n))


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _verify_with_plugin(plugin: Path, repo: Path, *extra: str) -> subprocess.CompletedProcess:
    """``cmf --plugin PLUGIN boundary verify`` in a fresh interpreter (plugins load at start-up)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "customer_model_factory",
            "--plugin",
            str(plugin),
            "boundary",
            "verify",
            "--root",
            str(repo),
            "--no-progress",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    _git(root, "config", "user.name", "Test")
    _git(root, "config", "user.email", "test@example.invalid")
    (root / "README.md").write_text("# Public project\n")
    _git(root, "add", "-A")
    return root


def _verify(repo: Path, *args: str):
    return runner.invoke(
        app, ["boundary", "verify", "--root", str(repo), "--no-plugins", "--no-progress", *args]
    )


def test_clean_tree_exits_0(repo: Path, tmp_path: Path) -> None:
    deny = tmp_path / "deny.txt"
    deny.write_text(_word() + "\n")
    result = _verify(repo, "--denylist", str(deny))
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("clean")


def test_leak_exits_1_with_a_redacted_located_line(repo: Path, tmp_path: Path) -> None:
    word = _word()
    (repo / "src.py").write_text(f"x = 1\ny = '{word}'\n")
    _git(repo, "add", "-A")
    deny = tmp_path / "deny.txt"
    deny.write_text(f"{word}  # customer-a\n")
    result = _verify(repo, "--denylist", str(deny))
    assert result.exit_code == 1
    assert "src.py:2:6: BOUNDARY_LEAK rule customer-a" in result.output
    assert word not in result.output
    shown = _verify(repo, "--denylist", str(deny), "--show-matches")
    assert word in shown.output


def test_formats_json_and_sarif_to_a_file(repo: Path, tmp_path: Path) -> None:
    word = _word()
    (repo / "a.md").write_text(f"{word}\n")
    _git(repo, "add", "-A")
    deny = tmp_path / "deny.txt"
    deny.write_text(f"{word}\n")
    result = _verify(repo, "--denylist", str(deny), "--format", "json")
    data = json.loads(result.stdout)
    assert result.exit_code == 1
    assert data["leaks"][0]["path"] == "a.md"
    assert data["engine"] in ("hyperscan", "ahocorasick", "re")
    out = tmp_path / "report.sarif"
    result = _verify(repo, "--denylist", str(deny), "--format", "sarif", "-o", str(out))
    assert result.exit_code == 1
    sarif = json.loads(out.read_text())
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text())).validate(sarif)
    assert sarif["runs"][0]["results"][0]["ruleId"] == "BOUNDARY_LEAK"
    assert word not in out.read_text()


def test_json_report_and_hashed_denylist_match_their_published_schemas(
    repo: Path, tmp_path: Path, committed_schema
) -> None:
    word = _word()
    (repo / "a.md").write_text(f"{word}\n")
    _git(repo, "add", "-A")
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{word}  # label-a\n{_word()} {_word()}\n")
    hashed = tmp_path / "hashed.json"
    assert (
        runner.invoke(app, ["boundary", "hash-denylist", str(ids), "-o", str(hashed)]).exit_code
        == 0
    )
    committed_schema("boundary-hashed-denylist", json.loads(hashed.read_text()))
    result = _verify(repo, "--hashed-denylist", str(hashed), "-f", "json")
    data = json.loads(result.stdout)
    committed_schema("boundary-report", data)
    assert data["clean"] is False
    assert data["leaks"][0]["rule_id"] == "label-a"


def test_hash_denylist_without_fingerprints_still_finds_every_leak(
    repo: Path, tmp_path: Path
) -> None:
    word = _word()
    (repo / "a.md").write_text(f"{word}\n")
    _git(repo, "add", "-A")
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{word}\n")
    reports = []
    for flag in ("--fingerprints", "--no-fingerprints"):
        hashed = tmp_path / f"hashed{flag}.json"
        result = runner.invoke(
            app, ["boundary", "hash-denylist", str(ids), "-o", str(hashed), flag]
        )
        assert result.exit_code == 0
        published = json.loads(hashed.read_text())["fingerprints"]
        assert bool(published) is (flag == "--fingerprints")
        verdict = _verify(repo, "--hashed-denylist", str(hashed), "-f", "json")
        assert verdict.exit_code == 1
        reports.append(
            [(k["path"], k["line"], k["col"]) for k in json.loads(verdict.stdout)["leaks"]]
        )
    assert reports[0] == reports[1] == [("a.md", 1, 1)]


def test_progress_bar_can_be_forced_and_reports_every_file(repo: Path, tmp_path: Path) -> None:
    from customer_model_factory.boundary import VerifyOptions, gather_rules, verify

    for name in ("b.md", "c.md"):
        (repo / name).write_text("text\n")
    _git(repo, "add", "-A")
    deny = tmp_path / "deny.txt"
    deny.write_text(_word() + "\n")
    calls: list[tuple[int, int]] = []
    report = verify(
        gather_rules(repo, denylists=[deny]),
        VerifyOptions(root=repo),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert report.clean
    assert calls[-1] == (3, 3)
    result = _verify(repo, "--denylist", str(deny), "--progress")
    assert result.exit_code == 0, result.output


def test_every_engine_gives_the_same_answer(repo: Path, tmp_path: Path) -> None:
    word = _word()
    (repo / "a.md").write_text(f"{word.upper()}\nx{word}\n")
    _git(repo, "add", "-A")
    deny = tmp_path / "deny.txt"
    deny.write_text(f"{word}\n")
    outputs = set()
    for engine in ("auto", "ahocorasick", "re"):
        result = _verify(repo, "--denylist", str(deny), "--engine", engine, "-f", "json")
        assert result.exit_code == 1
        outputs.add(json.dumps(json.loads(result.stdout)["leaks"]))
    assert len(outputs) == 1


def test_default_hashed_denylist_and_allowlist_at_the_root(repo: Path, tmp_path: Path) -> None:
    word, other = _word(), _word()
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{word}  # customer-h\n{other}\n")
    made = runner.invoke(
        app, ["boundary", "hash-denylist", str(ids), "-o", str(repo / "boundary-denylist.json")]
    )
    assert made.exit_code == 0, made.output
    committed = (repo / "boundary-denylist.json").read_text()
    assert word not in committed
    assert other not in committed
    (repo / "notes.md").write_text(f"see {word}\n")
    (repo / "docs.md").write_text(f"see {other}\n")
    _git(repo, "add", "-A")
    result = _verify(repo)
    assert result.exit_code == 1
    assert "notes.md:1:5: BOUNDARY_LEAK rule customer-h (hashed" in result.output
    assert "docs.md:1:5" in result.output
    (repo / "boundary-allowlist.toml").write_text(
        '[[allow]]\npath = "*.md"\nrule = "*"\nreason = "fixture"\nexpires = 2030-01-01\n'
    )
    result = _verify(repo, "--today", "2029-12-31")
    assert result.exit_code == 0, result.output
    assert "2 allowlisted" in result.output
    result = _verify(repo, "--today", "2030-01-02")
    assert result.exit_code == 1
    assert "BOUNDARY_ALLOWLIST_EXPIRED" in result.output


def test_hash_denylist_uses_the_published_scheme(tmp_path: Path) -> None:
    word = _word()
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{word}-{word}\n")
    out = tmp_path / "d.json"
    result = runner.invoke(
        app,
        [
            "boundary",
            "hash-denylist",
            str(ids),
            "-o",
            str(out),
            "--salt",
            "fixed-salt",
            "--separator-insensitive",
        ],
    )
    assert result.exit_code == 0
    denylist = load_hashed_denylist(out)
    assert denylist.hashes == (
        hash_identifier(f"{word}{word}", "fixed-salt", separator_insensitive=True),
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--denylist", "{tmp}/missing.txt"], "missing.txt: denylist not found"),
        (["--hashed-denylist", "{tmp}/bad.json"], "bad.json: hashed denylist is not JSON"),
        (
            ["--since", "no-such-rev", "--path-glob", "*.x"],
            "revision 'no-such-rev' could not be resolved",
        ),
        (["--staged", "--history"], "choose one of"),
        (["--today", "yesterday"], "not a YYYY-MM-DD date"),
    ],
)
def test_bad_configuration_exits_2_with_one_line(
    repo: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "bad.json").write_text("{")
    result = _verify(repo, *[arg.format(tmp=tmp_path) for arg in args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_allowlist_exits_2_naming_the_line(repo: Path) -> None:
    (repo / "boundary-allowlist.toml").write_text('[[allow]]\npath = "x"\nrule = "*"\n')
    result = _verify(repo, "--path-glob", "*.secret")
    assert result.exit_code == 2
    assert "boundary-allowlist.toml:1: field 'reason'" in result.output


def test_path_glob_and_schema_id_options(repo: Path) -> None:
    schema_id = f"urn:{_word()}:private-schema"
    (repo / "private_pack").mkdir()
    (repo / "private_pack" / "m.py").write_text("X = 1\n")
    (repo / "s.json").write_text(json.dumps({"$id": schema_id}) + "\n")
    _git(repo, "add", "-A")
    result = _verify(repo, "--path-glob", "**/private_pack/**", "--schema-id", schema_id)
    assert result.exit_code == 1
    assert "[redacted]/m.py: BOUNDARY_PATH_GLOB" in result.output
    assert "private_pack" not in result.output
    assert "s.json:1:10: BOUNDARY_LEAK" in result.output
    excluded = _verify(
        repo,
        "--path-glob",
        "**/private_pack/**",
        "--exclude",
        "private_pack/",
        "--exclude",
        "*.json",
    )
    assert excluded.exit_code == 0, excluded.output


def test_no_rules_is_a_configuration_error_not_a_pass(repo: Path) -> None:
    result = _verify(repo)
    assert result.exit_code == 2
    assert "no boundary rule is configured" in result.output


def test_engines_command_lists_re_last() -> None:
    result = runner.invoke(app, ["boundary", "engines"])
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "re"


# ---- rules from packs, through the cmf_proprietary_identifiers hook ----

PLUGIN_SOURCE = """
from customer_model_factory import hookimpl, ProprietaryIdentifiers

CMF_PLUGIN_API = "1.1"


@hookimpl
def cmf_proprietary_identifiers():
    return [ProprietaryIdentifiers(source="{source}", hashed=("{digest}",), salt="{salt}")]
"""

BROKEN_PLUGIN = """
from customer_model_factory import hookimpl

CMF_PLUGIN_API = "1.1"


@hookimpl
def cmf_proprietary_identifiers():
    raise RuntimeError("pack is broken")
"""


def test_pack_hashed_identifiers_are_enforced(repo: Path, tmp_path: Path) -> None:
    from customer_model_factory.plugins import create_plugin_manager

    word, salt = _word(), "salt-" + secrets.token_hex(4)
    plugin = tmp_path / "fake_pack.py"
    plugin.write_text(
        PLUGIN_SOURCE.format(source="fake-pack", digest=hash_identifier(word, salt), salt=salt)
    )
    pm = create_plugin_manager(extra_modules=[str(plugin)], entry_points=False, environ={})
    identifiers, findings = collect_pack_identifiers(pm)
    assert [item.source for item in identifiers] == ["fake-pack"]
    assert findings == []
    (repo / "a.py").write_text(f"# {word}\n")
    _git(repo, "add", "-A")
    result = _verify_with_plugin(plugin, repo)
    assert result.returncode == 1, result.stderr
    assert "a.py:1:3: BOUNDARY_LEAK" in result.stdout
    assert "from pack:fake-pack" in result.stdout
    assert word not in result.stdout


def test_a_failing_pack_fails_the_run_closed(repo: Path, tmp_path: Path) -> None:
    from customer_model_factory.plugins import create_plugin_manager

    plugin = tmp_path / "broken_pack.py"
    plugin.write_text(BROKEN_PLUGIN)
    pm = create_plugin_manager(extra_modules=[str(plugin)], entry_points=False, environ={})
    identifiers, findings = collect_pack_identifiers(pm)
    assert identifiers == []
    assert [f.code for f in findings] == ["PLUGIN_HOOK_FAILED"]
    result = _verify_with_plugin(plugin, repo, "--path-glob", "*.secret")
    assert result.returncode == 1
    assert "PLUGIN_HOOK_FAILED" in result.stdout
