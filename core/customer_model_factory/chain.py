"""Verifying a chain of linked manifests: every hash recomputed, every input link followed.

:func:`verify_manifest_chain` verifies each given manifest by its ``kind``, then follows every
:class:`~customer_model_factory.manifest.InputLink` it can resolve — by ``uri`` (``file://``, a
path relative to the linking manifest, or ``cmf://sha256/<hex>`` in the factory home's artefact
store), else by hash among the manifests and files of the search directories — recomputes the
linked artefact's hash and compares it with the link. It names the first broken or missing link.

Exit codes (as ``cmf manifest verify --chain``): 2 when a manifest or a linked artefact was
tampered with (or cannot be read as what it claims to be), 1 when a link cannot be resolved,
0 when the whole chain verifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final, Literal
from urllib.parse import unquote, urlparse

import orjson
from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory.canonical import HASH_PREFIX
from customer_model_factory.errors import EXIT_BAD_INPUT, EXIT_BLOCKED, EXIT_OK
from customer_model_factory.manifest import (
    InputLink,
    ManifestCheck,
    manifest_classes,
    verify_manifest_file,
)

__all__ = ["ChainLink", "ChainReport", "resolve_store_uri", "verify_manifest_chain"]

_MAX_INDEXED_BYTES: Final = 64 << 20
_CHUNK: Final = 1 << 20

LinkStatus = Literal["ok", "missing", "tampered"]


class ChainLink(BaseModel):
    """One input link followed: from which manifest, to what, and whether it holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(description="The manifest file holding the link.")
    kind: str = Field(description="The linked artefact's kind.")
    hash: str = Field(description="The hash the link records.")
    uri: str | None = Field(default=None, description="The link's uri, when it has one.")
    resolved: str | None = Field(default=None, description="The file the link resolved to.")
    status: LinkStatus = Field(description="ok, missing (not found) or tampered.")
    message: str = Field(description="What was checked, or what is wrong.")


class ChainReport(BaseModel):
    """The outcome of verifying manifests and, with ``follow``, their whole chain."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ready: bool = Field(description="True when every manifest and every link verifies.")
    exit_code: int = Field(description="0 whole, 1 a link missing, 2 something tampered.")
    manifests: tuple[ManifestCheck, ...] = Field(description="Every manifest file verified.")
    links: tuple[ChainLink, ...] = Field(description="Every link followed, in walk order.")
    first_problem: str | None = Field(
        default=None, description="The first broken or missing link (or manifest), named."
    )


def resolve_store_uri(uri: str, home: Path | None) -> Path | None:
    """Return the store path of a ``cmf://sha256/<hex>`` URI under ``home`` (no I/O).

    :returns: ``None`` for another scheme, a malformed digest, or no home.
    """
    parsed = urlparse(uri)
    if parsed.scheme != "cmf" or parsed.netloc != "sha256" or home is None:
        return None
    digest = parsed.path.lstrip("/")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        return None
    return home / "objects" / "sha256" / digest[:2] / digest[2:]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return HASH_PREFIX + digest.hexdigest()


class _Index:
    """Manifests (by their stored hash) and files (by their bytes' digest) in search dirs."""

    def __init__(self, searched: Iterable[Path], beside: Iterable[Path]) -> None:
        # --search directories are walked recursively; a manifest's own directory is not.
        self.places = [(Path(d), True) for d in searched] + [(Path(d), False) for d in beside]
        self._by_hash: dict[str, Path] | None = None

    def _files(self) -> Iterator[Path]:
        for place, recursive in self.places:
            if place.is_file():
                yield place
                continue
            if not place.is_dir():
                continue
            for path in sorted(place.rglob("*") if recursive else place.iterdir()):
                if path.is_file() and not path.is_symlink():
                    yield path

    def _build(self) -> dict[str, Path]:
        index: dict[str, Path] = {}
        classes = manifest_classes()
        for path in self._files():
            try:
                if path.stat().st_size > _MAX_INDEXED_BYTES:
                    continue
                raw = path.read_bytes()
            except OSError:
                continue
            index.setdefault(HASH_PREFIX + hashlib.sha256(raw).hexdigest(), path)
            if not raw.lstrip().startswith(b"{"):
                continue
            try:
                payload = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            cls = classes.get(payload.get("kind")) if isinstance(payload, dict) else None
            stored = payload.get(cls.HASH_FIELD) if cls is not None else None
            if isinstance(stored, str):
                index.setdefault(stored, path)
        return index

    def find(self, digest: str) -> Path | None:
        if self._by_hash is None:
            self._by_hash = self._build()
        return self._by_hash.get(digest)


def _resolve(link: InputLink, source: Path, home: Path | None, index: _Index) -> Path | None:
    if link.uri:
        parsed = urlparse(link.uri)
        candidate: Path | None
        if parsed.scheme == "file":
            candidate = Path(unquote(parsed.path))
        elif parsed.scheme == "cmf":
            candidate = resolve_store_uri(link.uri, home)
        elif parsed.scheme == "":
            candidate = (
                (source.parent / link.uri) if not Path(link.uri).is_absolute() else Path(link.uri)
            )
        else:
            candidate = None
        if candidate is not None and candidate.is_file():
            return candidate
    return index.find(link.hash)


def verify_manifest_chain(
    paths: Iterable[str | Path],
    *,
    follow: bool = True,
    search: Iterable[str | Path] = (),
    home: str | Path | None = None,
) -> ChainReport:
    """Verify manifest files and, with ``follow``, every link of their chains.

    Manifest classes must be imported first
    (:func:`customer_model_factory.catalog.load_manifest_classes` does).

    :param paths: the manifests to start from.
    :param follow: follow input links (``--chain``); without it only the files are verified.
    :param search: directories (walked recursively) or files where links without a resolvable
        ``uri`` are looked up by hash; the directories of the given manifests are always
        searched (their top level only).
    :param home: the factory home whose artefact store resolves ``cmf://`` links.
    """
    starts = [Path(path) for path in paths]
    home_path = Path(home) if home is not None else None
    index = _Index((Path(s) for s in search), dict.fromkeys(p.parent for p in starts))
    classes = manifest_classes()
    checks: list[ManifestCheck] = []
    links: list[ChainLink] = []
    problems: list[tuple[int, str]] = []
    seen: set[Path] = set()

    def visit(path: Path) -> list[Path]:
        """Verify one manifest; return the upstream manifests to visit next."""
        resolved = path.resolve()
        if resolved in seen:
            return []
        seen.add(resolved)
        check = verify_manifest_file(path)
        checks.append(check)
        if not check.ok:
            problems.append((check.exit_code, f"{check.error}"))
            return []
        if not follow:
            return []
        payload = orjson.loads(path.read_bytes())
        upstream: list[Path] = []
        for raw in payload.get("inputs", ()):
            target = follow_link(path, InputLink.model_validate(raw))
            if target is not None:
                upstream.append(target)
        return upstream

    def follow_link(source: Path, link: InputLink) -> Path | None:
        """Check one link; return the linked manifest when it verified and is a manifest."""
        name = f"{source}: input {link.kind} {link.hash}"
        target = _resolve(link, source, home_path, index)
        if target is None:
            where = f" at {link.uri}" if link.uri else ""
            message = f"{name}: not found{where} (give --search DIR or --home DIR)"
            links.append(
                ChainLink(
                    source=str(source),
                    kind=link.kind,
                    hash=link.hash,
                    uri=link.uri,
                    status="missing",
                    message=message,
                )
            )
            problems.append((EXIT_BLOCKED, message))
            return None
        cls = classes.get(link.kind)
        if cls is not None:
            check = verify_manifest_file(target)
            if not check.ok:
                message = f"{name}: {target} does not verify: {check.error}"
                status: LinkStatus = "tampered"
            elif check.kind != link.kind or check.stored != link.hash:
                message = (
                    f"{name}: {target} is the {check.kind} {check.stored}, not the linked one "
                    "(it was replaced or rebuilt after the link was made)"
                )
                status = "tampered"
            else:
                message, status = f"{name}: ok ({target})", "ok"
        else:
            actual = _file_digest(target)
            if actual != link.hash:
                message = f"{name}: {target} has sha256 {actual}, not the linked one"
                status = "tampered"
            else:
                message, status = f"{name}: ok ({target})", "ok"
        links.append(
            ChainLink(
                source=str(source),
                kind=link.kind,
                hash=link.hash,
                uri=link.uri,
                resolved=str(target),
                status=status,
                message=message,
            )
        )
        if status == "tampered":
            problems.append((EXIT_BAD_INPUT, message))
            return None
        return target if cls is not None else None

    # Depth first, iteratively (a crafted chain of any length cannot exhaust the stack).
    pending = list(reversed(starts))
    while pending:
        pending.extend(reversed(visit(pending.pop())))
    exit_code = max((code for code, _ in problems), default=EXIT_OK)
    return ChainReport(
        ready=not problems,
        exit_code=exit_code,
        manifests=tuple(checks),
        links=tuple(links),
        first_problem=problems[0][1] if problems else None,
    )
