"""File input and output: atomic writes, a streaming JSONL reader, strict UTF-8 text.

Writes never leave a partial file behind: data goes to a temporary file in the target's directory,
is flushed and fsynced, and replaces the target with one ``os.replace`` (atomic on POSIX and
Windows); the directory is fsynced so the rename survives a crash. If anything fails before the
rename, the temporary file is removed and the previous target is untouched.

The JSONL reader streams one line at a time and never stops at a bad line: every problem becomes a
:class:`JsonlProblem` located as ``file:line`` and the read goes on with the next line. Problems
that make the whole source unreadable (missing file, empty file, a directory with no shards) raise
:class:`~customer_model_factory.errors.DataFormatError` before the first row.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, NamedTuple

import orjson

from customer_model_factory.errors import DataFormatError

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_LINE_BYTES",
    "JsonlProblem",
    "JsonlReader",
    "JsonlRow",
    "atomic_write_bytes",
    "atomic_writer",
    "diagnose_jsonl_line",
    "file_format_problem",
    "json_type_name",
    "list_jsonl_shards",
    "nesting_deeper_than",
    "open_shard",
    "read_text_strict",
    "same_file",
]

DEFAULT_MAX_LINE_BYTES: Final = 1 << 20
DEFAULT_MAX_DEPTH: Final = 64
"""Default deepest nesting of arrays and objects a JSONL line may hold."""
MAX_DEPTH_LIMIT: Final = 512
"""The largest ``max_depth`` accepted (deeper nesting exhausts recursive readers)."""
GZIP_SUFFIX: Final = ".jsonl.gz"
_BOM: Final = b"\xef\xbb\xbf"
_SKIP_CHUNK: Final = 1 << 20


# ---- atomic writes ----


def same_file(a: str | Path, b: str | Path) -> bool:
    """Return whether two paths name the same file: the same inode (hard links, symbolic links)
    when both exist, else the same resolved path (``..`` and symbolic links of the parents).

    Used to refuse an output that would overwrite an input.
    """
    first, second = Path(a), Path(b)
    try:
        one, other = first.stat(), second.stat()
    except OSError:
        return os.path.realpath(first) == os.path.realpath(second)
    return (one.st_dev, one.st_ino) == (other.st_dev, other.st_ino)


def _fsync_directory(directory: Path) -> None:
    # Directories cannot be opened for fsync on Windows; the rename is still atomic there.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: str | Path, *, mode: int = 0o644) -> Iterator[IO[bytes]]:
    """Open a binary file whose content replaces ``path`` only when the block ends without error.

    :param path: the final file; its parent directory is created if missing.
    :param mode: the permission bits of the new file.
    :returns: a context manager yielding a writable binary file object.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_directory(target.parent)


def atomic_write_bytes(path: str | Path, data: bytes | Callable[[], bytes]) -> Path:
    """Write ``data`` to ``path`` atomically and return the path.

    ``data`` may be a callable producing the bytes: it runs inside the write, so a serializer that
    fails leaves the previous file exactly as it was.
    """
    with atomic_writer(path) as handle:
        handle.write(data() if callable(data) else data)
    return Path(path)


def read_text_strict(path: str | Path) -> str:
    """Read a UTF-8 text file, raising a located error for a missing file or invalid bytes."""
    target = Path(path)
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        raise DataFormatError("file not found", path=target) from None
    except IsADirectoryError:
        raise DataFormatError("is a directory, expected a file", path=target) from None
    except OSError as error:
        raise DataFormatError(f"cannot read: {error.strerror}", path=target) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DataFormatError(
            f"invalid UTF-8 at byte {error.start} ({error.reason})", path=target, line=line
        ) from None


# ---- JSONL ----


class JsonlRow(NamedTuple):
    """One JSON object read from a JSONL source.

    :param line: the 1-based line number in ``path``.
    :param value: the decoded object.
    :param path: the file (shard) the row came from.
    :param raw: the exact bytes of the line, without the line terminator.
    """

    line: int
    value: dict[str, Any]
    path: Path
    raw: bytes


@dataclass(frozen=True, slots=True)
class JsonlProblem:
    """A located problem found while reading JSONL.

    ``kind`` is one of ``bom``, ``invalid_utf8``, ``truncated_line``, ``json_array``,
    ``nan_literal``, ``line_too_long``, ``not_object``, ``invalid_json``, ``nesting_too_deep``,
    ``encoding`` and ``compressed`` (the last two for a whole file, at line 1).
    """

    path: Path
    line: int
    kind: str
    message: str

    @property
    def location(self) -> str:
        """``file:line`` of the problem."""
        return f"{self.path}:{self.line}"


def list_jsonl_shards(source: str | Path) -> list[Path]:
    """Return the files a JSONL source is made of: the file itself, or the sorted ``*.jsonl`` and
    ``*.jsonl.gz`` shards of a directory (not recursive; sorted by name so the order is the same
    everywhere). A ``.jsonl.gz`` shard is read through gzip (:func:`open_shard`).

    :raises DataFormatError: the source is missing, is a directory without shards, or a file is
        empty.
    """
    root = Path(source)
    if not root.exists():
        raise DataFormatError("file not found", path=root)
    if root.is_dir():
        shards = sorted(
            p
            for p in root.iterdir()
            if p.name.endswith((".jsonl", GZIP_SUFFIX))
            and not p.name.startswith(".")
            and p.is_file()
        )
        if not shards:
            raise DataFormatError("directory holds no *.jsonl shard (nor *.jsonl.gz)", path=root)
    else:
        shards = [root]
    for shard in shards:
        if shard.stat().st_size == 0:
            raise DataFormatError("file is empty, expected one JSON object per line", path=shard)
    return shards


def open_shard(path: str | Path) -> IO[bytes]:
    """Open a shard for reading its JSONL bytes: through gzip for a ``.jsonl.gz`` file."""
    if str(path).endswith(GZIP_SUFFIX):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


# First bytes of files that are not UTF-8 JSONL, and what to say about them.
_MAGIC: Final = (
    (b"\x1f\x8b", "compressed", "file is gzip-compressed; name it *.jsonl.gz or decompress it"),
    (b"BZh", "compressed", "file is bzip2-compressed; decompress it (JSONL must be UTF-8 text)"),
    (
        b"\xfd7zXZ\x00",
        "compressed",
        "file is xz-compressed; decompress it (JSONL must be UTF-8 text)",
    ),
    (
        b"\x28\xb5\x2f\xfd",
        "compressed",
        "file is zstd-compressed; decompress it (JSONL must be UTF-8 text)",
    ),
    (b"PK\x03\x04", "compressed", "file is a zip archive, not JSONL text"),
    (b"\xff\xfe\x00\x00", "encoding", "file is UTF-32 encoded; JSONL must be UTF-8"),
    (b"\x00\x00\xfe\xff", "encoding", "file is UTF-32 encoded; JSONL must be UTF-8"),
    (b"\xff\xfe", "encoding", "file is UTF-16 encoded; JSONL must be UTF-8"),
    (b"\xfe\xff", "encoding", "file is UTF-16 encoded; JSONL must be UTF-8"),
)


def file_format_problem(head: bytes) -> tuple[str, str] | None:
    """``(kind, message)`` when a file's first bytes show it is not UTF-8 JSONL (compressed, or
    UTF-16/UTF-32 with or without a byte order mark), else ``None``."""
    for magic, kind, message in _MAGIC:
        if head.startswith(magic):
            return kind, message
    pairs = head[:64]
    if len(pairs) >= 4 and pairs.count(0) * 4 >= len(pairs):
        # ASCII text written as UTF-16 or UTF-32: every other (or three of four) bytes are NUL.
        width = "UTF-32" if pairs[1:3] == b"\x00\x00" or pairs[:3] == b"\x00\x00\x00" else "UTF-16"
        return "encoding", f"file is {width} encoded; JSONL must be UTF-8"
    return None


_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKET: Final = re.compile(rb"[\[\]{}]")


def nesting_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether a JSON text nests arrays and objects more than ``limit`` levels deep (brackets
    inside strings do not count). Cheap for almost every line: it needs more than ``limit``
    opening brackets to be deep."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if match.group() in b"[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def diagnose_jsonl_line(
    raw: bytes, *, last_without_newline: bool, max_depth: int = DEFAULT_MAX_DEPTH
) -> tuple[str, str]:
    """Return ``(kind, message)`` explaining why a JSONL line is not valid JSON.

    Slow (it decodes the line again with :mod:`json` to name the problem): call it only on a line
    a fast parser already rejected. ``kind`` is one of the :class:`JsonlProblem` kinds.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return "invalid_utf8", f"invalid UTF-8 at column {error.start + 1} ({error.reason})"
    if nesting_deeper_than(raw, max_depth):
        return "nesting_too_deep", f"arrays and objects nest deeper than {max_depth} levels"
    try:
        json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        if str(error) in {"NaN", "Infinity", "-Infinity"}:
            return "nan_literal", f"{error} is not valid JSON (use null or a string)"
        if last_without_newline:
            return "truncated_line", "the file ends in the middle of a JSON object"
        detail = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
        column = error.colno if isinstance(error, json.JSONDecodeError) else 1
        return "invalid_json", f"invalid JSON at column {column}: {detail}"
    # Python's json accepts what orjson, the reference decoder, rejects: say what that is.
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        reason = _REASONS.get(error.msg, error.msg)
        return "invalid_json", f"invalid JSON at column {error.colno}: {reason}"
    return "invalid_json", "invalid JSON"  # both accept it here: report, do not guess


_REASONS: Final = {
    "number is infinity when parsed as double": (
        "a number too large for a double (readers disagree on its value)"
    ),
    "no low surrogate in string": "a lone UTF-16 surrogate escape (not a Unicode character)",
    "lone leading surrogate in hex escape": (
        "a lone UTF-16 surrogate escape (not a Unicode character)"
    ),
    "unexpected end of hex escape": "a lone UTF-16 surrogate escape (not a Unicode character)",
    "invalid low surrogate in string": "a lone UTF-16 surrogate escape (not a Unicode character)",
    "invalid high surrogate in string": (
        "a lone UTF-16 surrogate escape (not a Unicode character)"
    ),
}


@dataclass
class JsonlReader:
    """Stream the objects of a JSONL file or a directory of ``*.jsonl`` shards.

    Iterating yields :class:`JsonlRow` for every line holding a JSON object; every other line is
    recorded in :attr:`problems` (and passed to ``on_problem`` when given) and skipped. Blank lines
    are skipped silently.

    :param source: a ``.jsonl`` file or a directory of shards.
    :param max_line_bytes: lines longer than this are reported, not parsed (default 1 MiB).
    :param on_problem: called with each problem as it is found.
    """

    source: str | Path
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    on_problem: Callable[[JsonlProblem], None] | None = None
    problems: list[JsonlProblem] = field(default_factory=list)
    shards: list[Path] = field(init=False)

    def __post_init__(self) -> None:
        self.shards = list_jsonl_shards(self.source)

    def _report(self, path: Path, line: int, kind: str, message: str) -> None:
        problem = JsonlProblem(path, line, kind, message)
        self.problems.append(problem)
        if self.on_problem is not None:
            self.on_problem(problem)

    def __iter__(self) -> Iterator[JsonlRow]:
        for shard in self.shards:
            yield from self._read_shard(shard)

    def _read_shard(self, path: Path) -> Iterator[JsonlRow]:
        limit = self.max_line_bytes
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        with open_shard(path) as handle:
            readline = handle.readline
            number = 0
            while True:
                raw = readline(limit + 2)
                if not raw:
                    return
                number += 1
                has_newline = raw.endswith(b"\n")
                if not has_newline and len(raw) > limit:
                    self._skip_rest_of_line(handle)
                    self._report(
                        path, number, "line_too_long", f"line is longer than {limit} bytes"
                    )
                    continue
                if has_newline:
                    raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
                if number == 1 and raw.startswith(_BOM):
                    self._report(
                        path, number, "bom", "file starts with a UTF-8 byte order mark (BOM)"
                    )
                    raw = raw[len(_BOM) :]
                if len(raw) > limit:
                    self._report(
                        path, number, "line_too_long", f"line is longer than {limit} bytes"
                    )
                    continue
                try:
                    value = loads(raw)
                except decode_error:
                    if not raw.strip():
                        continue
                    if number == 1 and raw.lstrip().startswith(b"["):
                        self._report(
                            path,
                            number,
                            "json_array",
                            "file holds a JSON array; JSONL needs one JSON object per line",
                        )
                        return
                    kind, message = diagnose_jsonl_line(raw, last_without_newline=not has_newline)
                    self._report(path, number, kind, message)
                    continue
                if type(value) is not dict:
                    if number == 1 and isinstance(value, list):
                        self._report(
                            path,
                            number,
                            "json_array",
                            "file holds a JSON array; JSONL needs one JSON object per line",
                        )
                        return
                    self._report(
                        path,
                        number,
                        "not_object",
                        f"line holds a JSON {json_type_name(value)}, expected an object",
                    )
                    continue
                yield JsonlRow(number, value, path, raw)

    @staticmethod
    def _skip_rest_of_line(handle: IO[bytes]) -> None:
        while True:
            chunk = handle.readline(_SKIP_CHUNK)
            if not chunk or chunk.endswith(b"\n"):
                return


def json_type_name(value: Any) -> str:
    """Return the JSON name of a decoded value's type (``null``, ``object``, ``array``, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
