"""The boundary allowlist (``boundary-allowlist.toml``): accepted matches, each with a reason and
an expiry date.

::

    [[allow]]
    path = "docs/history/*.md"      # a gitwildmatch glob of repository paths
    rule = "sha256:1a2b3c4d5e6f"    # a rule id (label or hash prefix) or "*" for every rule
    reason = "release notes name the pack that was open-sourced in 2025"
    expires = 2027-06-30            # a TOML date; after it the entry is itself a finding

An expired entry no longer suppresses anything and is reported as ``BOUNDARY_ALLOWLIST_EXPIRED``.
Content that could not be scanned (``BOUNDARY_FILE_TOO_LARGE``, ``BOUNDARY_UNSCANNED``) is
accepted only by an entry whose ``rule`` is that code, never by ``"*"``. An entry that would
accept every rule everywhere (``rule = "*"`` with a path glob matching every path) is refused
unless the caller allows it explicitly (``--allow-blanket-allowlist``).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from customer_model_factory.errors import ConfigError, DataFormatError

__all__ = ["DEFAULT_ALLOWLIST", "AllowEntry", "Allowlist", "load_allowlist"]

# Paths of every shape: if a glob matches them all, it matches everything.
_PROBE_PATHS: Final = (
    "a",
    ".hidden",
    "README.md",
    "src/pkg/module.py",
    "docs/.config/x.json",
    "deep/a/b/c/d/e/f.txt",
    "git:commit/0123",
    "dist/x.whl!/pkg/mod.py",
)

DEFAULT_ALLOWLIST: Final = "boundary-allowlist.toml"
"""File name of the allowlist read from the scan root when present."""


class AllowEntry(BaseModel):
    """One accepted match: where, which rule, why, and until when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(min_length=1, description="gitwildmatch glob of repository paths.")
    rule: str = Field(min_length=1, description="Rule id (label or hash prefix), or '*'.")
    reason: str = Field(min_length=1, description="Why the match is accepted.")
    expires: dt.date = Field(description="Last day the entry applies; later it is a finding.")

    def matches(self, path: str, rule_id: str, *, exact: bool = False) -> bool:
        """Return whether the entry covers a match of ``rule_id`` in ``path``.

        :param exact: only an entry naming ``rule_id`` itself covers it (``"*"`` does not).
        """
        from customer_model_factory.boundary.scopes import path_spec  # noqa: PLC0415

        if self.rule != rule_id and (exact or self.rule != "*"):
            return False
        return path_spec([self.path], source="allowlist path").match_file(path)

    def is_blanket(self) -> bool:
        """Return whether the entry accepts every rule in every path."""
        from customer_model_factory.boundary.scopes import path_spec  # noqa: PLC0415

        spec = path_spec([self.path], source="allowlist path")
        if self.rule != "*":
            return False
        return all(spec.match_file(path) for path in _PROBE_PATHS)


class Allowlist(BaseModel):
    """The entries of one allowlist file, and the file they came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(default="", description="The allowlist file, as given.")
    entries: tuple[AllowEntry, ...] = Field(default=(), description="Entries in file order.")

    def active(self, today: dt.date) -> list[tuple[int, AllowEntry]]:
        """Return ``(index, entry)`` of the entries that have not expired on ``today``."""
        return [(i, e) for i, e in enumerate(self.entries) if e.expires >= today]

    def expired(self, today: dt.date) -> list[tuple[int, AllowEntry]]:
        """Return ``(index, entry)`` of the entries that expired before ``today``."""
        return [(i, e) for i, e in enumerate(self.entries) if e.expires < today]

    def covering(
        self, path: str, rule_id: str, today: dt.date, *, exact: bool = False
    ) -> int | None:
        """Return the index of the first active entry covering the match, or ``None``.

        :param exact: only entries naming ``rule_id`` (a finding code, say) count, not ``"*"``.
        """
        for index, entry in self.active(today):
            if entry.matches(path, rule_id, exact=exact):
                return index
        return None


def _entry_line(text: str, index: int) -> int | None:
    seen = -1
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() == "[[allow]]":
            seen += 1
            if seen == index:
                return number
    return None


def load_allowlist(path: Path, *, allow_blanket: bool = False) -> Allowlist:
    """Read and validate an allowlist file.

    :param allow_blanket: accept an entry that suppresses every rule in every path.
    :raises DataFormatError: the file is missing or not TOML.
    :raises ConfigError: an entry lacks a field, has an unknown one, a malformed date or an
        invalid glob, or suppresses everything without ``allow_blanket`` (the message names the
        entry's line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFormatError("allowlist not found", path=path) from None
    except UnicodeDecodeError:
        raise DataFormatError("allowlist is not UTF-8 text", path=path) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DataFormatError(f"allowlist is not TOML: {error}", path=path) from None
    unknown = sorted(set(data) - {"allow"})
    if unknown:
        raise ConfigError(f"unknown table {unknown[0]!r}; only [[allow]] entries", path=path)
    raw_entries: Sequence[object] = data.get("allow", [])
    if not isinstance(raw_entries, list):
        raise ConfigError("'allow' must be an array of tables ([[allow]])", path=path)
    entries: list[AllowEntry] = []
    for index, raw in enumerate(raw_entries):
        try:
            entry = AllowEntry.model_validate(raw)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(entry)"
            raise ConfigError(
                first["msg"], path=path, line=_entry_line(text, index), field=where
            ) from None
        line = _entry_line(text, index)
        try:
            blanket = entry.is_blanket()
        except ConfigError:
            raise ConfigError("invalid glob", path=path, line=line, field="path") from None
        if blanket and not allow_blanket:
            raise ConfigError(
                "entry accepts every rule in every path, which turns the verifier off; narrow "
                "its path or rule, or pass --allow-blanket-allowlist",
                path=path,
                line=line,
            )
        entries.append(entry)
    return Allowlist(source=str(path), entries=tuple(entries))
