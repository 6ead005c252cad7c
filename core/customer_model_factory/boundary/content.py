"""Turn any file's bytes into the text a rule can be matched against, or say why it cannot.

Plain text is matched as it is. Everything else is expanded rather than skipped, so that exit 0
keeps meaning "everything that will be published was scanned":

* UTF-16 and UTF-32 text, told by its byte-order mark or, without one, by the pattern of its
  NUL bytes, is decoded and matched as text (lines and columns refer to the decoded text);
* archives (zip, wheel, jar, tar, gzip, bzip2, xz) are opened member by member, to a bounded
  nesting depth and a bounded number of expanded bytes; each member is expanded in turn and
  reported as ``archive!/member`` (a gzip, bzip2 or xz file's single member is its stored name
  or ``-``; its concatenated streams are all read); member names are returned so path rules
  see them too, and comments, link targets, owner names and PAX headers are a ``listing``;
* PDF streams compressed with Flate are inflated and expanded, and so are archives inside
  other binaries (a zip with data before it, gzip streams, PNG compressed text chunks), and the
  members of ``ar`` archives (``.deb``);
* compressed containers that cannot be opened here (7z, rar, zstd, lz4, cab) are problems;
* compiled Python (``.pyc``) is read for its marshalled strings (names, constants, docstrings),
  each on its own line, since a marshalled string is followed by the next object's type byte
  with nothing between them;
* any other binary (images, executables) is reduced to its printable runs, as ``strings``
  does: ASCII and UTF-8 runs, and UTF-16 and UTF-32 (little- and big-endian) runs.

What cannot be expanded (an archive nested too deep, a member above the size limit, an
encrypted or corrupt archive) is returned as a *problem*; the verifier reports it as unscanned
content, an error, never as a silent pass.
"""

from __future__ import annotations

import bz2
import contextlib
import io
import lzma
import re
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "BINARY_PROBE",
    "MEMBER_SEPARATOR",
    "ContentLimits",
    "Expansion",
    "Piece",
    "expand_content",
    "is_compiled_python",
    "is_plain_text",
    "legacy_text",
    "marshalled_strings",
    "printable_runs",
    "strip_utf8_bom",
]

BINARY_PROBE: Final = 8000
"""A NUL byte in this many leading bytes marks content that is not plain UTF-8/Latin text."""

MEMBER_SEPARATOR: Final = "!/"
"""Joins an archive's path and a member's name (``dist/x.whl!/pkg/mod.py``)."""

_MIN_RUN: Final = 3
_UTF8_RUN: Final = re.compile(
    rb"(?:[\t\x20-\x7e]|[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3})"
    rb"{%d,}" % _MIN_RUN
)
# Both start with a NUL byte, so the regex engine skips ahead with memchr; a little-endian
# run's first character is the byte before the match.
_UTF16LE_RUN: Final = re.compile(rb"\x00(?:[\t\x20-\x7e]\x00){%d,}" % (_MIN_RUN - 1))
_UTF16BE_RUN: Final = re.compile(rb"(?:\x00[\t\x20-\x7e]){%d,}" % _MIN_RUN)
_UTF32LE_RUN: Final = re.compile(
    rb"\x00\x00\x00(?:[\t\x20-\x7e]\x00\x00\x00){%d,}" % (_MIN_RUN - 1)
)
_UTF32BE_RUN: Final = re.compile(rb"(?:\x00\x00\x00[\t\x20-\x7e]){%d,}" % _MIN_RUN)
# Every byte that cannot be part of a printable run becomes a line break: one C pass, and the
# runs keep their offsets. The second table keeps bytes >= 0x80 for UTF-8 runs.
_ASCII_RUNS: Final = bytes(b if b == 9 or 32 <= b < 127 else 10 for b in range(256))
_UTF8_RUNS: Final = bytes(b if b == 9 or 32 <= b < 127 or b >= 128 else 10 for b in range(256))
_UTF8_MULTIBYTE: Final = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
_PDF_STREAM: Final = re.compile(rb"stream\r?\n")
# Compressed containers this module cannot open: reported unscanned, never read as strings
# (their compressed bytes would hide every identifier).
_UNSUPPORTED: Final = (
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"MSCF\0\0\0\0", "cab"),
)
_EMBEDDED_GZIP: Final = re.compile(b"\x1f\x8b\x08")
_MAX_EMBEDDED: Final = 16
_PNG: Final = b"\x89PNG\r\n\x1a\n"
_BOMS: Final = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


@dataclass(frozen=True)
class ContentLimits:
    """Bounds on expansion: nesting depth, one member's size, all expanded bytes of a file."""

    max_depth: int = 4
    max_member_size: int = 10 * 1024 * 1024
    max_total: int = 80 * 1024 * 1024
    max_members: int = 20_000


@dataclass(frozen=True, slots=True)
class Piece:
    """Text to match: where it sits inside the file (``""`` for the file itself) and its form.

    ``form`` is ``text``, a codec name (``utf-16-le``…), ``strings`` (printable runs of a
    binary) or ``listing`` (archive comments and link targets).
    """

    suffix: str
    data: bytes
    form: str


@dataclass
class Expansion:
    """The pieces of one file, the member names its archives hold, and what was not scanned."""

    pieces: list[Piece] = field(default_factory=list)
    member_paths: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    expanded_bytes: int = 0


def strip_utf8_bom(data: bytes) -> bytes:
    """Replace a UTF-8 byte-order mark by one space, so a rule matches the first word."""
    return b" " + data[3:] if data.startswith(b"\xef\xbb\xbf") else data


def _archive_kind(data: bytes) -> str | None:
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return "zip"
    if data.startswith(b"\x1f\x8b"):
        return "gzip"
    if data.startswith(b"BZh") and len(data) > 10 and data[4:10] == b"1AY&SY":
        return "bzip2"
    if data.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if len(data) >= 262 and data[257:262] == b"ustar":
        return "tar"
    if data.startswith(b"!<arch>\n"):
        return "ar"
    for magic, name in _UNSUPPORTED:
        if data.startswith(magic):
            return name
    return None


def is_plain_text(data: bytes) -> bool:
    """Return whether ``data`` can be matched as it is (no NUL byte anywhere, no BOM of a wide
    encoding, not an archive).

    The whole file is searched for NUL (``memchr``, cheap): text that turns into UTF-16 after
    8 KB would otherwise pass as ASCII.
    """
    if data.find(b"\0") >= 0:
        return False
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    return _archive_kind(data) is None


def _wide_codec(data: bytes) -> tuple[str, int] | None:
    """Return the codec and BOM length of UTF-16/UTF-32 text, told by BOM or NUL pattern."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec, len(bom)
    sample = data[: BINARY_PROBE - BINARY_PROBE % 4]
    if len(sample) < 4:
        return None
    quarter = len(sample) // 4
    zeros = [sample[i::4].count(0) / quarter for i in range(4)]
    if zeros[1] > 0.9 and zeros[2] > 0.9 and zeros[3] > 0.9 and zeros[0] < 0.1:
        return "utf-32-le", 0
    if zeros[0] > 0.9 and zeros[1] > 0.9 and zeros[2] > 0.9 and zeros[3] < 0.1:
        return "utf-32-be", 0
    even = (zeros[0] + zeros[2]) / 2
    odd = (zeros[1] + zeros[3]) / 2
    if odd > 0.4 and even < 0.05:
        return "utf-16-le", 0
    if even > 0.4 and odd < 0.05:
        return "utf-16-be", 0
    return None


def legacy_text(data: bytes) -> bytes | None:
    """Return text that is not valid UTF-8 re-read as Windows-1252 (one character a byte), as
    UTF-8; ``None`` for ASCII or valid UTF-8. A Latin-1 ``Zürich`` is then matched too."""
    if data.isascii():
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace").encode("utf-8")
    return None


def _mostly_printable(text: str) -> bool:
    sample = text[:4000]
    if not sample:
        return False
    good = sum(1 for char in sample if char.isprintable() or char in "\t\n\r\f\v")
    return good >= 0.9 * len(sample)


def _decode_wide(data: bytes) -> Piece | None:
    found = _wide_codec(data)
    if found is None:
        return None
    codec, bom = found
    body = data[bom:]
    unit = 4 if codec.startswith("utf-32") else 2
    body = body[: len(body) - len(body) % unit]
    try:
        text = body.decode(codec)
    except UnicodeDecodeError:
        return None
    if not _mostly_printable(text):
        return None  # a binary that only looks like wide text: read it as a binary
    return Piece("", text.encode("utf-8", "surrogatepass"), codec)


# Marshal type codes of strings (with and without the FLAG_REF bit 0x80), and the size of
# their length field: short ASCII (1 byte), ASCII, interned, unicode and bytes (4 bytes).
_MARSHAL_STRINGS: Final = {
    ord("z"): 1,
    ord("Z"): 1,
    ord("a"): 4,
    ord("A"): 4,
    ord("t"): 4,
    ord("u"): 4,
    ord("s"): 4,
}
_MARSHAL_STRINGS.update({code | 0x80: size for code, size in list(_MARSHAL_STRINGS.items())})


# Letters and high bytes only: nothing to escape in a character class.
_MARSHAL_TYPE: Final = re.compile(b"[" + bytes(sorted(_MARSHAL_STRINGS)) + b"]")


def is_compiled_python(data: bytes) -> bool:
    """Return whether ``data`` looks like a ``.pyc``: a magic number ending ``\\r\\n``, PEP 552
    flags 0, 1 or 3, then a marshalled code object."""
    return (
        len(data) > 16
        and data[2:4] == b"\r\n"
        and data[4:8] in (b"\0\0\0\0", b"\1\0\0\0", b"\3\0\0\0")
        and data[16] in (0x63, 0xE3)
    )


def marshalled_strings(data: bytes) -> bytes:
    """Return the strings a marshalled ``.pyc`` holds, one a line (found by their type byte
    and length wherever the bytes that follow are that long and printable: no unmarshalling)."""
    found: list[bytes] = []
    position, end = 0, len(data)
    while position < end:
        candidate = _MARSHAL_TYPE.search(data, position)
        if candidate is None:
            break
        position = candidate.start()
        size = _MARSHAL_STRINGS[data[position]]
        start = position + 1 + size
        length = int.from_bytes(data[position + 1 : start], "little")
        body = data[start : start + length]
        if 1 <= length == len(body) and _UTF8_RUN.fullmatch(body + b"   "):
            found.append(body)
            position = start + length
            continue
        position += 1
    return b"\n".join(found)


def printable_runs(data: bytes, *, narrow: bool = True, wide: bool = True) -> bytes:
    """Return the printable runs of ``data`` (as ``strings`` finds them), separated by line
    breaks.

    ``narrow``: ASCII runs (every other byte made a line break, so an identifier is never
    glued to a stray high byte), then, when ``data`` holds any UTF-8 sequence, the same with
    bytes >= 0x80 kept (non-ASCII identifiers); ``wide``: UTF-16 and UTF-32 (little- and
    big-endian) runs of ASCII characters, decoded to UTF-8.
    """
    parts: list[bytes] = []
    if narrow:
        parts.append(data.translate(_ASCII_RUNS))
        if _UTF8_MULTIBYTE.search(data):
            parts.append(data.translate(_UTF8_RUNS))
    if wide:
        for found in _UTF16LE_RUN.finditer(data):
            start = found.start()
            if start > 0 and _ASCII_RUNS[data[start - 1]] != 10:
                parts.append(data[start - 1 : found.end()].decode("utf-16-le").encode())
        parts.extend(
            found.group().decode("utf-16-be").encode() for found in _UTF16BE_RUN.finditer(data)
        )
        for found in _UTF32LE_RUN.finditer(data):
            start = found.start()
            if start > 0 and _ASCII_RUNS[data[start - 1]] != 10:
                parts.append(data[start - 1 : found.end()].decode("utf-32-le").encode())
        parts.extend(
            found.group().decode("utf-32-be").encode() for found in _UTF32BE_RUN.finditer(data)
        )
    return b"\n".join(part for part in parts if part.strip(b"\n"))


class _Budget:
    def __init__(self, limits: ContentLimits) -> None:
        self.limits = limits
        self.used = 0

    def take(self, size: int) -> bool:
        self.used += size
        return self.used <= self.limits.max_total


def _read_limited(read: Callable[[int], bytes], limit: int) -> bytes | None:
    """Read at most ``limit`` bytes through ``read``; ``None`` when there is more."""
    data = read(limit + 1)
    return None if len(data) > limit else data


def _decoder(kind: str) -> zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor:
    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    return zlib.decompressobj()


def _decompress_stream(data: bytes, kind: str, limit: int) -> bytes | None:
    """Decompress every stream of ``data`` (gzip, bzip2 and xz files may hold several, one
    after the other); ``None`` when the output would exceed ``limit``.

    :raises zlib.error, OSError, EOFError, lzma.LZMAError: data after a stream that is neither
        another stream nor padding (it cannot be read, so it is reported unscanned).
    """
    out = bytearray()
    remaining = data
    while remaining:
        decoder = _decoder(kind)
        out += decoder.decompress(remaining, limit + 1 - len(out))
        if len(out) > limit:
            return None
        if not decoder.eof or kind == "zlib":
            break  # a truncated stream: what it holds was read
        remaining = decoder.unused_data
        if not remaining.strip(b"\0"):
            break  # trailing NUL padding
    return bytes(out)


def _gzip_name(data: bytes) -> str:
    # FNAME flag: a NUL-terminated original file name follows the 10-byte header.
    if len(data) > 10 and data[3] & 0x08 and not data[3] & 0x04:
        end = data.find(b"\0", 10)
        if end > 10:
            return data[10:end].decode("latin-1")
    return "-"


class _Expander:
    def __init__(self, limits: ContentLimits) -> None:
        self.budget = _Budget(limits)
        self.limits = limits
        self.result = Expansion()

    def problem(self, suffix: str, reason: str) -> None:
        self.result.problems.append((suffix, reason))

    def expand(self, data: bytes, suffix: str, depth: int) -> None:
        kind = _archive_kind(data)
        if kind is not None:
            if depth >= self.limits.max_depth:
                self.problem(suffix, f"archive nested deeper than {self.limits.max_depth} levels")
                return
            try:
                self._archive(kind, data, suffix, depth)
            # Any failure of a parser on hostile bytes means content not scanned: an error
            # finding (exit 1), never an internal error and never a pass.
            except Exception as error:
                if kind == "tar" and data.find(b"\0", 0, BINARY_PROBE) < 0:
                    # Text that merely holds "ustar" at offset 257: match it as text.
                    self._text_or_binary(data, suffix, depth)
                    return
                self.problem(suffix, f"{kind} archive could not be read ({type(error).__name__})")
            return
        self._text_or_binary(data, suffix, depth)

    def _text_or_binary(self, data: bytes, suffix: str, depth: int) -> None:
        pieces = self.result.pieces
        if is_plain_text(data):
            pieces.append(Piece(suffix, strip_utf8_bom(data), "text"))
            legacy = legacy_text(data)
            if legacy is not None:
                pieces.append(Piece(suffix, legacy, "cp1252"))
            return
        wide = _decode_wide(data)
        if wide is not None:
            pieces.append(Piece(suffix, wide.data, wide.form))
            # Narrow runs hidden among wide text (none in genuine UTF-16: every other byte
            # is NUL there), so a BOM cannot turn ASCII content into unread "wide" text.
            narrow = printable_runs(data, wide=False)
            if narrow:
                pieces.append(Piece(suffix, narrow, "strings"))
            return
        nul = data.find(b"\0")
        if nul < 0 or nul >= BINARY_PROBE:
            # Text (a BOM that did not decode, or NUL bytes only far in): the text as it is,
            # and the wide runs its NUL bytes may hold.
            pieces.append(Piece(suffix, strip_utf8_bom(data), "text"))
            legacy = legacy_text(data)
            if legacy is not None:
                pieces.append(Piece(suffix, legacy, "cp1252"))
            hidden = printable_runs(data, narrow=False)
            if hidden:
                pieces.append(Piece(suffix, hidden, "strings"))
            return
        if data.startswith(b"%PDF"):
            self._pdf_streams(data, suffix, depth)
        self._embedded(data, suffix, depth)
        runs = printable_runs(data)
        if is_compiled_python(data):
            runs = marshalled_strings(data) + b"\n" + runs
        self.result.pieces.append(Piece(suffix, runs, "strings"))

    def _member(self, data: bytes | None, suffix: str, depth: int) -> None:
        if data is None:
            self.problem(suffix, f"member above the {self.limits.max_member_size}-byte limit")
            return
        if not self.budget.take(len(data)):
            self.problem(suffix, f"archive expands beyond {self.limits.max_total} bytes")
            return
        self.result.expanded_bytes += len(data)
        self.expand(data, suffix, depth + 1)

    def _names(self, suffix: str, names: list[str]) -> bool:
        if len(names) > self.limits.max_members:
            self.problem(suffix, f"archive holds more than {self.limits.max_members} members")
            return False
        self.result.member_paths.extend(suffix + MEMBER_SEPARATOR + name for name in names)
        return True

    def _archive(self, kind: str, data: bytes, suffix: str, depth: int) -> None:
        limit = self.limits.max_member_size
        if kind == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                infos = [info for info in archive.infolist() if not info.is_dir()]
                if not self._names(suffix, [info.filename for info in archive.infolist()]):
                    return
                # The archive's comment and each member's: text the archive publishes too.
                notes = [archive.comment, *(info.comment for info in archive.infolist())]
                listing = b"\n".join(note for note in notes if note)
                if listing:
                    self.result.pieces.append(Piece(suffix, listing, "listing"))
                for info in infos:
                    where = suffix + MEMBER_SEPARATOR + info.filename
                    if info.flag_bits & 0x1:
                        self.problem(where, "member is encrypted")
                        continue
                    if info.file_size > limit:
                        self._member(None, where, depth)
                        continue
                    with archive.open(info) as handle:
                        self._member(_read_limited(handle.read, limit), where, depth)
        elif kind == "tar":
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
                members = archive.getmembers()
                if not self._names(suffix, [member.name for member in members]):
                    return
                # Link targets, owner names (a build machine's user) and PAX header values.
                notes = [m.linkname for m in members if m.issym() or m.islnk()]
                notes += [name for m in members for name in (m.uname, m.gname) if name]
                notes += [str(v) for m in members for v in m.pax_headers.values()]
                if notes:
                    listing = "\n".join(notes).encode("utf-8", "surrogateescape")
                    self.result.pieces.append(Piece(suffix, listing, "listing"))
                for member in members:
                    if not member.isfile():
                        continue
                    where = suffix + MEMBER_SEPARATOR + member.name
                    if member.size > limit:
                        self._member(None, where, depth)
                        continue
                    handle = archive.extractfile(member)
                    if handle is not None:
                        self._member(_read_limited(handle.read, limit), where, depth)
        elif kind == "ar":
            self._ar(data, suffix, depth)
        elif kind in {name for _magic, name in _UNSUPPORTED}:
            self.problem(suffix, f"{kind} archive: format not supported, content not read")
        else:
            name = _gzip_name(data) if kind == "gzip" else "-"
            # The stored file name is a member path: path rules see it, and it is redacted.
            self._names(suffix, [name])
            where = suffix + MEMBER_SEPARATOR + name
            self._member(_decompress_stream(data, kind, limit), where, depth)

    def _ar(self, data: bytes, suffix: str, depth: int) -> None:
        """Members of a Unix ``ar`` archive (``.deb`` packages, ``.a`` libraries)."""
        position = 8
        names: list[tuple[str, int, int]] = []
        while position + 60 <= len(data):
            header = data[position : position + 60]
            if header[58:60] != b"`\n":
                raise ValueError("bad ar member header")
            name = header[:16].decode("latin-1").rstrip().rstrip("/") or "-"
            size = int(header[48:58].decode("ascii").strip() or "0")
            start = position + 60
            names.append((name, start, size))
            position = start + size + (size % 2)
        if not self._names(suffix, [name for name, _start, _size in names]):
            return
        for name, start, size in names:
            where = suffix + MEMBER_SEPARATOR + name
            body = data[start : start + size]
            self._member(body if size <= self.limits.max_member_size else None, where, depth)

    def _embedded(self, data: bytes, suffix: str, depth: int) -> None:
        """Archives inside a binary that does not start with one: a zip with data before it
        (self-extracting, polyglots), gzip streams, PNG compressed text chunks."""
        if depth >= self.limits.max_depth:
            return
        if b"PK\x05\x06" in data and b"PK\x03\x04" in data:
            with contextlib.suppress(Exception):  # not a zip after all: its runs are read
                self._archive("zip", data, suffix, depth)
        for count, found in enumerate(_EMBEDDED_GZIP.finditer(data, 1)):
            if count >= _MAX_EMBEDDED:
                break
            try:
                inflated = _decompress_stream(
                    data[found.start() :], "gzip", self.limits.max_member_size
                )
            except (zlib.error, OSError, EOFError):
                continue
            if inflated:
                self._member(inflated, f"{suffix}{MEMBER_SEPARATOR}@{found.start()}", depth)
        if data.startswith(_PNG):
            self._png_text(data, suffix, depth)

    def _png_text(self, data: bytes, suffix: str, depth: int) -> None:
        position = len(_PNG)
        while position + 8 <= len(data):
            length = int.from_bytes(data[position : position + 4], "big")
            kind = data[position + 4 : position + 8]
            body = data[position + 8 : position + 8 + length]
            position += 12 + length
            compressed: bytes | None = None
            if kind == b"zTXt":
                compressed = body.partition(b"\0")[2][1:]
            elif kind == b"iTXt":
                _keyword, _, rest = body.partition(b"\0")
                if rest[:1] == b"\1":
                    compressed = rest[2:].split(b"\0", 2)[-1]
            if compressed:
                try:
                    text = _decompress_stream(compressed, "zlib", self.limits.max_member_size)
                except zlib.error:
                    continue
                where = f"{suffix}{MEMBER_SEPARATOR}{kind.decode()}@{position}"
                self._member(text, where, depth)

    def _pdf_streams(self, data: bytes, suffix: str, depth: int) -> None:
        for number, found in enumerate(_PDF_STREAM.finditer(data), start=1):
            end = data.find(b"endstream", found.end())
            body = data[found.end() : end if end >= 0 else len(data)]
            try:
                inflated = _decompress_stream(body, "zlib", self.limits.max_member_size)
            except zlib.error:
                continue  # not a Flate stream: its printable runs are scanned with the file
            where = f"{suffix}{MEMBER_SEPARATOR}stream-{number}"
            self._member(inflated, where, depth)


def expand_content(data: bytes, limits: ContentLimits) -> Expansion:
    """Return the pieces of text in ``data`` to match, member names, and what was not scanned.

    Suffixes are relative to the file: ``""`` for the file itself, ``!/member`` for an archive
    member (``!/outer.zip!/inner.txt`` when nested).
    """
    expander = _Expander(limits)
    expander.expand(data, "", 0)
    return expander.result
