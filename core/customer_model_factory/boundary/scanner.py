"""Run a boundary verification: gather rules, read the scope's files in parallel, match, report.

:func:`gather_rules` merges every rule source (packs, plaintext and hashed denylists, path globs,
schema ids) with their origins; :func:`verify` scans one scope with them and returns a
:class:`BoundaryReport`. Findings name rules by label or hash prefix; the matched text is kept
only when ``show_matches`` asks for it (CI logs of a public repository are public).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from customer_model_factory.boundary.allowlist import DEFAULT_ALLOWLIST, Allowlist, load_allowlist
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
    Scope,
    SourceItem,
    collect_items,
    git_blob_reader,
    path_spec,
)
from customer_model_factory.contributions import ProprietaryIdentifiers
from customer_model_factory.errors import ConfigError
from customer_model_factory.findings import Finding, has_errors, sort_findings

__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "LEAK_CODES",
    "BoundaryReport",
    "Leak",
    "ProgressCallback",
    "VerifyOptions",
    "collect_pack_identifiers",
    "gather_rules",
    "verify",
]

DEFAULT_MAX_FILE_SIZE: Final = 10 * 1024 * 1024
LEAK_CODES: Final = ("BOUNDARY_LEAK", "BOUNDARY_PATH_LEAK", "BOUNDARY_PATH_GLOB")
ProgressCallback = Callable[[int, int], None]
"""Called with (files done, files total) as files are scanned."""

# Below this much data a process pool costs more than it saves.
_PARALLEL_MIN_BYTES: Final = 24 * 1024 * 1024
_CHUNK_BYTES: Final = 4 * 1024 * 1024
_CHUNK_FILES: Final = 1000
_TYPICAL_FILE_BYTES: Final = 8 * 1024
_BINARY_PROBE: Final = 8000


class Leak(BaseModel):
    """One occurrence of a rule in the scanned tree (redacted unless ``match`` is filled)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Literal["BOUNDARY_LEAK", "BOUNDARY_PATH_LEAK", "BOUNDARY_PATH_GLOB"] = Field(
        description="In file content, in a file path, or a path matching a private glob."
    )
    path: str = Field(description="Repository-relative POSIX path.")
    line: int | None = Field(default=None, description="1-based line (content leaks).")
    col: int | None = Field(default=None, description="1-based column in characters.")
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
    binary_skipped: int = Field(description="Binary files skipped (a NUL byte near the start).")
    too_large: tuple[str, ...] = Field(description="Files above the size limit, not scanned.")
    suppressed: int = Field(description="Leaks covered by an active allowlist entry.")
    leaks: tuple[Leak, ...] = Field(description="Every leak not covered by the allowlist.")
    findings: tuple[Finding, ...] = Field(description="Leaks and every other finding, sorted.")
    elapsed_s: float = Field(description="Wall time of the scan, in seconds.")

    @computed_field(description="True when no leak and no error finding was reported.")  # type: ignore[prop-decorator]
    @property
    def clean(self) -> bool:
        """True when no leak and no error finding was reported."""
        return not self.leaks and not has_errors(self.findings)


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
    :param hashed_denylists: hashed denylist files; ``None`` reads
        ``<root>/boundary-denylist.json`` when it exists.
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
    if hashed_denylists is None:
        default = root / DEFAULT_HASHED_DENYLIST
        hashed_denylists = [default] if default.is_file() else []
    check_denylist_digests(hashed_denylists, denylist_digests)
    for path in hashed_denylists:
        groups.append(load_hashed_denylist(path).rules(f"hashed-denylist:{path.name}"))
    cli = ProprietaryIdentifiers(
        source="command-line", path_globs=tuple(path_globs), schema_ids=tuple(schema_ids)
    )
    groups.append(rules_from_identifiers(cli))
    return RuleSet.merge(groups)


def collect_pack_identifiers(
    pm: Any | None = None,
) -> tuple[list[ProprietaryIdentifiers], list[Finding]]:
    """Return the installed packs' identifier rules and the findings of loading and calling them.

    A pack that fails to load or whose hook raises yields an error finding, so the verification
    fails closed rather than passing without that pack's rules.

    :param pm: a plugin manager (default: the process's, from ``get_plugin_manager()``).
    """
    from customer_model_factory import plugins  # noqa: PLC0415

    manager = pm if pm is not None else plugins.get_plugin_manager()
    identifiers, findings = plugins.collect_proprietary_identifiers(manager)
    load_findings = [f for f in getattr(manager, "findings", ()) if f.severity == "error"]
    return identifiers, [*load_findings, *findings]


# ---- reading and matching (runs in worker processes too) ----

_WORKER: dict[str, Any] = {}


def _init_worker(
    rules: tuple[Rule, ...], engine: str, max_size: int, matching: dict[str, Any]
) -> None:
    _WORKER["matcher"] = Matcher(rules, engine, **matching)
    _WORKER["max_size"] = max_size


@dataclass
class _ChunkResult:
    matches: list[tuple[str, list[Match]]] = field(default_factory=list)
    scanned: int = 0
    bytes: int = 0
    binary: int = 0
    too_large: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def _read_fs(item: SourceItem, limit: int) -> bytes | None:
    """Return the file's bytes (a link's target text), or ``None`` when it is gone."""
    assert item.fs_path is not None
    try:
        if item.link:
            return os.fsencode(os.readlink(item.fs_path))
        fd = os.open(item.fs_path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        # Ask for the size fstat reports (+1 to notice growth, capped one byte past the limit
        # so a too-large file is told by its length): asking for the limit itself would make
        # every read allocate a limit-sized buffer, which costs more than the read.
        want = min(os.fstat(fd).st_size, limit) + 1
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
        return data
    finally:
        os.close(fd)


def _accept(result: _ChunkResult, key: str, data: bytes) -> bool:
    if len(data) > _WORKER["max_size"]:
        result.too_large.append(key)
        return False
    if data.find(b"\0", 0, _BINARY_PROBE) >= 0:
        result.binary += 1
        return False
    result.scanned += 1
    result.bytes += len(data)
    return True


def _scan_content(result: _ChunkResult, key: str, data: bytes) -> None:
    if _accept(result, key, data):
        found = _WORKER["matcher"].scan(data)
        if found:
            result.matches.append((key, found))


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
        if data is not None and _accept(result, item.path, data):
            batch.append((item.path, data))
    # Hashed rules: tokenise the whole batch at once; only a batch that hits is rescanned.
    found_per_file = matcher.scan_batch([data for _path, data in batch])
    for (path, _data), found in zip(batch, found_per_file, strict=True):
        if found:
            result.matches.append((path, found))
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


def _pool(
    jobs: int,
    content_rules: tuple[Rule, ...],
    engine: str,
    max_size: int,
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
        initargs=(content_rules, engine, max_size, matching),
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
                jobs, content_rules, engine, options.max_file_size, _matching(options)
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


def _matching(options: VerifyOptions) -> dict[str, Any]:
    """The matcher options of a verification (normalisation and decoding)."""
    return {"confusables": options.confusables, "max_decode_depth": options.max_decode_depth}


def _scan_blobs(
    root: Path, items: Sequence[SourceItem], progress: ProgressCallback | None
) -> tuple[_ChunkResult, dict[str, SourceItem]]:
    by_blob: dict[str, SourceItem] = {item.blob: item for item in items if item.blob}
    result = _ChunkResult()
    for count, (blob, data) in enumerate(git_blob_reader(root, list(by_blob)), start=1):
        _scan_content(result, blob, data)
        if progress is not None:
            progress(count, len(by_blob))
    return result, by_blob


# ---- assembling the report ----


def _excluded(paths: Iterable[str], patterns: Sequence[str]) -> set[str]:
    if not patterns:
        return set()
    spec = path_spec(patterns)
    return {path for path in paths if spec.match_file(path)}


def _path_leaks(
    paths: dict[str, tuple[str, ...]], rules: RuleSet, matcher: Matcher | None
) -> list[tuple[Leak, str | None]]:
    leaks: list[tuple[Leak, str | None]] = []
    names = sorted(paths)
    globs = rules.of_kind("path_glob")
    if globs:
        for rule in globs:
            assert rule.text is not None
            spec = path_spec([rule.text])
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
                    leaks.append((leak, name))
    if matcher is not None and names:
        document = "\n".join(names).encode("utf-8", "surrogateescape")
        for match in matcher.scan(document):
            rule = matcher.rules[match.rule]
            name = names[match.line - 1]
            # A match in a decoded or normalised name has no column in the name as written:
            # the whole name is redacted then.
            exact = match.decoding is None and name.isascii()
            leak = Leak(
                code="BOUNDARY_PATH_LEAK",
                path=name,
                col=match.col if exact else 1,
                rule_id=rule.rule_id,
                rule_kind=rule.kind,
                origin=rule.origin,
                commits=paths[name],
                decoding=match.decoding,
            )
            leaks.append((leak, match.text if exact else name))
    return leaks


REDACTED: Final = "[redacted]"


def _identity(path: str) -> str:
    return path


def _path_redactor(candidates: Sequence[tuple[Leak, str | None]]) -> Callable[[str], str]:
    """Return a function hiding, in any path, the spans a path rule matched.

    A path that holds an identifier would otherwise print it in every line naming that file.
    """
    spans: dict[str, list[tuple[int, int]]] = {}
    for leak, text in candidates:
        if leak.code == "BOUNDARY_PATH_LEAK" and leak.col is not None and text is not None:
            start = leak.col - 1
            spans.setdefault(leak.path, []).append((start, start + len(text)))

    def redact(path: str) -> str:
        found = spans.get(path)
        if not found:
            return path
        pieces: list[str] = []
        position = 0
        for begin, end in sorted(found):
            if end <= position:
                continue
            pieces.append(path[position : max(begin, position)] + REDACTED)
            position = end
        return "".join(pieces) + path[position:]

    return redact


def _leak_message(leak: Leak, shown: str | None) -> str:
    where = {
        "BOUNDARY_LEAK": "proprietary identifier in file content",
        "BOUNDARY_PATH_LEAK": "proprietary identifier in a file path",
        "BOUNDARY_PATH_GLOB": "path matches a private path glob",
    }[leak.code]
    text = f"{where}: rule {leak.rule_id} ({leak.rule_kind}, from {leak.origin})"
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
    :raises ConfigError: the engine is unavailable or the allowlist is malformed.
    """
    started = time.perf_counter()
    today = options.today or dt.datetime.now(tz=dt.UTC).date()
    try:
        engine = resolve_engine(options.engine)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    root, items, path_names = collect_items(options.root, options.scope)
    if allowlist is None:
        default = root / DEFAULT_ALLOWLIST
        allowlist = load_allowlist(default) if default.is_file() else Allowlist()
    excluded = _excluded(path_names, options.exclude)
    items = [item for item in items if item.path not in excluded]
    path_names = {name: commits for name, commits in path_names.items() if name not in excluded}

    content_rules = rules.of_kind("literal", "schema_id", "hashed")
    matcher = Matcher(content_rules, engine, **_matching(options)) if content_rules else None
    _WORKER["matcher"] = matcher
    _WORKER["max_size"] = options.max_file_size
    workers = 1
    raw: list[tuple[SourceItem, Match]] = []
    results: list[_ChunkResult]
    if matcher is None:
        results = []
    elif options.scope.name in ("staged", "history"):
        result, by_blob = _scan_blobs(root, items, progress)
        results = [result]
        for blob, found in result.matches:
            raw.extend((by_blob[blob], match) for match in found)
        result.matches = []
        result.too_large = [by_blob[blob].path for blob in result.too_large]
    else:
        results, workers = _scan_fs(items, content_rules, engine, options, progress)
        by_path = {item.path: item for item in items}
        for result in results:
            raw.extend((by_path[path], match) for path, found in result.matches for match in found)

    candidates: list[tuple[Leak, str | None]] = []
    for item, match in raw:
        rule = content_rules[match.rule]
        leak = Leak(
            code="BOUNDARY_LEAK",
            path=item.path,
            line=match.line,
            col=match.col,
            rule_id=rule.rule_id,
            rule_kind=rule.kind,
            origin=rule.origin,
            commits=item.commits,
            decoding=match.decoding,
        )
        candidates.append((leak, match.text))
    candidates.extend(_path_leaks(path_names, rules, matcher))
    redact = _path_redactor(candidates) if not options.show_matches else _identity

    findings: list[Finding] = list(extra_findings)
    leaks: list[Leak] = []
    suppressed = 0
    used: set[int] = set()
    for leak, text in candidates:
        entry = allowlist.covering(leak.path, leak.rule_id, today)
        if entry is not None:
            used.add(entry)
            suppressed += 1
            continue
        if options.show_matches and text is not None:
            leaks.append(leak.model_copy(update={"match": text}))
        else:
            leaks.append(leak.model_copy(update={"path": redact(leak.path)}))
    leaks = sorted(set(leaks), key=lambda k: (k.path, k.line or 0, k.col or 0, k.code, k.rule_id))
    findings.extend(_leak_finding(leak) for leak in leaks)
    findings.extend(_allowlist_findings(allowlist, today, used))
    too_large = sorted({redact(path) for result in results for path in result.too_large})
    findings.extend(
        Finding(
            code="BOUNDARY_FILE_TOO_LARGE",
            severity="warning",
            message=f"file is above the {options.max_file_size}-byte limit and was not scanned",
            location=path,
        )
        for path in too_large
    )
    for result in results:
        findings.extend(
            Finding(
                code="BOUNDARY_FILE_UNREADABLE",
                severity="error",
                message=f"file could not be read ({reason}); its content is unverified",
                location=redact(path),
            )
            for path, reason in result.unreadable
        )
    if not rules.rules:
        findings.append(
            Finding(
                code="BOUNDARY_NO_RULES",
                severity="warning",
                message="no boundary rule is configured: nothing was checked",
            )
        )
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
        binary_skipped=sum(result.binary for result in results),
        too_large=tuple(too_large),
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
                f"allowlist entry {index + 1} (path {entry.path!r}, rule {entry.rule}) expired "
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
            message=f"allowlist entry {index + 1} (path {entry.path!r}) matched nothing",
            location=allowlist.source or None,
        )
        for index, entry in allowlist.active(today)
        if index not in used
    )
    return findings
