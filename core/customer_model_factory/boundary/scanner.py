"""Run a boundary verification: gather rules, read the scope's files in parallel, match, report.

:func:`gather_rules` merges every rule source (packs, plaintext and hashed denylists, path globs,
schema ids) with their origins; :func:`verify` scans one scope with them and returns a
:class:`BoundaryReport`. Findings name rules by label or position, never by their text; the
matched text is kept only when ``show_matches`` asks for it (CI logs of a public repository are
public), and a path in which a rule matched is shown redacted in every finding.

Nothing that will be published is skipped in silence: content that is not plain text is decoded
or expanded (:mod:`.content`), and what still cannot be scanned (a file above the size limit, an
archive nested too deep) is an error finding, unless an ``--exclude`` glob or an allowlist entry
naming its finding code says otherwise.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from customer_model_factory.boundary.allowlist import DEFAULT_ALLOWLIST, Allowlist, load_allowlist
from customer_model_factory.boundary.content import (
    ContentLimits,
    expand_content,
    is_plain_text,
    legacy_text,
)
from customer_model_factory.boundary.content import strip_utf8_bom as _strip_bom
from customer_model_factory.boundary.decoding import DEFAULT_DECODE_DEPTH
from customer_model_factory.boundary.engines import EngineName, Match, Matcher, resolve_engine
from customer_model_factory.boundary.rules import (
    DEFAULT_HASHED_DENYLIST,
    Rule,
    RuleSet,
    check_denylist_digests,
    load_hashed_denylist,
    read_plain_denylist,
    rules_from_identifiers,
)
from customer_model_factory.boundary.scopes import (
    GIT_SCOPES,
    Scope,
    SourceItem,
    collect_items,
    escape_display,
    git_blob_reader,
    is_shallow,
    path_spec,
)
from customer_model_factory.contributions import ProprietaryIdentifiers
from customer_model_factory.errors import ConfigError
from customer_model_factory.findings import Finding, has_errors, sort_findings

__all__ = [
    "DEFAULT_MAX_ARCHIVE_DEPTH",
    "DEFAULT_MAX_FILE_SIZE",
    "LEAK_CODES",
    "UNSCANNED_CODES",
    "BoundaryReport",
    "Leak",
    "ProgressCallback",
    "VerifyOptions",
    "collect_pack_identifiers",
    "gather_rules",
    "verify",
]

DEFAULT_MAX_FILE_SIZE: Final = 10 * 1024 * 1024
DEFAULT_MAX_ARCHIVE_DEPTH: Final = 4
LEAK_CODES: Final = (
    "BOUNDARY_LEAK",
    "BOUNDARY_METADATA_LEAK",
    "BOUNDARY_PATH_LEAK",
    "BOUNDARY_PATH_GLOB",
)
UNSCANNED_CODES: Final = ("BOUNDARY_FILE_TOO_LARGE", "BOUNDARY_UNSCANNED")
"""Content that will be published but was not scanned: errors, which only an allowlist entry
naming the code (or an ``--exclude`` glob) accepts."""
ProgressCallback = Callable[[int, int], None]
"""Called with (files done, files total) as files are scanned."""

# Below this much data a process pool costs more than it saves.
_PARALLEL_MIN_BYTES: Final = 24 * 1024 * 1024
_CHUNK_BYTES: Final = 4 * 1024 * 1024
_CHUNK_FILES: Final = 1000
_TYPICAL_FILE_BYTES: Final = 8 * 1024
_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
# Forms whose line numbers do not exist in the file (printable runs, archive listings).
_UNLOCATED_FORMS: Final = frozenset({"strings", "listing"})


class Leak(BaseModel):
    """One occurrence of a rule in the scanned tree (redacted unless ``match`` is filled)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Literal[
        "BOUNDARY_LEAK", "BOUNDARY_METADATA_LEAK", "BOUNDARY_PATH_LEAK", "BOUNDARY_PATH_GLOB"
    ] = Field(
        description="In file content, in git metadata, in a file path, or a path matching a "
        "private glob."
    )
    path: str = Field(
        description="Repository-relative POSIX path (an archive member as 'archive!/member', "
        "git metadata as 'git:commit/<id>', 'git:tag/<id>', 'git:refs', 'git:commit-message' "
        "or 'git:identity'), redacted where a rule matched in it and with control characters "
        "escaped."
    )
    line: int | None = Field(default=None, description="1-based line (content leaks).")
    col: int | None = Field(default=None, description="1-based column in characters.")
    form: str = Field(
        default="text",
        description="How the content was read: text, a codec (utf-16-le...), strings (printable "
        "runs of a binary) or listing (archive comments, link targets).",
    )
    rule_id: str = Field(description="The rule's label or hash prefix.")
    rule_kind: str = Field(description="literal, hashed, path_glob or schema_id.")
    origin: str = Field(description="Where the rule comes from.")
    commits: tuple[str, ...] = Field(default=(), description="Commits holding it (history).")
    match: str | None = Field(default=None, description="Matched text (only --show-matches).")
    decoding: str | None = Field(
        default=None,
        description="The decodings that revealed it, outermost first (base64, "
        "percent>base64); null when the identifier is there as written.",
    )


class BoundaryReport(BaseModel):
    """The result of one verification: what was scanned, with which rules, and what leaked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scope: str = Field(description="tracked, staged, since, history or all_files.")
    rev: str | None = Field(default=None, description="The revision of a `since` scan.")
    root: str = Field(description="The directory scanned.")
    engine: str = Field(description="The plaintext matching engine that ran.")
    parallel_workers: int = Field(description="Processes that read and matched files.")
    rules: dict[str, int] = Field(description="Number of rules of each kind.")
    rule_origins: tuple[str, ...] = Field(description="Every rule source, sorted.")
    files_scanned: int = Field(description="Files (or blobs) whose content was matched.")
    bytes_scanned: int = Field(description="Bytes of those files.")
    decoded: dict[str, int] = Field(
        description="Pieces of content that were not plain text and were matched after decoding "
        "or expansion, by form (utf-16-le, strings, text inside archives...)."
    )
    too_large: tuple[str, ...] = Field(description="Files above the size limit, not scanned.")
    unscanned: tuple[str, ...] = Field(
        description="Other content that could not be scanned (an archive too deep, a member too "
        "large, an encrypted member), with the reason."
    )
    suppressed: int = Field(description="Leaks covered by an active allowlist entry.")
    leaks: tuple[Leak, ...] = Field(description="Every leak not covered by the allowlist.")
    findings: tuple[Finding, ...] = Field(description="Leaks and every other finding, sorted.")
    elapsed_s: float = Field(description="Wall time of the scan, in seconds.")

    @computed_field(description="True when no leak and no error finding was reported.")  # type: ignore[prop-decorator]
    @property
    def clean(self) -> bool:
        """True when no leak and no error finding was reported."""
        return not self.leaks and not has_errors(self.findings)

    @property
    def exit_code(self) -> int:
        """0 when clean, 1 when a leak or unscanned content (an error finding) blocks it."""
        return 0 if self.clean else 1


@dataclass(frozen=True)
class VerifyOptions:
    """How to scan: scope, engine, limits, redaction and the date expiries are judged on."""

    root: Path = Path()
    scope: Scope = field(default_factory=Scope)
    engine: EngineName = "auto"
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    jobs: int | None = None
    show_matches: bool = False
    exclude: tuple[str, ...] = ()
    today: dt.date | None = None
    max_archive_depth: int = DEFAULT_MAX_ARCHIVE_DEPTH
    allow_shallow: bool = False
    confusables: bool = False
    max_decode_depth: int = DEFAULT_DECODE_DEPTH


def gather_rules(
    root: Path,
    *,
    identifiers: Iterable[ProprietaryIdentifiers] = (),
    denylists: Sequence[Path] = (),
    hashed_denylists: Sequence[Path] | None = None,
    path_globs: Sequence[str] = (),
    schema_ids: Sequence[str] = (),
    separator_insensitive: bool = False,
    denylist_digests: Sequence[str] = (),
) -> RuleSet:
    """Merge every rule source into one :class:`RuleSet`, each rule recording its origin.

    :param identifiers: the packs' contributions (from ``collect_proprietary_identifiers``).
    :param denylists: plaintext denylist files (kept outside the public tree).
    :param hashed_denylists: hashed denylist files, read in addition to
        ``<root>/boundary-denylist.json``, which is read whenever it exists.
    :param path_globs: extra gitwildmatch globs of paths that must not exist.
    :param schema_ids: extra schema ``$id`` values that must not appear.
    :param separator_insensitive: match plaintext denylist entries separator-insensitively.
    :param denylist_digests: ``sha256:<hex>`` digests the hashed denylists read must have
        (``--denylist-digest``), so an edited or replaced file is refused.
    :raises ConfigError: a rule source is malformed or differs from a pinned digest.
    """
    groups: list[list[Rule]] = [rules_from_identifiers(item) for item in identifiers]
    for path in denylists:
        groups.append(read_plain_denylist(path, separator_insensitive=separator_insensitive))
    default = root / DEFAULT_HASHED_DENYLIST
    files = list(hashed_denylists or ())
    # The committed default always applies, also next to files given explicitly: a CI option
    # must not switch off what the public repository enforces. Present in any form (a dangling
    # link, a directory) means meant to be read: loading it then fails loudly.
    if os.path.lexists(default) and all(
        os.path.abspath(path) != os.path.abspath(default) for path in files
    ):
        files.append(default)
    check_denylist_digests(files, denylist_digests)
    for path in files:
        groups.append(load_hashed_denylist(path).rules(f"hashed-denylist:{path.name}"))
    cli = ProprietaryIdentifiers(
        source="command-line", path_globs=tuple(path_globs), schema_ids=tuple(schema_ids)
    )
    groups.append(rules_from_identifiers(cli))
    merged = RuleSet.merge(groups)
    for rule in merged.of_kind("path_glob"):
        # An invalid glob is bad configuration (exit 2), found before any file is read.
        path_spec([rule.text or ""], source=f"path glob {rule.rule_id} (from {rule.origin})")
    return merged


def collect_pack_identifiers(pm: Any) -> tuple[list[ProprietaryIdentifiers], list[Finding]]:
    """Return the installed packs' identifier rules and every plugin problem of the run.

    A pack that fails to load, declares another plugin API, or whose contribution hook raises
    yields an error finding (the plugin manager's stage findings), so the verification fails
    closed rather than passing without that pack's rules.

    :param pm: the run's plugin manager.
    """
    from customer_model_factory import plugins  # noqa: PLC0415

    identifiers, _ = plugins.collect_proprietary_identifiers(pm)
    return identifiers, pm.stage_findings()


# ---- reading and matching (runs in worker processes too) ----

_WORKER: dict[str, Any] = {}


def _limits(max_size: int, depth: int) -> ContentLimits:
    return ContentLimits(max_depth=depth, max_member_size=max_size, max_total=8 * max_size)


def _init_worker(
    rules: tuple[Rule, ...], engine: str, max_size: int, depth: int, matching: dict[str, Any]
) -> None:
    _WORKER["matcher"] = Matcher(rules, engine, **matching)
    _WORKER["max_size"] = max_size
    _WORKER["limits"] = _limits(max_size, depth)


@dataclass
class _ChunkResult:
    # (item key, suffix inside the file, form, matches)
    matches: list[tuple[str, str, str, list[Match]]] = field(default_factory=list)
    scanned: int = 0
    bytes: int = 0
    decoded: dict[str, int] = field(default_factory=dict)
    too_large: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    # (item key, suffix inside the file, reason)
    unscanned: list[tuple[str, str, str]] = field(default_factory=list)
    member_paths: list[tuple[str, str]] = field(default_factory=list)


def _read_fs(item: SourceItem, limit: int) -> bytes | None:
    """Return the file's bytes (a link's target text), or ``None`` when it is gone.

    Never follows a link and never blocks: a tracked file replaced in the working tree by a
    symlink is read as its target text (as git would commit it), and by a FIFO or a device it
    is an ``OSError`` (reported as unreadable, an error).
    """
    assert item.fs_path is not None
    try:
        if item.link:
            return os.fsencode(os.readlink(item.fs_path))
        fd = os.open(item.fs_path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            return os.fsencode(os.readlink(item.fs_path))
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        # Ask for the size fstat reports (+1 to notice growth, capped one byte past the limit
        # so a too-large file is told by its length): asking for the limit itself would make
        # every read allocate a limit-sized buffer, which costs more than the read.
        want = min(info.st_size, limit) + 1
        data = os.read(fd, want)
        # A read that returns the size fstat reported is the whole file: a second read would
        # only find the end of file (one more system call and one more copy per file).
        if 0 < len(data) < want - 1:
            parts = [data]
            got = len(data)
            while got < want and (more := os.read(fd, want - got)):
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        if len(data) >= want and want <= limit:
            # The file grew since fstat: read on to the end (or just past the limit), so the
            # growth is scanned or the file is reported too large, never cut off.
            parts = [data]
            got = len(data)
            while got <= limit and (more := os.read(fd, limit + 1 - got)):
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        return data
    finally:
        os.close(fd)


def _prepare(result: _ChunkResult, key: str, data: bytes) -> bytes | None:
    """Return plain text to match in a batch; match anything else here, piece by piece."""
    if len(data) > _WORKER["max_size"]:
        result.too_large.append(key)
        return None
    result.scanned += 1
    result.bytes += len(data)
    matcher: Matcher = _WORKER["matcher"]
    if is_plain_text(data):
        legacy = legacy_text(data)
        if legacy is not None:
            result.decoded["cp1252"] = result.decoded.get("cp1252", 0) + 1
            found = matcher.scan(legacy)
            if found:
                result.matches.append((key, "", "cp1252", found))
        return _strip_bom(data)
    expansion = expand_content(data, _WORKER["limits"])
    for piece in expansion.pieces:
        result.decoded[piece.form] = result.decoded.get(piece.form, 0) + 1
        found = matcher.scan(piece.data)
        if found:
            result.matches.append((key, piece.suffix, piece.form, found))
    result.unscanned.extend((key, suffix, reason) for suffix, reason in expansion.problems)
    result.member_paths.extend((key, suffix) for suffix in expansion.member_paths)
    return None


def _scan_content(result: _ChunkResult, key: str, data: bytes) -> None:
    text = _prepare(result, key, data)
    if text is not None:
        found = _WORKER["matcher"].scan(text)
        if found:
            result.matches.append((key, "", "text", found))


def _scan_fs_chunk(items: Sequence[SourceItem]) -> _ChunkResult:
    matcher: Matcher = _WORKER["matcher"]
    result = _ChunkResult()
    batch: list[tuple[str, bytes]] = []
    for item in items:
        if item.size > _WORKER["max_size"] and not item.link:
            result.too_large.append(item.path)
            continue
        try:
            data = _read_fs(item, _WORKER["max_size"])
        except IsADirectoryError:
            continue
        except OSError as error:
            result.unreadable.append((item.path, error.strerror or type(error).__name__))
            continue
        if data is None:
            continue
        text = _prepare(result, item.path, data)
        if text is not None:
            batch.append((item.path, text))
    # Hashed rules: tokenise the whole batch at once; only a batch that hits is rescanned.
    found_per_file = matcher.scan_batch([data for _path, data in batch])
    for (path, _data), found in zip(batch, found_per_file, strict=True):
        if found:
            result.matches.append((path, "", "text", found))
    return result


def _chunk_bounds(items: Sequence[SourceItem]) -> Iterator[tuple[int, int]]:
    """Yield ``(start, end)`` index ranges of about 4 MB or 1000 files each.

    Small chunks let the last ones even out the workers.
    """
    start = 0
    size = 0
    for index, item in enumerate(items):
        size += item.size if item.size > 0 else _TYPICAL_FILE_BYTES
        if size >= _CHUNK_BYTES or index + 1 - start >= _CHUNK_FILES:
            yield start, index + 1
            start, size = index + 1, 0
    if start < len(items):
        yield start, len(items)


def _scan_fs_range(bounds: tuple[int, int]) -> _ChunkResult:
    """Scan a range of the items a forked worker inherited (nothing but two ints is pickled)."""
    start, end = bounds
    return _scan_fs_chunk(_WORKER["items"][start:end])


@dataclass
class _Pool:
    """A process pool, and whether its workers were forked (and so share this process's state)."""

    executor: ProcessPoolExecutor
    forked: bool

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.executor.shutdown()


def _pool(  # noqa: PLR0917
    jobs: int,
    content_rules: tuple[Rule, ...],
    engine: str,
    max_size: int,
    depth: int,
    matching: dict[str, Any],
) -> _Pool:
    import multiprocessing  # noqa: PLC0415
    import threading  # noqa: PLC0415

    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        # Forked workers inherit the compiled matcher and the item list: no re-import, no
        # recompilation, no pickled file lists. Only safe while this process runs a single
        # thread (no lock can be held mid-fork).
        executor = ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context("fork")
        )
        return _Pool(executor, forked=True)
    method = "forkserver" if "forkserver" in methods else "spawn"
    executor = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context(method),
        initializer=_init_worker,
        initargs=(content_rules, engine, max_size, depth, matching),
    )
    return _Pool(executor, forked=False)


def _scan_fs(
    items: Sequence[SourceItem],
    content_rules: tuple[Rule, ...],
    engine: str,
    options: VerifyOptions,
    progress: ProgressCallback | None,
) -> tuple[list[_ChunkResult], int]:
    # Sizes are mostly unknown before reading: estimate from the file count.
    total = sum(item.size if item.size > 0 else _TYPICAL_FILE_BYTES for item in items)
    jobs = options.jobs if options.jobs is not None else (os.cpu_count() or 1)
    results: list[_ChunkResult] = []
    done = 0
    bounds = list(_chunk_bounds(items))
    if jobs > 1 and total >= _PARALLEL_MIN_BYTES and content_rules:
        _WORKER["items"] = items
        try:
            with _pool(
                jobs,
                content_rules,
                engine,
                options.max_file_size,
                options.max_archive_depth,
                _matching(options),
            ) as pool:
                if pool.forked:
                    pending = pool.executor.map(_scan_fs_range, bounds)
                else:
                    pending = pool.executor.map(
                        _scan_fs_chunk, (items[start:end] for start, end in bounds)
                    )
                for (start, end), result in zip(bounds, pending, strict=True):
                    results.append(result)
                    done += end - start
                    if progress is not None:
                        progress(done, len(items))
        finally:
            _WORKER.pop("items", None)
        return results, jobs
    for start, end in bounds:
        results.append(_scan_fs_chunk(items[start:end]))
        done += end - start
        if progress is not None:
            progress(done, len(items))
    return results, 1


def _commit_readings(raw: bytes) -> list[bytes]:
    """A commit or tag object as it is and, when it names an ``encoding``, with its message
    decoded from it to UTF-8. Both are matched: the header is the committer's claim, and a
    false one must not hide the message."""
    head, sep, message = raw.partition(b"\n\n")
    for line in head.split(b"\n"):
        if line.startswith(b"encoding "):
            codec = line[len(b"encoding ") :].decode("ascii", "replace").strip()
            try:
                decoded = message.decode(codec, "replace").encode("utf-8", "surrogatepass")
            except (LookupError, UnicodeError, ValueError):
                return [raw]  # an unknown or broken encoding: the bytes as they are
            return [raw] if decoded == message else [raw, head + sep + decoded]
    return [raw]


def _item_key(item: SourceItem) -> str:
    return item.blob if item.blob and item.data is None else item.path


def _matching(options: VerifyOptions) -> dict[str, Any]:
    """The matcher options of a verification (normalisation and decoding)."""
    return {"confusables": options.confusables, "max_decode_depth": options.max_decode_depth}


def _scan_blobs(
    root: Path, items: Sequence[SourceItem], progress: ProgressCallback | None
) -> tuple[_ChunkResult, dict[str, SourceItem]]:
    """Scan git objects (blobs, commits, tags) and in-memory metadata, keyed by object id."""
    by_key: dict[str, SourceItem] = {_item_key(item): item for item in items}
    result = _ChunkResult()
    in_memory = [item for item in items if item.data is not None]
    objects = [key for key, item in by_key.items() if item.data is None and item.blob]
    total = len(objects) + len(in_memory)
    count = 0
    for item in in_memory:
        assert item.data is not None
        _scan_content(result, item.path, item.data)
        count += 1
        if progress is not None:
            progress(count, total)
    for blob, data in git_blob_reader(root, objects):
        for content in _commit_readings(data) if by_key[blob].metadata else [data]:
            _scan_content(result, blob, content)
        count += 1
        if progress is not None:
            progress(count, total)
    return result, by_key


# ---- assembling the report ----


def _excluded(paths: Iterable[str], patterns: Sequence[str]) -> set[str]:
    if not patterns:
        return set()
    spec = path_spec(patterns, source="--exclude")
    return {path for path in paths if spec.match_file(path)}


_GLOB_META: Final = re.compile(r"[*?\[\]!/\\]+")


def _glob_spans(glob: str, path: str) -> list[tuple[int, int]]:
    """Spans of ``path`` holding a literal piece of ``glob`` (``**/acme_pack/**`` → the
    ``acme_pack`` segment), so a path matched by a private glob does not print it."""
    lowered = path.lower()
    if len(lowered) != len(path):  # a few characters change length when lower-cased
        lowered = path
    spans: list[tuple[int, int]] = []
    for piece in _GLOB_META.split(glob):
        literal = piece.strip().lower()
        if len(literal) < 3 or not any(ch.isalnum() for ch in literal):
            continue
        start = lowered.find(literal)
        while start >= 0:
            spans.append((start, start + len(literal)))
            start = lowered.find(literal, start + 1)
    return spans


_Candidate = tuple[Leak, str | None, list[tuple[int, int]]]


def _scan_names(matcher: Matcher, names: Sequence[str]) -> Iterator[tuple[str, int, Match]]:
    """Yield ``(name, character offset, match)`` of every rule matched in a path name.

    Names are joined one a line and scanned at once; a name holding a line break is scanned on
    its own, so a match is never attributed to the wrong name. A name holding ``_`` is scanned
    a second time with ``_`` read as a space (same length, so offsets hold): file names join
    words with underscores (``test_<identifier>.py``), which would hide a whole-word rule.
    """
    spaced = {name: name.replace("_", " ") for name in names if "_" in name}
    seen: set[tuple[str, int, int]] = set()
    for shown_as, variants in ((False, list(names)), (True, list(spaced))):
        texts = [spaced[name] if shown_as else name for name in variants]
        simple = [
            (name, text) for name, text in zip(variants, texts, strict=True) if "\n" not in text
        ]
        found: list[tuple[str, int, Match]] = []
        if simple:
            document = "\n".join(text for _name, text in simple).encode("utf-8", "surrogateescape")
            for match in matcher.scan(document):
                found.append((simple[match.line - 1][0], match.col - 1, match))
        for name, text in zip(variants, texts, strict=True):
            if "\n" not in text:
                continue
            starts = [0] + [index + 1 for index, char in enumerate(text) if char == "\n"]
            for match in matcher.scan(text.encode("utf-8", "surrogateescape")):
                found.append((name, starts[match.line - 1] + match.col - 1, match))
        for name, offset, match in found:
            key = (name, offset, match.rule)
            if key not in seen:
                seen.add(key)
                yield name, offset, match


def _path_leaks(
    paths: dict[str, tuple[str, ...]], rules: RuleSet, matcher: Matcher | None
) -> list[_Candidate]:
    leaks: list[_Candidate] = []
    names = sorted(paths)
    globs = rules.of_kind("path_glob")
    for rule in globs:
        assert rule.text is not None
        spec = path_spec([rule.text], source=f"path glob {rule.rule_id} ({rule.origin})")
        for name in names:
            if spec.match_file(name):
                leak = Leak(
                    code="BOUNDARY_PATH_GLOB",
                    path=name,
                    rule_id=rule.rule_id,
                    rule_kind=rule.kind,
                    origin=rule.origin,
                    commits=paths[name],
                )
                leaks.append((leak, name, _glob_spans(rule.text, name)))
    if matcher is not None and names:
        for name, offset, match in _scan_names(matcher, names):
            rule = matcher.rules[match.rule]
            # A match in a decoded or normalised name has no column in the name as written:
            # the whole name is redacted then.
            exact = match.decoding is None and name.isascii() and bool(match.text)
            leak = Leak(
                code="BOUNDARY_PATH_LEAK",
                path=name,
                col=offset + 1 if exact else 1,
                rule_id=rule.rule_id,
                rule_kind=rule.kind,
                origin=rule.origin,
                commits=paths[name],
                decoding=match.decoding,
            )
            spans = [(offset, offset + len(match.text or ""))] if exact else [(0, len(name))]
            leaks.append((leak, match.text if exact else name, spans))
    return leaks


REDACTED: Final = "[redacted]"


def _path_redactor(candidates: Sequence[_Candidate]) -> Callable[[str], str]:
    """Return a function hiding, in any path, the spans a rule matched, then escaping it.

    A path that holds an identifier would otherwise print it in every line naming that file:
    leaks, warnings, unscanned content. A span found in a path hides the same text in the
    paths below it (``acme/`` hides itself in ``acme/x.py`` and in ``acme/y.txt!/z``).
    """
    spans: dict[str, list[tuple[int, int]]] = {}
    for leak, _text, found in candidates:
        if leak.code in ("BOUNDARY_PATH_LEAK", "BOUNDARY_PATH_GLOB"):
            spans.setdefault(leak.path, []).extend(found)
    hidden = sorted(
        {path[begin:end] for path, found in spans.items() for begin, end in found if end > begin},
        key=len,
        reverse=True,
    )

    def redact(path: str) -> str:
        found = list(spans.get(path, ()))
        for text in hidden:
            start = path.find(text)
            while start >= 0:
                found.append((start, start + len(text)))
                start = path.find(text, start + 1)
        if not found:
            return escape_display(path)
        pieces: list[str] = []
        position = 0
        for begin, end in sorted(found):
            if end <= position:
                continue
            pieces.append(escape_display(path[position : max(begin, position)]) + REDACTED)
            position = end
        return "".join(pieces) + escape_display(path[position:])

    return redact


def _escape_only(path: str) -> str:
    return escape_display(path)


def _distinct(leaks: Iterable[Leak]) -> list[Leak]:
    """One leak per place and rule, sorted: a match found both in the text and in another
    reading of it (cp1252, printable runs) is reported once, preferring the text."""
    best: dict[tuple[object, ...], Leak] = {}
    for leak in leaks:
        key = (leak.code, leak.path, leak.line, leak.col, leak.rule_id, leak.commits)
        kept = best.get(key)
        if kept is None or (kept.form != "text" and leak.form == "text"):
            best[key] = leak
    return sorted(best.values(), key=lambda k: (k.path, k.line or 0, k.col or 0, k.code, k.rule_id))


def _leak_message(leak: Leak, shown: str | None) -> str:
    where = {
        "BOUNDARY_LEAK": "proprietary identifier in file content",
        "BOUNDARY_METADATA_LEAK": "proprietary identifier in git metadata",
        "BOUNDARY_PATH_LEAK": "proprietary identifier in a file path",
        "BOUNDARY_PATH_GLOB": "path matches a private path glob",
    }[leak.code]
    text = f"{where}: rule {leak.rule_id} ({leak.rule_kind}, from {leak.origin})"
    if leak.form != "text":
        text += f", read as {leak.form}"
    if leak.decoding:
        text += f", revealed by {leak.decoding} decoding"
    if leak.commits:
        text += f" in {len(leak.commits)} commit(s)"
    if shown is not None:
        text += f"; match {shown!r}"
    return text


def _leak_finding(leak: Leak) -> Finding:
    location = f"{leak.path}:{leak.line}" if leak.line is not None else leak.path
    return Finding(
        code=leak.code,
        severity="error",
        message=_leak_message(leak, leak.match),
        location=location,
    )


def _history_findings(root: Path, options: VerifyOptions) -> list[Finding]:
    if options.scope.name not in GIT_SCOPES or not is_shallow(root):
        return []
    if options.allow_shallow:
        return [
            Finding(
                code="BOUNDARY_SHALLOW_HISTORY",
                severity="warning",
                message="shallow clone: commits before the shallow boundary were not scanned "
                "(--allow-shallow)",
            )
        ]
    return [
        Finding(
            code="BOUNDARY_SHALLOW_HISTORY",
            severity="error",
            message="shallow clone: commits before the shallow boundary cannot be scanned; fetch "
            "the whole history (git fetch --unshallow, or fetch-depth: 0 in CI) or pass "
            "--allow-shallow to accept it",
        )
    ]


def verify(
    rules: RuleSet,
    options: VerifyOptions,
    *,
    allowlist: Allowlist | None = None,
    extra_findings: Sequence[Finding] = (),
    progress: ProgressCallback | None = None,
) -> BoundaryReport:
    """Scan ``options.scope`` under ``options.root`` for every rule and return the report.

    :param allowlist: accepted matches; ``None`` reads ``<root>/boundary-allowlist.toml`` when
        it exists.
    :param extra_findings: findings gathered with the rules (plugin failures), carried into the
        report so a broken pack fails the run closed.
    :param progress: called with (done, total) as files are scanned.
    :raises InputError: the root is not a git work tree for a git scope, or git fails.
    :raises ConfigError: no rule is configured, the engine is unavailable, a glob is invalid or
        the allowlist is malformed.
    """
    started = time.perf_counter()
    today = options.today or dt.datetime.now(tz=dt.UTC).date()
    if not rules.rules:
        raise ConfigError(
            "no boundary rule is configured (no pack, denylist, hashed denylist, path glob or "
            "schema id): nothing would be checked"
        )
    try:
        engine = resolve_engine(options.engine)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    root, items, path_names = collect_items(options.root, options.scope)
    if allowlist is None:
        default = root / DEFAULT_ALLOWLIST
        allowlist = load_allowlist(default) if default.is_file() else Allowlist()
    excluded = _excluded(path_names, options.exclude)
    excluded |= _excluded((item.path for item in items if not item.metadata), options.exclude)
    items = [item for item in items if item.path not in excluded]
    path_names = {name: commits for name, commits in path_names.items() if name not in excluded}

    content_rules = rules.of_kind("literal", "schema_id", "hashed")
    # Built even without content rules: archives must still be opened so that path globs see
    # their member names.
    matcher = Matcher(content_rules, engine, **_matching(options))
    _WORKER["matcher"] = matcher
    _WORKER["max_size"] = options.max_file_size
    _WORKER["limits"] = _limits(options.max_file_size, options.max_archive_depth)
    workers = 1
    # Working-tree files in parallel; git objects and in-memory metadata through git.
    files = [item for item in items if item.fs_path is not None]
    objects = [item for item in items if item.fs_path is None]
    results, workers = _scan_fs(files, content_rules, engine, options, progress)
    by_key: dict[str, SourceItem] = {item.path: item for item in files}
    if objects:
        result, object_keys = _scan_blobs(root, objects, progress)
        results.append(result)
        by_key.update(object_keys)

    candidates: list[_Candidate] = []
    for result in results:
        for key, suffix, form, found in result.matches:
            item = by_key[key]
            located = form not in _UNLOCATED_FORMS
            for match in found:
                rule = content_rules[match.rule]
                leak = Leak(
                    code="BOUNDARY_METADATA_LEAK" if item.metadata else "BOUNDARY_LEAK",
                    path=item.path + suffix,
                    line=match.line if located else None,
                    col=match.col if located else None,
                    rule_id=rule.rule_id,
                    rule_kind=rule.kind,
                    origin=rule.origin,
                    commits=item.commits,
                    form=form,
                    decoding=match.decoding,
                )
                candidates.append((leak, match.text, []))
        for key, suffix in result.member_paths:
            item = by_key[key]
            path_names.setdefault(item.path + suffix, item.commits)
    candidates.extend(_path_leaks(path_names, rules, matcher))
    redact = _path_redactor(candidates) if not options.show_matches else _escape_only

    findings: list[Finding] = list(extra_findings)
    findings.extend(_history_findings(root, options))
    leaks: list[Leak] = []
    suppressed = 0
    used: set[int] = set()
    for leak, text, _spans in candidates:
        entry = allowlist.covering(leak.path, leak.rule_id, today)
        if entry is not None:
            used.add(entry)
            suppressed += 1
            continue
        if options.show_matches and text is not None:
            leaks.append(leak.model_copy(update={"match": text, "path": redact(leak.path)}))
        else:
            leaks.append(leak.model_copy(update={"path": redact(leak.path)}))
    leaks = _distinct(leaks)
    findings.extend(_leak_finding(leak) for leak in leaks)

    def accepted(path: str, code: str) -> bool:
        entry = allowlist.covering(path, code, today, exact=True)
        if entry is None:
            return False
        used.add(entry)
        return True

    raw_too_large = sorted(
        {
            (by_key[key].path if key in by_key else key)
            for result in results
            for key in result.too_large
        }
    )
    too_large = [path for path in raw_too_large if not accepted(path, "BOUNDARY_FILE_TOO_LARGE")]
    suppressed += len(raw_too_large) - len(too_large)
    findings.extend(
        Finding(
            code="BOUNDARY_FILE_TOO_LARGE",
            severity="error",
            message=f"above the {options.max_file_size}-byte limit, so not scanned; raise "
            "--max-file-size, exclude it (--exclude) or accept it in the allowlist",
            location=redact(path),
        )
        for path in too_large
    )
    unscanned: list[str] = []
    for result in results:
        for key, suffix, reason in result.unscanned:
            path = (by_key[key].path if key in by_key else key) + suffix
            if accepted(path, "BOUNDARY_UNSCANNED"):
                suppressed += 1
                continue
            unscanned.append(f"{redact(path)} ({reason})")
            findings.append(
                Finding(
                    code="BOUNDARY_UNSCANNED",
                    severity="error",
                    message=f"content not scanned: {reason}",
                    location=redact(path),
                )
            )
        findings.extend(
            Finding(
                code="BOUNDARY_FILE_UNREADABLE",
                severity="error",
                message=f"file could not be read ({reason}); its content is unverified",
                location=redact(path),
            )
            for path, reason in result.unreadable
        )
    findings.extend(_allowlist_findings(allowlist, today, used))
    decoded: dict[str, int] = {}
    for result in results:
        for form, count in result.decoded.items():
            decoded[form] = decoded.get(form, 0) + count
    return BoundaryReport(
        scope=options.scope.name,
        rev=options.scope.rev,
        root=str(root),
        engine=engine if content_rules else "none",
        parallel_workers=workers,
        rules=rules.summary(),
        rule_origins=tuple(sorted({rule.origin for rule in rules.rules})),
        files_scanned=sum(result.scanned for result in results),
        bytes_scanned=sum(result.bytes for result in results),
        decoded=dict(sorted(decoded.items())),
        too_large=tuple(redact(path) for path in too_large),
        unscanned=tuple(sorted(unscanned)),
        suppressed=suppressed,
        leaks=tuple(leaks),
        findings=sort_findings(findings),
        elapsed_s=round(time.perf_counter() - started, 3),
    )


def _allowlist_findings(allowlist: Allowlist, today: dt.date, used: set[int]) -> list[Finding]:
    findings = [
        Finding(
            code="BOUNDARY_ALLOWLIST_EXPIRED",
            severity="error",
            message=(
                # Named by number, never by its path glob: an allowlist kept outside the
                # repository may spell an identifier that the public tree does not hold.
                f"allowlist entry {index + 1} (rule {entry.rule}) expired "
                f"on {entry.expires.isoformat()}; remove it or renew it with a reason"
            ),
            location=allowlist.source or None,
        )
        for index, entry in allowlist.expired(today)
    ]
    findings.extend(
        Finding(
            code="BOUNDARY_ALLOWLIST_UNUSED",
            severity="warning",
            message=f"allowlist entry {index + 1} matched nothing",
            location=allowlist.source or None,
        )
        for index, entry in allowlist.active(today)
        if index not in used
    )
    return findings
