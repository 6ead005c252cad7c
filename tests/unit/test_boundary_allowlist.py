"""The boundary allowlist: path + rule + reason + expiry; expired entries are findings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from customer_model_factory.boundary import AllowEntry, Allowlist, load_allowlist
from customer_model_factory.boundary.scanner import _allowlist_findings
from customer_model_factory.errors import ConfigError, DataFormatError

TODAY = dt.date(2026, 6, 1)


def _entry(**fields: object) -> AllowEntry:
    base: dict[str, object] = {
        "path": "docs/*.md",
        "rule": "customer-a",
        "reason": "historic release notes",
        "expires": dt.date(2026, 12, 31),
    }
    return AllowEntry.model_validate(base | fields)


def test_entry_matches_path_glob_and_rule() -> None:
    entry = _entry()
    assert entry.matches("docs/notes.md", "customer-a")
    assert not entry.matches("docs/notes.md", "customer-b")
    assert not entry.matches("src/notes.md", "customer-a")
    assert _entry(rule="*").matches("docs/x.md", "anything")


def test_expired_entries_stop_covering_and_become_error_findings() -> None:
    allowlist = Allowlist(
        source="boundary-allowlist.toml",
        entries=(_entry(expires=dt.date(2026, 5, 31)), _entry(path="src/*.py")),
    )
    assert allowlist.covering("docs/a.md", "customer-a", TODAY) is None
    assert allowlist.covering("src/a.py", "customer-a", TODAY) == 1
    assert allowlist.covering("docs/a.md", "customer-a", dt.date(2026, 5, 31)) == 0
    findings = _allowlist_findings(allowlist, TODAY, used={1})
    assert [(f.code, f.severity) for f in findings] == [("BOUNDARY_ALLOWLIST_EXPIRED", "error")]
    assert "2026-05-31" in findings[0].message
    unused = _allowlist_findings(allowlist, dt.date(2026, 1, 1), used=set())
    assert {f.code for f in unused} == {"BOUNDARY_ALLOWLIST_UNUSED"}


def test_load_allowlist_reads_toml_dates(tmp_path: Path) -> None:
    path = tmp_path / "boundary-allowlist.toml"
    path.write_text(
        '[[allow]]\npath = "docs/*.md"\nrule = "*"\nreason = "old notes"\nexpires = 2027-01-31\n'
    )
    allowlist = load_allowlist(path)
    assert allowlist.entries[0].expires == dt.date(2027, 1, 31)
    assert allowlist.source == str(path)


def test_load_allowlist_names_the_line_and_field_of_a_bad_entry(tmp_path: Path) -> None:
    path = tmp_path / "allow.toml"
    path.write_text(
        '[[allow]]\npath = "a"\nrule = "*"\nreason = "r"\nexpires = 2027-01-31\n\n'
        '[[allow]]\npath = "b"\nrule = "*"\nexpires = 2027-01-31\n'
    )
    with pytest.raises(ConfigError, match=r"allow\.toml:7: field 'reason': Field required"):
        load_allowlist(path)
    path.write_text('[[allow]]\npath = "a"\nrule = "*"\nreason = "r"\nexpires = "soon"\n')
    with pytest.raises(ConfigError, match="field 'expires'"):
        load_allowlist(path)
    path.write_text("[[allow]\n")
    with pytest.raises(DataFormatError, match="not TOML"):
        load_allowlist(path)
    path.write_text("[other]\nx = 1\n")
    with pytest.raises(ConfigError, match="unknown table 'other'"):
        load_allowlist(path)
    with pytest.raises(DataFormatError, match="not found"):
        load_allowlist(tmp_path / "missing.toml")
