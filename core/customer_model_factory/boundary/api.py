"""One call per command: :func:`verify_boundary` and :func:`hash_denylist_file`.

``cmf boundary verify`` builds a :class:`BoundaryRequest` from its options, calls
:func:`verify_boundary` and renders the :class:`~.scanner.BoundaryReport`; its exit code is the
report's (``0`` clean, ``1`` leaks or unscanned content), or the ``exit_code`` of the typed error
raised for bad configuration or input (``2``). The library reads no environment variable and no
standard input: the plugin manager and a pre-push hook's ref updates are passed in.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory.boundary.allowlist import DEFAULT_ALLOWLIST, Allowlist, load_allowlist
from customer_model_factory.boundary.decoding import DEFAULT_DECODE_DEPTH, MAX_DECODE_DEPTH
from customer_model_factory.boundary.engines import EngineName
from customer_model_factory.boundary.rules import (
    HashedDenylist,
    make_hashed_denylist,
    read_identifier_lines,
)
from customer_model_factory.boundary.scanner import (
    DEFAULT_MAX_ARCHIVE_DEPTH,
    DEFAULT_MAX_FILE_SIZE,
    BoundaryReport,
    ProgressCallback,
    VerifyOptions,
    collect_pack_identifiers,
    gather_rules,
    verify,
)
from customer_model_factory.boundary.scopes import PushUpdate, Scope, ScopeName, repository_root
from customer_model_factory.errors import ConfigError, InputError

if TYPE_CHECKING:
    import pluggy

__all__ = ["MIN_SALT_LENGTH", "BoundaryRequest", "hash_denylist_file", "verify_boundary"]

MIN_SALT_LENGTH: Final = 8


class BoundaryRequest(BaseModel):
    """Every option of one verification (what ``cmf boundary verify`` accepts)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    root: Path = Field(default=Path(), description="Repository (or directory) to verify.")
    scope: ScopeName = Field(
        default="tracked",
        description="tracked, staged, since, history, push, commit_msg or all_files.",
    )
    since: str | None = Field(default=None, description="Revision of the `since` scope.")
    push: tuple[PushUpdate, ...] = Field(
        default=(), description="Ref updates of the `push` scope (what pre-push reads)."
    )
    push_refs: tuple[str, ...] = Field(
        default=(), description="Local refs of the `push` scope, pushed to new remote refs."
    )
    remote: str | None = Field(
        default=None, description="Remote of the `push` scope (its refs are already public)."
    )
    commit_msg: Path | None = Field(default=None, description="Message file of `commit_msg`.")
    denylists: tuple[Path, ...] = Field(default=(), description="Plaintext denylist files.")
    hashed_denylists: tuple[Path, ...] = Field(
        default=(),
        description="Hashed denylist files, read in addition to boundary-denylist.json at the "
        "repository's top (read whenever present).",
    )
    path_globs: tuple[str, ...] = Field(default=(), description="Path globs that must not exist.")
    schema_ids: tuple[str, ...] = Field(default=(), description="Schema ids that must not occur.")
    separator_insensitive: bool = Field(
        default=False, description="Match plaintext denylist entries ignoring separators."
    )
    allowlist: Path | None = Field(
        default=None,
        description="Allowlist file; None reads boundary-allowlist.toml at the repository's "
        "top when present.",
    )
    allow_blanket_allowlist: bool = Field(
        default=False, description="Accept an allowlist entry that suppresses everything."
    )
    exclude: tuple[str, ...] = Field(default=(), description="Globs of paths not to scan.")
    engine: EngineName = Field(default="auto", description="Plaintext matching engine.")
    max_file_size: int = Field(
        default=DEFAULT_MAX_FILE_SIZE, ge=1, description="Larger files are errors, not scanned."
    )
    max_archive_depth: int = Field(
        default=DEFAULT_MAX_ARCHIVE_DEPTH, ge=1, le=16, description="Archive nesting scanned."
    )
    jobs: int | None = Field(default=None, ge=1, description="Worker processes.")
    show_matches: bool = Field(default=False, description="Keep matched text and real paths.")
    today: dt.date | None = Field(default=None, description="Date allowlist expiry is judged on.")
    denylist_digests: tuple[str, ...] = Field(
        default=(),
        description="sha256 digests the hashed denylists read must have (--denylist-digest).",
    )
    confusables: bool = Field(
        default=False, description="Fold Unicode TR39 confusable characters before matching."
    )
    max_decode_depth: int = Field(
        default=DEFAULT_DECODE_DEPTH,
        ge=0,
        le=MAX_DECODE_DEPTH,
        description="How many nested encodings (percent, escapes, entities, base64) to decode.",
    )
    allow_shallow: bool = Field(
        default=False, description="Accept a shallow clone for `history` (a warning)."
    )


def _push_updates(root: Path, request: BoundaryRequest) -> tuple[PushUpdate, ...]:
    from customer_model_factory.boundary.scopes import ZERO_SHA, resolve_ref  # noqa: PLC0415

    updates = list(request.push)
    for ref in request.push_refs:
        name, sha = resolve_ref(root, ref)
        updates.append(
            PushUpdate(local_ref=name, local_sha=sha, remote_ref=name, remote_sha=ZERO_SHA)
        )
    return tuple(updates)


def _scope(root: Path, request: BoundaryRequest) -> Scope:
    if request.scope == "since" and not request.since:
        raise InputError("the since scope needs a revision (--since REV)")
    if request.scope == "commit_msg" and request.commit_msg is None:
        raise InputError("the commit_msg scope needs a message file (--commit-msg FILE)")
    if request.scope == "push":
        updates = _push_updates(root, request)
        if not updates:
            raise InputError("the push scope needs refs (--push REF, or --pre-push on stdin)")
        return Scope("push", push=updates, remote=request.remote)
    return Scope(request.scope, rev=request.since, message_file=request.commit_msg)


def verify_boundary(
    request: BoundaryRequest,
    *,
    plugin_manager: pluggy.PluginManager | None,
    progress: ProgressCallback | None = None,
) -> BoundaryReport:
    """Gather the rules, load the allowlist, scan the request's scope and return the report.

    Default files (``boundary-denylist.json``, ``boundary-allowlist.toml``) are read from the
    repository's top, wherever in it ``request.root`` points.

    :param plugin_manager: the manager whose packs contribute rules; ``None`` uses no pack.
    :param progress: called with (done, total) as content is scanned.
    :raises ConfigError: no rule at all, a malformed rule source or allowlist, an invalid glob.
    :raises InputError: not a git work tree, an unknown revision, an unreadable message file.
    """
    top = repository_root(request.root, Scope(request.scope))
    scope = _scope(top, request)
    if plugin_manager is not None:
        identifiers, plugin_findings = collect_pack_identifiers(plugin_manager)
    else:
        identifiers, plugin_findings = [], []
    rules = gather_rules(
        top,
        identifiers=identifiers,
        denylists=request.denylists,
        hashed_denylists=request.hashed_denylists,
        path_globs=request.path_globs,
        schema_ids=request.schema_ids,
        separator_insensitive=request.separator_insensitive,
        denylist_digests=request.denylist_digests,
    )
    allowlist_path = request.allowlist
    if allowlist_path is None and (top / DEFAULT_ALLOWLIST).is_file():
        allowlist_path = top / DEFAULT_ALLOWLIST
    allowlist = (
        load_allowlist(allowlist_path, allow_blanket=request.allow_blanket_allowlist)
        if allowlist_path is not None
        else Allowlist()
    )
    options = VerifyOptions(
        root=top,
        scope=scope,
        engine=request.engine,
        max_file_size=request.max_file_size,
        jobs=request.jobs,
        show_matches=request.show_matches,
        exclude=request.exclude,
        today=request.today,
        max_archive_depth=request.max_archive_depth,
        allow_shallow=request.allow_shallow,
        confusables=request.confusables,
        max_decode_depth=request.max_decode_depth,
    )
    return verify(
        rules, options, allowlist=allowlist, extra_findings=plugin_findings, progress=progress
    )


def hash_denylist_file(
    identifiers: Path,
    *,
    salt: str | None = None,
    separator_insensitive: bool = False,
    max_tokens: int | None = None,
    fingerprints: bool = True,
    warn: Callable[[str], None] | None = None,
) -> HashedDenylist:
    """Hash a private identifier list (the plaintext denylist format) into a hashed denylist.

    :param warn: called with one line per guessable identifier (short, a dictionary word, ...),
        naming its file and line and never the identifier.

    :param salt: the salt; ``None`` draws a fresh random one. An empty or short salt is an
        error, never silently replaced.
    :raises ConfigError: the salt is empty or shorter than :data:`MIN_SALT_LENGTH`, or a line of
        the list cannot be hashed (named by file and line).
    """
    if salt is not None and not salt:
        raise ConfigError("--salt is empty; omit it for a fresh random salt")
    if salt is not None and len(salt) < MIN_SALT_LENGTH:
        raise ConfigError(f"--salt is shorter than {MIN_SALT_LENGTH} characters")
    lines: list[int] = []
    names, labels = read_identifier_lines(identifiers, line_numbers=lines)
    if warn is not None:
        from customer_model_factory.boundary.guessability import (  # noqa: PLC0415
            guessability_warnings,
        )

        for warning in guessability_warnings(identifiers, names, lines):
            warn(warning)
    return make_hashed_denylist(
        names,
        salt if salt is not None else secrets.token_hex(16),
        separator_insensitive=separator_insensitive,
        labels=labels,
        max_tokens=max_tokens,
        fingerprints=fingerprints,
    )
