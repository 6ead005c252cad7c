"""The boundary allowlist (``boundary-allowlist.toml``): accepted matches, each with a reason and
an expiry date.

::

    [[allow]]
    path = "docs/history/*.md"      # a gitwildmatch glob of repository paths
    rule = "sha256:1a2b3c4d5e6f"    # a rule id (label or hash prefix) or "*" for every rule
    reason = "release notes name the pack that was open-sourced in 2025"
    expires = 2027-06-30            # a TOML date; after it the entry is itself a finding

An expired entry no longer suppresses anything and is reported as ``BOUNDARY_ALLOWLIST_EXPIRED``.
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

DEFAULT_ALLOWLIST: Final = "boundary-allowlist.toml"
"""File name of the allowlist read from the scan root when present."""


class AllowEntry(BaseModel):
    """One accepted match: where, which rule, why, and until when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(min_length=1, description="gitwildmatch glob of repository paths.")
    rule: str = Field(min_length=1, description="Rule id (label or hash prefix), or '*'.")
    reason: str = Field(min_length=1, description="Why the match is accepted.")
    expires: dt.date = Field(description="Last day the entry applies; later it is a finding.")

    def matches(self, path: str, rule_id: str) -> bool:
        """Return whether the entry covers a match of ``rule_id`` in ``path``."""
        from customer_model_factory.boundary.scopes import path_spec  # noqa: PLC0415

        if self.rule not in ("*", rule_id):
            return False
        return path_spec([self.path]).match_file(path)


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

    def covering(self, path: str, rule_id: str, today: dt.date) -> int | None:
        """Return the index of the first active entry covering the match, or ``None``."""
        for index, entry in self.active(today):
            if entry.matches(path, rule_id):
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


def load_allowlist(path: Path) -> Allowlist:
    """Read and validate an allowlist file.

    :raises DataFormatError: the file is missing or not TOML.
    :raises ConfigError: an entry lacks a field, has an unknown one, or a malformed date (the
        message names the entry's line).
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
            entries.append(AllowEntry.model_validate(raw))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(entry)"
            raise ConfigError(
                first["msg"], path=path, line=_entry_line(text, index), field=where
            ) from None
    return Allowlist(source=str(path), entries=tuple(entries))
