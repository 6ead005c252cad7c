"""Export an evidence pack as a directory or a deterministic ``.tar.gz``, and verify one.

An exported pack holds, under its root:

* every artefact of the manifest, at the ``path`` its :class:`EvidenceArtefact` records, copied
  from the artefact store (each verified against its digest on the way);
* ``evidence_pack.json``: the manifest itself;
* ``statement.intoto.json``: an in-toto Statement v1 whose ``subject`` lists every artefact and
  the manifest by sha256, and whose ``predicate`` (type :data:`PREDICATE_TYPE`) is the chain:
  every manifest in the pack with its kind, hash field, hash and input links;
* ``SHA256SUMS``: one ``<hex>  <path>`` line per file above (GNU coreutils format, sorted by path),
  so ``sha256sum -c SHA256SUMS`` run in the root checks the whole pack.

The archive is byte-deterministic: entries sorted by path, regular files only (mode 0644, uid and
gid 0, no user or group name, mtime 0), PAX format, gzip with mtime 0 and no file name.

:func:`verify_evidence_pack` re-checks a directory or archive with nothing but what it holds:
every line of ``SHA256SUMS``; every file present is listed (an extra file is an error: a pack is
exactly what it says); the manifest's own hash; every artefact's digest and size; every manifest
artefact's own hash; the statement's subjects and predicate; every input link that names an
artefact of the pack. An archive is unpacked into a temporary directory after every member was
checked (:func:`safe_extract`): no absolute path, no ``..``, no link, device or FIFO, nothing
outside the target, at most :data:`MAX_PACK_BYTES` and :data:`MAX_PACK_MEMBERS`.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory.canonical import HASH_PREFIX
from customer_model_factory.context import RunContext
from customer_model_factory.errors import (
    BlockedError,
    CMFError,
    DataFormatError,
    InputError,
    ManifestIntegrityError,
)
from customer_model_factory.manifest import Manifest, manifest_class_for
from customer_model_factory.stages.evidence.build import MANIFEST_PATH, RESERVED_PATHS
from customer_model_factory.stages.evidence.models import (
    CustomerEvidencePackManifest,
    check_pack_path,
)
from customer_model_factory.store import ArtefactStore

__all__ = [
    "MAX_PACK_BYTES",
    "MAX_PACK_MEMBERS",
    "PREDICATE_TYPE",
    "STATEMENT_PATH",
    "STATEMENT_TYPE",
    "SUMS_PATH",
    "ExportOutcome",
    "PackProblem",
    "PackVerification",
    "build_statement",
    "export_evidence_pack",
    "render_sha256sums",
    "safe_extract",
    "verify_evidence_pack",
]

STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE: Final = "https://customer-model-factory.dev/evidence-pack/v1"
STATEMENT_PATH: Final = "statement.intoto.json"
SUMS_PATH: Final = "SHA256SUMS"
MAX_PACK_BYTES: Final = 4 << 30
"""The most bytes an imported archive may unpack to (4 GiB)."""
MAX_PACK_MEMBERS: Final = 100_000
"""The most members an imported archive may hold."""
_CHUNK: Final = 1 << 20


def _json_bytes(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def render_sha256sums(digests: dict[str, str]) -> bytes:
    """``<hex>  <path>`` lines (GNU coreutils text mode) sorted by path; ``digests`` maps path ->
    ``sha256:<hex>``."""
    return b"".join(
        f"{digest.removeprefix(HASH_PREFIX)}  {path}\n".encode()
        for path, digest in sorted(digests.items())
    )


def build_statement(
    manifest: CustomerEvidencePackManifest,
    manifest_digest: str,
    manifests: dict[str, Manifest],
) -> dict[str, Any]:
    """The in-toto Statement v1 of a pack: subjects = every artefact and the manifest by
    sha256; predicate = the chain (every manifest of the pack, its hash and input links).

    :param manifest_digest: sha256 of the manifest file's bytes.
    :param manifests: path -> the manifest artefacts of the pack, parsed.
    """
    subjects = {a.path: a.digest for a in manifest.artefact_files}
    subjects[MANIFEST_PATH] = manifest_digest
    chain = [
        _chain_entry(path, item)
        for path, item in sorted({**manifests, MANIFEST_PATH: manifest}.items())
    ]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": path, "digest": {"sha256": digest.removeprefix(HASH_PREFIX)}}
            for path, digest in sorted(subjects.items())
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "package_id": manifest.package_id,
            "evidence_hash": manifest.evidence_hash,
            "customer_id": manifest.customer_id,
            "workspace_id": manifest.workspace_id,
            "tenant_id": manifest.tenant_id,
            "deployment_id": manifest.deployment_id,
            "deployment_hash": manifest.deployment_hash,
            "ready": manifest.ready,
            "chain": chain,
        },
    }


def _chain_entry(path: str, item: Manifest) -> dict[str, Any]:
    return {
        "path": path,
        "kind": item.KIND,
        "hash_field": item.HASH_FIELD,
        "hash": item.content_digest,
        "inputs": [{"kind": link.kind, "hash": link.hash} for link in item.inputs],
    }


class ExportOutcome(BaseModel):
    """What ``cmf evidence export`` wrote."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    output: str = Field(description="The directory or archive written.")
    form: Literal["directory", "tar.gz"]
    files: int = Field(description="Files in the pack (SHA256SUMS included).")
    evidence_hash: str
    archive_sha256: str | None = Field(
        default=None, description="sha256 of the archive's bytes (tar.gz only)."
    )


def _pack_files(
    manifest: CustomerEvidencePackManifest, manifest_bytes: bytes, store: ArtefactStore
) -> dict[str, bytes | str]:
    """path -> bytes (generated files) or digest (artefacts streamed from the store)."""
    files: dict[str, bytes | str] = {}
    manifests: dict[str, Manifest] = {}
    for artefact in manifest.artefact_files:
        if artefact.path in RESERVED_PATHS or artefact.path in files:
            raise DataFormatError(
                f"artefact path {artefact.path!r} is reserved or used twice", field="artefact_files"
            )
        check_pack_path(artefact.path)
        store.verify(artefact.digest)
        files[artefact.path] = artefact.digest
        if artefact.manifest_hash is not None:
            manifests[artefact.path] = _manifest_of(store.get_bytes(artefact.digest), artefact.path)
    for path in files:
        prefix = path + "/"
        if any(other.startswith(prefix) for other in files):
            raise DataFormatError(f"artefact path {path!r} is also a directory of the pack")
    manifest_digest = HASH_PREFIX + _sha256_hex(manifest_bytes)
    statement = _json_bytes(build_statement(manifest, manifest_digest, manifests))
    files[MANIFEST_PATH] = manifest_bytes
    files[STATEMENT_PATH] = statement
    digests = {
        path: value if isinstance(value, str) else HASH_PREFIX + _sha256_hex(value)
        for path, value in files.items()
    }
    files[SUMS_PATH] = render_sha256sums(digests)
    return files


def _manifest_of(raw: bytes, where: str) -> Manifest:
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise DataFormatError("invalid JSON", path=where) from None
    if not isinstance(payload, dict):
        raise DataFormatError("a manifest is a JSON object", path=where)
    return manifest_class_for(payload, path=where).from_payload(payload, path=where)


def _is_archive(path: Path) -> bool:
    return path.name.endswith((".tar.gz", ".tgz"))


def export_evidence_pack(
    manifest_path: str | Path, output: str | Path, context: RunContext
) -> ExportOutcome:
    """Write the pack of an evidence manifest to a new directory or a ``.tar.gz`` (by the name).

    The artefacts are copied from the factory home's artefact store, each verified. The output
    appears whole or not at all (a temporary sibling renamed into place); an existing output is
    refused.

    :raises ManifestIntegrityError, DataFormatError: the manifest is tampered or unreadable.
    :raises BlockedError: ``EVIDENCE_NOT_READY``: the pack holds error findings (exit 1).
    :raises InputError: the output exists.
    :raises ArtefactError: an artefact is missing or corrupted in the store.
    """
    source = Path(manifest_path)
    manifest = CustomerEvidencePackManifest.load(source)
    if not manifest.ready:
        raise BlockedError(
            "EVIDENCE_NOT_READY: the evidence pack holds error findings; fix them and build it "
            "again before exporting it",
            path=source,
        )
    target = Path(output)
    if target.exists() or target.is_symlink():
        raise InputError(f"{target} exists; export into a new directory or archive")
    store = ArtefactStore(context.home)
    files = _pack_files(manifest, manifest.to_json_bytes(), store)
    form: Literal["directory", "tar.gz"] = "tar.gz" if _is_archive(target) else "directory"
    digest: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if form == "tar.gz":
            digest = _write_archive(files, target, store)
        else:
            _write_directory(files, target, store)
    except OSError as error:
        raise InputError(f"cannot write the pack: {error.strerror}", path=target) from None
    return ExportOutcome(
        output=str(target),
        form=form,
        files=len(files),
        evidence_hash=manifest.evidence_hash,
        archive_sha256=digest,
    )


def _write_directory(files: dict[str, bytes | str], target: Path, store: ArtefactStore) -> None:
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for path, value in sorted(files.items()):
            destination = temporary.joinpath(*path.split("/"))
            destination.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(value, str):
                store.copy_to(value, destination)
            else:
                destination.write_bytes(value)
            os.chmod(destination, 0o644)
        os.chmod(temporary, 0o755)
        os.rename(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _tar_info(path: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def _write_archive(files: dict[str, bytes | str], target: Path, store: ArtefactStore) -> str:
    from customer_model_factory.io import atomic_writer  # noqa: PLC0415

    hasher = hashlib.sha256()

    class _Hashing(io.RawIOBase):
        def __init__(self, sink: Any) -> None:
            self.sink = sink

        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            hasher.update(data)
            self.sink.write(data)
            return len(data)

    with atomic_writer(target) as sink:
        hashing = _Hashing(sink)
        with (
            gzip.GzipFile(filename="", mode="wb", fileobj=hashing, mtime=0, compresslevel=9) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for path, value in sorted(files.items()):
                if isinstance(value, str):
                    size = store.verify(value).size
                    with store.open(value) as reader:
                        tar.addfile(_tar_info(path, size), reader)  # type: ignore[arg-type]
                else:
                    tar.addfile(_tar_info(path, len(value)), io.BytesIO(value))
    return HASH_PREFIX + hasher.hexdigest()


# ---- verification ----


class PackProblem(BaseModel):
    """One thing wrong with a pack, naming the file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(description="The file of the pack concerned.")
    check: str = Field(description="Which check failed (sha256sums, artefact, statement, ...).")
    message: str


class PackVerification(BaseModel):
    """The outcome of ``cmf evidence verify``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    ok: bool
    exit_code: int = Field(description="0 clean; 1 a mismatch; 2 unreadable or malformed.")
    evidence_hash: str | None = None
    files_checked: int = 0
    links_checked: int = 0
    links_outside_pack: int = Field(
        default=0, description="Input links naming an artefact the pack does not hold."
    )
    problems: tuple[PackProblem, ...] = ()


class _Malformed(Exception):
    """The pack cannot be read as a pack (exit 2)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _shown(name: str) -> str:
    """A name from the pack as it may be shown: at most 200 characters, every non-printable
    character (newline, escape, undecodable byte) escaped, so it cannot forge a line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name[:200])


def _check_member(member: tarfile.TarInfo, seen: set[str]) -> str:
    name = _shown(member.name)
    if not (member.isreg() or member.isdir()):
        what = "a link" if member.issym() or member.islnk() else "not a regular file"
        raise _Malformed(name, f"archive member is {what}; refused")
    normal = member.name[2:] if member.name.startswith("./") else member.name
    normal = normal.rstrip("/") if member.isdir() else normal
    if not normal or normal.startswith("/") or "\\" in normal:
        raise _Malformed(name, "archive member has an absolute or non-POSIX path")
    if any(part in {"", ".", ".."} for part in normal.split("/")):
        raise _Malformed(name, "archive member path holds '.', '..' or an empty segment")
    if any(ord(c) < 0x20 or c == "\x7f" for c in normal):
        raise _Malformed(name, "archive member path holds a control character")
    if normal in seen:
        raise _Malformed(name, "archive holds this member twice")
    seen.add(normal)
    return normal


class _Bounded(io.RawIOBase):
    """A read-only stream that refuses to yield more than ``limit`` bytes."""

    def __init__(self, inner: Any, limit: int, source: str) -> None:
        self.inner = inner
        self.limit = limit
        self.source = source
        self.seen = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        self.seen += len(data)
        if self.seen > self.limit:
            raise _Malformed(self.source, f"unpacks to more than {self.limit} bytes")
        buffer[: len(data)] = data
        return len(data)


def _checked_members(
    tar: tarfile.TarFile, source: str, max_bytes: int, max_members: int
) -> list[tarfile.TarInfo]:
    members: list[tarfile.TarInfo] = []
    seen: set[str] = set()
    total = 0
    for member in tar:
        if len(members) >= max_members:
            raise _Malformed(source, f"more than {max_members} members")
        _check_member(member, seen)
        total += member.size
        if total > max_bytes:
            raise _Malformed(source, f"unpacks to more than {max_bytes} bytes")
        members.append(member)
    return members


def safe_extract(
    archive: Path,
    target: Path,
    *,
    max_bytes: int = MAX_PACK_BYTES,
    max_members: int = MAX_PACK_MEMBERS,
) -> None:
    """Unpack a ``.tar.gz`` pack into ``target`` after checking every member (see module doc).

    A first streaming pass reads the decompressed archive through a bounded reader (so neither a
    compression bomb nor an oversized header is read past the cap) and checks every member; the
    second pass checks them again and extracts with ``tarfile``'s ``data`` filter.

    :raises InputError: an unreadable archive or a member that is refused (nothing is written
        before every member was checked).
    """
    source = str(archive)
    stream_cap = max_bytes + 1024 * (max_members + 2) + (1 << 20)
    try:
        with open(archive, "rb") as raw:
            compressed = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            inner: Any = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
            bounded = io.BufferedReader(_Bounded(inner, stream_cap, source))
            with tarfile.open(fileobj=bounded, mode="r|") as probe:
                _checked_members(probe, source, max_bytes, max_members)
        with tarfile.open(archive, mode="r:gz" if compressed else "r:") as tar:
            members = _checked_members(tar, source, max_bytes, max_members)
            real_target = target.resolve()
            for member in members:
                destination = (real_target / member.name).resolve()
                if destination != real_target and real_target not in destination.parents:
                    raise _Malformed(_shown(member.name), "would be written outside the target")
            tar.extractall(target, members=members, filter="data")
    except _Malformed as error:
        raise InputError(f"{error.message}; the archive is refused", path=error.path) from None
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as error:
        raise InputError(f"cannot read the archive: {error}", path=archive) from None


def _walk(root: Path) -> dict[str, Path]:
    """Every file under ``root`` by relative POSIX path; a link or special file is malformed."""
    found: dict[str, Path] = {}

    def refuse(error: OSError) -> None:
        raise _Malformed(_shown(str(error.filename)), f"cannot be read: {error.strerror}")

    for directory, dirnames, filenames in os.walk(root, followlinks=False, onerror=refuse):
        for name in sorted([*dirnames, *filenames]):
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            try:
                relative.encode("utf-8")
            except UnicodeEncodeError:
                raise _Malformed(_shown(relative), "file name is not UTF-8") from None
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise _Malformed(relative, "is a symbolic link; a pack holds regular files only")
            if stat.S_ISREG(mode):
                found[relative] = path
            elif not stat.S_ISDIR(mode):
                raise _Malformed(relative, "is not a regular file")
    return found


def _file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return HASH_PREFIX + digest.hexdigest(), size


def _parse_sums(data: bytes) -> dict[str, str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed(SUMS_PATH, "is not UTF-8") from None
    sums: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        hex_part, sep, path = line[:64], line[64:66], line[66:]
        if (
            len(hex_part) != 64
            or any(c not in "0123456789abcdef" for c in hex_part)
            or sep not in {"  ", " *"}
        ):
            raise _Malformed(f"{SUMS_PATH}:{number}", "is not '<64 hex>  <path>'")
        try:
            check_pack_path(path)
        except ValueError:
            raise _Malformed(f"{SUMS_PATH}:{number}", "names an unsafe path") from None
        if path in sums:
            raise _Malformed(f"{SUMS_PATH}:{number}", "lists a path twice")
        sums[path] = HASH_PREFIX + hex_part
    return sums


@contextlib.contextmanager
def _pack_root(source: Path) -> Iterator[Path]:
    if source.is_dir():
        yield source
        return
    if not source.is_file():
        raise InputError("no such pack (a directory or a .tar.gz)", path=source)
    with tempfile.TemporaryDirectory(prefix="cmf-evidence-") as scratch:
        root = Path(scratch) / "pack"
        root.mkdir()
        safe_extract(source, root)
        yield root


def verify_evidence_pack(source: str | Path) -> PackVerification:
    """Re-check every digest and link of an exported pack (directory or archive).

    Never raises for a bad pack: the outcome names every problem with exit 1 (a mismatch) or the
    first reason it cannot be read with exit 2 (unreadable, malformed, an unsafe archive).
    """
    path = Path(source)
    try:
        with _pack_root(path) as root:
            return _verify_root(root, str(path))
    except _Malformed as error:
        problem = PackProblem(path=error.path, check="format", message=error.message)
        return PackVerification(source=str(path), ok=False, exit_code=2, problems=(problem,))
    except CMFError as error:
        problem = PackProblem(path=error.path or str(path), check="format", message=str(error))
        return PackVerification(source=str(path), ok=False, exit_code=2, problems=(problem,))
    except OSError as error:
        where = _shown(error.filename) if isinstance(error.filename, str) else str(path)
        problem = PackProblem(path=where, check="format", message=f"cannot read: {error.strerror}")
        return PackVerification(source=str(path), ok=False, exit_code=2, problems=(problem,))


def _verify_root(root: Path, source: str) -> PackVerification:
    files = _walk(root)
    if SUMS_PATH not in files:
        raise _Malformed(SUMS_PATH, "is missing; not an evidence pack")
    if MANIFEST_PATH not in files:
        raise _Malformed(MANIFEST_PATH, "is missing; not an evidence pack")
    sums = _parse_sums(files[SUMS_PATH].read_bytes())
    problems: list[PackProblem] = []
    actual: dict[str, tuple[str, int]] = {}
    for relative, file_path in sorted(files.items()):
        if relative == SUMS_PATH:
            continue
        actual[relative] = _file_sha256(file_path)
        if relative not in sums:
            problems.append(
                PackProblem(
                    path=relative, check="sha256sums", message="is in the pack but not listed"
                )
            )
    for relative, digest in sorted(sums.items()):
        if relative not in actual:
            problems.append(
                PackProblem(path=relative, check="sha256sums", message="is listed but missing")
            )
        elif actual[relative][0] != digest:
            problems.append(
                PackProblem(
                    path=relative,
                    check="sha256sums",
                    message=f"hashes to {actual[relative][0]}, SHA256SUMS says {digest}",
                )
            )
    manifest = _load_pack_manifest(files[MANIFEST_PATH], problems)
    if manifest is None:
        return _outcome(
            source, evidence_hash=None, problems=problems, files=len(actual), links=0, outside=0
        )
    manifests: dict[str, Manifest] = {}
    for artefact in manifest.artefact_files:
        found = actual.get(artefact.path)
        if found is None:
            problems.append(PackProblem(path=artefact.path, check="artefact", message="is missing"))
            continue
        if found != (artefact.digest, artefact.size_bytes):
            problems.append(
                PackProblem(
                    path=artefact.path,
                    check="artefact",
                    message=f"hashes to {found[0]} ({found[1]} bytes); the manifest records "
                    f"{artefact.digest} ({artefact.size_bytes} bytes)",
                )
            )
            continue
        if artefact.manifest_hash is not None:
            item = _pack_manifest(files[artefact.path], artefact.path, problems)
            if item is None:
                continue
            if item.content_digest != artefact.manifest_hash:
                problems.append(
                    PackProblem(
                        path=artefact.path,
                        check="manifest",
                        message=f"is {item.content_digest}, the pack records "
                        f"{artefact.manifest_hash}",
                    )
                )
            manifests[artefact.path] = item
    _check_statement(files, manifest, actual, manifests, problems)
    checked, outside = _check_links(manifest, manifests, problems)
    return _outcome(
        source,
        evidence_hash=manifest.evidence_hash,
        problems=problems,
        files=len(actual),
        links=checked,
        outside=outside,
    )


def _outcome(
    source: str,
    *,
    evidence_hash: str | None,
    problems: list[PackProblem],
    files: int,
    links: int,
    outside: int,
) -> PackVerification:
    return PackVerification(
        source=source,
        ok=not problems,
        exit_code=0 if not problems else 1,
        evidence_hash=evidence_hash,
        files_checked=files,
        links_checked=links,
        links_outside_pack=outside,
        problems=tuple(problems),
    )


def _load_pack_manifest(
    path: Path, problems: list[PackProblem]
) -> CustomerEvidencePackManifest | None:
    try:
        return CustomerEvidencePackManifest.load(path)
    except ManifestIntegrityError as error:
        problems.append(PackProblem(path=MANIFEST_PATH, check="manifest", message=error.message))
        return None
    except CMFError as error:
        raise _Malformed(MANIFEST_PATH, error.message) from None


def _pack_manifest(path: Path, relative: str, problems: list[PackProblem]) -> Manifest | None:
    try:
        return _manifest_of(path.read_bytes(), relative)
    except ManifestIntegrityError as error:
        problems.append(PackProblem(path=relative, check="manifest", message=error.message))
    except CMFError as error:
        problems.append(PackProblem(path=relative, check="manifest", message=error.message))
    return None


def _check_statement(
    files: dict[str, Path],
    manifest: CustomerEvidencePackManifest,
    actual: dict[str, tuple[str, int]],
    manifests: dict[str, Manifest],
    problems: list[PackProblem],
) -> None:
    if STATEMENT_PATH not in files:
        problems.append(PackProblem(path=STATEMENT_PATH, check="statement", message="is missing"))
        return
    try:
        statement = orjson.loads(files[STATEMENT_PATH].read_bytes())
    except orjson.JSONDecodeError:
        problems.append(
            PackProblem(path=STATEMENT_PATH, check="statement", message="is not valid JSON")
        )
        return
    expected = build_statement(manifest, actual[MANIFEST_PATH][0], manifests)
    if statement == expected:
        return
    if not isinstance(statement, dict):
        statement = {}
    subjects = statement.get("subject")
    listed: dict[str, str] = {}
    if isinstance(subjects, list):
        for subject in subjects:
            if isinstance(subject, dict) and isinstance(subject.get("digest"), dict):
                listed[str(subject.get("name"))] = HASH_PREFIX + str(
                    subject["digest"].get("sha256")
                )
    for name, digest in sorted(listed.items()):
        if name not in actual:
            message = "is a subject of the statement but not in the pack"
        elif actual[name][0] != digest:
            message = f"hashes to {actual[name][0]}, the statement's subject says {digest}"
        else:
            continue
        problems.append(PackProblem(path=name, check="statement", message=message))
    wanted = {s["name"] for s in expected["subject"]}
    for name in sorted(wanted - set(listed)):
        problems.append(
            PackProblem(path=name, check="statement", message="is not a subject of the statement")
        )
    for key in ("_type", "predicateType", "predicate"):
        if statement.get(key) != expected[key]:
            problems.append(
                PackProblem(
                    path=STATEMENT_PATH,
                    check="statement",
                    message=f"its {key} differs from the pack's manifest and chain",
                )
            )


def _check_links(
    manifest: CustomerEvidencePackManifest,
    manifests: dict[str, Manifest],
    problems: list[PackProblem],
) -> tuple[int, int]:
    """Follow every input link that names an artefact of the pack; the evidence manifest's own
    links must all resolve inside the pack."""
    held: set[tuple[str, str]] = set()
    for artefact in manifest.artefact_files:
        held.add((artefact.kind, artefact.manifest_hash or artefact.digest))
    checked = outside = 0
    for link in manifest.inputs:
        checked += 1
        if (link.kind, link.hash) not in held:
            problems.append(
                PackProblem(
                    path=MANIFEST_PATH,
                    check="link",
                    message=f"input {link.kind} {link.hash} is not an artefact of the pack",
                )
            )
    hashes = {h for _, h in held}
    for path, item in sorted(manifests.items()):
        for link in item.inputs:
            if (link.kind, link.hash) in held:
                checked += 1
            elif link.hash in hashes:
                checked += 1
                problems.append(
                    PackProblem(
                        path=path, check="link", message=f"input {link.hash} is not a {link.kind}"
                    )
                )
            else:
                outside += 1
    if manifest.deployment_hash not in hashes:
        problems.append(
            PackProblem(
                path=MANIFEST_PATH,
                check="link",
                message="the deployment it documents is not an artefact of the pack",
            )
        )
    return checked, outside
