"""The content-addressed artefact store of a factory home, and artefact URIs.

Objects live under ``<home>/objects/sha256/<2 hex>/<62 hex>``, named by the sha256 of their exact
bytes, so an object is written once and never changes. Writes are atomic (temporary file in the
store, fsync, rename) and idempotent: putting the same bytes twice stores one object. Every read
re-hashes the bytes and raises :class:`~customer_model_factory.errors.ArtefactIntegrityError`
naming the digest when they no longer match, so a corrupted or swapped object is never used.

Artefacts are named by URI:

* ``cmf://sha256/<64 lower-case hex>``: an object in the store. Nothing else is accepted (no
  path, query or fragment), so such a URI cannot name a file outside the store.
* ``file:///absolute/path`` (RFC 8089; host empty or ``localhost``): a file anywhere. Reading
  one verifies an expected digest when the caller gives one; :func:`resolve_uri` with a ``root``
  refuses files whose real path (symbolic links followed) lies outside ``root``. ``.`` and ``..``
  segments, percent-encoded separators and NUL bytes are refused outright, and only regular files
  are read (never a FIFO or a device, which could block or never end).

Digests are written ``sha256:<64 lower-case hex>``, as :func:`~customer_model_factory.canonical.
sha256_bytes` returns them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final, Literal
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory.canonical import HASH_PREFIX
from customer_model_factory.errors import ArtefactError, ArtefactIntegrityError
from customer_model_factory.io import atomic_write_bytes, atomic_writer

__all__ = [
    "CMF_URI_PREFIX",
    "DIGEST_RE",
    "ArtefactStore",
    "ArtefactUri",
    "StoredObject",
    "build_cmf_uri",
    "build_file_uri",
    "parse_artefact_uri",
    "read_file_uri",
    "resolve_uri",
]

CMF_URI_PREFIX: Final = "cmf://sha256/"
DIGEST_RE: Final = re.compile(r"^sha256:[0-9a-f]{64}$")
"""The one accepted form of a digest: ``sha256:`` and 64 lower-case hex digits."""
_HEX_RE: Final = re.compile(r"^[0-9a-f]{64}$")
_CHUNK: Final = 1 << 20


def _check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise ArtefactError(f"{digest!r} is not a digest of the form sha256:<64 lower-case hex>")
    return digest


class StoredObject(BaseModel):
    """An object in the store: its digest, size and ``cmf://`` URI."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    digest: str = Field(description="sha256:<hex> of the object's exact bytes.")
    size: int = Field(ge=0, description="Size of the object in bytes.")
    uri: str = Field(description="cmf://sha256/<hex> naming the object.")


class ArtefactUri(BaseModel):
    """A parsed artefact URI: a store object (``digest``) or a local file (``path``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scheme: Literal["cmf", "file"] = Field(description="cmf (the store) or file (a local file).")
    digest: str | None = Field(default=None, description="The object's digest (cmf URIs).")
    path: str | None = Field(default=None, description="The absolute file path (file URIs).")


def build_cmf_uri(digest: str) -> str:
    """Return ``cmf://sha256/<hex>`` for a ``sha256:<hex>`` digest.

    :raises ArtefactError: the digest is malformed.
    """
    return CMF_URI_PREFIX + _check_digest(digest)[len(HASH_PREFIX) :]


def build_file_uri(path: str | Path) -> str:
    """Return the ``file://`` URI of an absolute path (percent-encoded as RFC 8089 asks).

    :raises ArtefactError: the path is relative or holds a NUL byte.
    """
    text = str(path)
    if "\x00" in text:
        raise ArtefactError("a file path holds a NUL byte")
    if not os.path.isabs(text):
        raise ArtefactError(f"{text!r} is not an absolute path; file:// URIs need one")
    return "file://" + quote(Path(text).as_posix(), safe="/")


def parse_artefact_uri(uri: str) -> ArtefactUri:
    """Parse a ``cmf://sha256/<hex>`` or ``file:///path`` URI, refusing anything ambiguous.

    :raises ArtefactError: another scheme, a malformed digest, a relative or traversing path, a
        host other than ``localhost``, a query or fragment, an encoded separator or NUL byte.
    """
    if not isinstance(uri, str):
        raise ArtefactError(f"an artefact URI must be a string, got {type(uri).__name__}")
    if uri.startswith("cmf:"):
        hex_part = uri[len(CMF_URI_PREFIX) :] if uri.startswith(CMF_URI_PREFIX) else ""
        if not _HEX_RE.match(hex_part):
            raise ArtefactError(
                f"{uri[:120]!r} is not a store URI of the form cmf://sha256/<64 lower-case hex>"
            )
        return ArtefactUri(scheme="cmf", digest=HASH_PREFIX + hex_part)
    if not uri.startswith("file:"):
        raise ArtefactError(
            f"{uri[:120]!r} is not an artefact URI (expected cmf://sha256/<hex> or file:///path)"
        )
    if any(ord(char) < 0x20 or char == "\x7f" for char in uri):
        raise ArtefactError("a file URI holds a control character")
    if "?" in uri or "#" in uri:
        raise ArtefactError(f"{uri[:120]!r}: a file URI may not carry a query or fragment")
    if not uri.startswith("file://"):
        raise ArtefactError(f"{uri[:120]!r}: write file URIs as file:///absolute/path")
    host, slash, rest = uri[len("file://") :].partition("/")
    if host not in {"", "localhost"}:
        raise ArtefactError(f"{uri[:120]!r}: only local files (no host) can be read")
    raw_path = slash + rest
    lowered = raw_path.lower()
    if "%2f" in lowered or "%5c" in lowered or "%00" in lowered:
        raise ArtefactError(f"{uri[:120]!r}: an encoded separator or NUL byte in a file URI")
    try:
        path = unquote(raw_path, errors="strict")
    except UnicodeDecodeError:
        raise ArtefactError(f"{uri[:120]!r}: percent-encoded bytes are not UTF-8") from None
    if not path.startswith("/"):
        raise ArtefactError(f"{uri[:120]!r}: a file URI needs an absolute path")
    if any(ord(char) < 0x20 or char == "\x7f" for char in path):
        raise ArtefactError(f"{uri[:120]!r}: an encoded control character in a file URI")
    if any(segment in {".", ".."} for segment in path.split("/")) or "\\" in path:
        raise ArtefactError(f"{uri[:120]!r}: '.' and '..' segments are not allowed")
    return ArtefactUri(scheme="file", path=path)


def _open_regular(path: Path) -> IO[bytes]:
    """Open ``path`` for reading only when it is a regular file (never a FIFO or device)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ArtefactError("file not found", path=path) from None
    except OSError as error:
        raise ArtefactError(f"cannot read: {error.strerror}", path=path) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ArtefactError("not a regular file", path=path)
    return os.fdopen(fd, "rb")


def _read_verified(handle: IO[bytes], expected: str | None, path: Path) -> bytes:
    data = handle.read()
    if expected is not None:
        actual = HASH_PREFIX + hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ArtefactIntegrityError(digest=expected, actual=actual, path=path)
    return data


def read_file_uri(
    uri: str, *, expected_digest: str | None = None, root: str | Path | None = None
) -> bytes:
    """Read the file a ``file://`` URI names, verifying ``expected_digest`` when given.

    :param root: when given, the file's real path must lie inside this directory.
    :raises ArtefactError: a malformed URI, a file outside ``root``, missing or not regular.
    :raises ArtefactIntegrityError: the bytes do not hash to ``expected_digest``.
    """
    parsed = parse_artefact_uri(uri)
    if parsed.scheme != "file" or parsed.path is None:
        raise ArtefactError(f"{uri[:120]!r} is not a file:// URI")
    if expected_digest is not None:
        _check_digest(expected_digest)
    path = Path(parsed.path)
    if root is not None:
        real_root = Path(root).resolve()
        real = path.resolve()
        if real != real_root and real_root not in real.parents:
            raise ArtefactError("file lies outside the allowed directory", path=path)
        path = real
    with _open_regular(path) as handle:
        return _read_verified(handle, expected_digest, path)


class _VerifyingReader:
    """A read-only file object that hashes what it returns and checks the digest at the end."""

    def __init__(self, handle: IO[bytes], digest: str, path: Path) -> None:
        self._handle = handle
        self._digest = digest
        self._path = path
        self._hash = hashlib.sha256()
        self._done = False

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes; at the end of the object, raise if the digest differs."""
        data = self._handle.read(size)
        self._hash.update(data)
        if not data or size < 0:
            self._finish()
        return data

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        actual = HASH_PREFIX + self._hash.hexdigest()
        if actual != self._digest:
            raise ArtefactIntegrityError(digest=self._digest, actual=actual, path=self._path)


class ArtefactStore:
    """The content-addressed object store under a factory home.

    :param home: the factory home (``.cmf/`` by default); objects go to ``home/objects/sha256``.
    """

    def __init__(self, home: str | Path) -> None:
        self.home = Path(home)
        self.root = self.home / "objects" / "sha256"

    def path_for(self, digest: str) -> Path:
        """Return where the object with ``digest`` lives (whether or not it is stored)."""
        hex_digest = _check_digest(digest)[len(HASH_PREFIX) :]
        return self.root / hex_digest[:2] / hex_digest[2:]

    def contains(self, digest: str) -> bool:
        """Return whether an object is stored under ``digest`` (its bytes are not verified)."""
        return self.path_for(digest).is_file()

    def _stored(self, digest: str, size: int) -> StoredObject:
        return StoredObject(digest=digest, size=size, uri=build_cmf_uri(digest))

    def _is_intact(self, digest: str) -> bool:
        try:
            self.verify(digest)
        except ArtefactError:
            return False
        return True

    def put_bytes(self, data: bytes) -> StoredObject:
        """Store ``data`` and return its object; storing the same bytes again changes nothing.

        An object already present but corrupted is rewritten with the good bytes.
        """
        digest = HASH_PREFIX + hashlib.sha256(data).hexdigest()
        if not self._is_intact(digest):
            atomic_write_bytes(self.path_for(digest), data)
        return self._stored(digest, len(data))

    def put_file(self, path: str | Path) -> StoredObject:
        """Store a regular file's bytes, streamed in 1 MiB chunks (constant memory).

        The bytes are copied into a temporary file inside the store while they are hashed, then
        renamed into place, so the stored object holds exactly the bytes that were hashed even if
        the source changes meanwhile.

        :raises ArtefactError: the file is missing or not a regular file.
        """
        source = Path(path)
        self.root.mkdir(parents=True, exist_ok=True)
        digest_state = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(prefix=".put.", suffix=".tmp", dir=self.root)
        tmp = Path(tmp_name)
        try:
            with _open_regular(source) as reader, os.fdopen(fd, "wb") as writer:
                while chunk := reader.read(_CHUNK):
                    digest_state.update(chunk)
                    writer.write(chunk)
                    size += len(chunk)
                writer.flush()
                os.fsync(writer.fileno())
            digest = HASH_PREFIX + digest_state.hexdigest()
            if not self._is_intact(digest):
                target = self.path_for(digest)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, 0o644)
                os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return self._stored(digest, size)

    def get_bytes(self, digest: str) -> bytes:
        """Return the object's bytes after re-hashing them.

        :raises ArtefactError: nothing is stored under ``digest``.
        :raises ArtefactIntegrityError: the stored bytes no longer match ``digest``.
        """
        path = self.path_for(digest)
        if not path.exists():
            raise ArtefactError(f"no object {digest} in the store", path=self.root)
        with _open_regular(path) as handle:
            return _read_verified(handle, digest, path)

    @contextlib.contextmanager
    def open(self, digest: str) -> Iterator[_VerifyingReader]:
        """Open an object for streaming; the digest is checked when the read reaches the end.

        Leaving the block before the end checks the rest too, so a consumer that stops early
        still learns that the object was corrupted. Use :meth:`copy_to` to stream an object into
        a file that appears only when the digest matched.

        :raises ArtefactError: nothing is stored under ``digest``.
        :raises ArtefactIntegrityError: the stored bytes no longer match ``digest``.
        """
        path = self.path_for(digest)
        if not path.exists():
            raise ArtefactError(f"no object {digest} in the store", path=self.root)
        with _open_regular(path) as handle:
            reader = _VerifyingReader(handle, digest, path)
            yield reader
            while reader.read(_CHUNK):
                pass

    def verify(self, digest: str) -> StoredObject:
        """Re-hash a stored object (streamed) and return it.

        :raises ArtefactError: nothing is stored under ``digest``.
        :raises ArtefactIntegrityError: the stored bytes no longer match ``digest``.
        """
        size = 0
        with self.open(digest) as reader:
            while chunk := reader.read(_CHUNK):
                size += len(chunk)
        return self._stored(digest, size)

    def copy_to(self, digest: str, destination: str | Path) -> Path:
        """Write an object to ``destination`` atomically; a corrupted object leaves no file.

        :raises ArtefactIntegrityError: the stored bytes no longer match ``digest``.
        """
        with self.open(digest) as reader, atomic_writer(destination) as writer:
            while chunk := reader.read(_CHUNK):
                writer.write(chunk)
        return Path(destination)

    def resolve(
        self,
        uri: str,
        *,
        expected_digest: str | None = None,
        root: str | Path | None = None,
    ) -> bytes:
        """Return the verified bytes an artefact URI names (see :func:`resolve_uri`)."""
        return resolve_uri(uri, store=self, expected_digest=expected_digest, root=root)


def resolve_uri(
    uri: str,
    *,
    store: ArtefactStore | None = None,
    expected_digest: str | None = None,
    root: str | Path | None = None,
) -> bytes:
    """Return the bytes a ``cmf://`` or ``file://`` URI names, verified.

    A ``cmf://`` URI is read from ``store`` and checked against its own digest (and must equal
    ``expected_digest`` when one is given); a ``file://`` URI is read from disk and checked against
    ``expected_digest`` when one is given.

    :raises ArtefactError: a malformed URI, no store for a ``cmf://`` URI, an object or file that
        is missing, or a ``cmf://`` digest that differs from ``expected_digest``.
    :raises ArtefactIntegrityError: bytes that do not match their digest.
    """
    parsed = parse_artefact_uri(uri)
    if parsed.scheme == "file":
        return read_file_uri(uri, expected_digest=expected_digest, root=root)
    assert parsed.digest is not None
    if expected_digest is not None and _check_digest(expected_digest) != parsed.digest:
        raise ArtefactError(f"{uri} names {parsed.digest}, but {expected_digest} was expected")
    if store is None:
        raise ArtefactError(f"{uri} names a store object, but no factory home was given")
    return store.get_bytes(parsed.digest)
