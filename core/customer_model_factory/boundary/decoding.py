"""Encoded forms: decode the regions of a buffer that hide text, so rules see it too.

Four encodings are decoded (and nested ones, to a bounded depth, as gitleaks'
``--max-decode-depth``): ``percent`` (``%61%63``), ``json-escape`` (JSON and Python ``\\u0061``,
``\\U00000061``, ``\\x61`` escapes), ``html-entity`` (``&#97;``, ``&#x61;``, ``&amp;``) and
``base64`` (runs of at least :data:`MIN_BASE64` base64 or base64url characters that decode to
UTF-8 text). Only the lines that hold a marker of an encoding are decoded: a decoded *layer* is a
buffer with the same number of lines as its source, holding each decoded line at its own line
number (every other line empty), so a finding in it names the file's real line. A layer's label
names the chain of decodings that made it, outermost first (``base64``, ``percent>base64``).
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Callable, Iterator
from typing import Final
from urllib.parse import unquote_to_bytes

__all__ = ["DECODINGS", "DEFAULT_DECODE_DEPTH", "MAX_DECODE_DEPTH", "MIN_BASE64", "decoded_layers"]

DEFAULT_DECODE_DEPTH: Final = 3
"""Encodings decoded inside each other by default (``--max-decode-depth``)."""
MAX_DECODE_DEPTH: Final = 8
"""The deepest ``--max-decode-depth`` accepted."""
MIN_BASE64: Final = 16
"""Shortest base64 run decoded (12 bytes of text)."""
DECODINGS: Final = ("percent", "json-escape", "html-entity", "base64")

_PERCENT: Final = re.compile(rb"%[0-9A-Fa-f]{2}")
# Escapes that can spell a word: printable ASCII (U+0020-U+007F) or beyond Latin-1 controls;
# the control-character escapes that fill source code ("\x00", "\x1b") hide no identifier.
_ESCAPE: Final = re.compile(
    rb"\\(?:u00[2-7][0-9A-Fa-f]|u(?!00)[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|x[2-7][0-9A-Fa-f])"
)
# Numeric entities, and named ones other than the markup escapes (&amp; &lt; &gt; &quot; &apos;
# &nbsp;) that fill HTML and spell nothing.
_ENTITY: Final = re.compile(
    rb"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|(?!(?:amp|lt|gt|quot|apos|nbsp);)[A-Za-z][A-Za-z0-9]{1,31});"
)
_QUICK: Final = {"percent": b"%", "json-escape": b"\\", "html-entity": b"&"}
_BASE64_ALPHABET: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_"
)
# Base64 bytes to "a", every other byte to a space: a pattern with a literal prefix of
# MIN_BASE64 "a" finds the runs at C speed.
_BASE64_TABLE: Final = bytes((97 if b in _BASE64_ALPHABET else 32) for b in range(256))
_BASE64_RUN: Final = re.compile(b"a" * MIN_BASE64 + b"a*")
# Bytes of decoded text that count as printable (plus every non-ASCII byte of valid UTF-8).
_PRINTABLE: Final = bytes([9, 10, 13, *range(32, 127)])


def _percent(line: bytes) -> bytes:
    return unquote_to_bytes(line)


def _escape_one(match: re.Match[bytes]) -> bytes:
    code = int(match.group()[2:], 16)
    try:
        return chr(code).encode("utf-8")
    except (ValueError, UnicodeEncodeError):  # a lone surrogate or beyond U+10FFFF
        return b" "


_ANY_ESCAPE: Final = re.compile(rb"\\(?:u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|x[0-9A-Fa-f]{2})")


def _escapes(line: bytes) -> bytes:
    return _ANY_ESCAPE.sub(_escape_one, line)


def _entities(line: bytes) -> bytes:
    return html.unescape(line.decode("utf-8", "replace")).encode("utf-8", "replace")


def _base64_text(run: bytes) -> bytes | None:
    body = run.rstrip(b"=")
    if len(body) % 4 == 1:
        return None
    padded = body + b"=" * (-len(body) % 4)
    try:
        if b"-" in body or b"_" in body:
            decoded = base64.urlsafe_b64decode(padded)
        else:
            decoded = base64.b64decode(padded, validate=True)
        decoded.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if not decoded.isascii():
        return decoded
    # Mostly printable: binary data that happens to be valid UTF-8 is not text.
    if len(decoded.translate(None, _PRINTABLE)) * 10 > len(decoded):
        return None
    return decoded


def _base64_runs(data: bytes) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every run of at least :data:`MIN_BASE64` base64 characters that
    holds both upper- and lower-case letters (base64 of text does; words, paths, hex digests
    and rulers of dashes do not)."""
    for found in _BASE64_RUN.finditer(data.translate(_BASE64_TABLE)):
        start, end = found.span()
        run = data[start:end]
        if run.lower() != run and run.upper() != run:
            yield start, end


def _base64_layer(data: bytes) -> bytes | None:
    """The layer of ``data`` holding, at each line, the text its base64 runs decode to."""
    pieces: list[bytes] = []
    emitted = 0  # the line feeds before this offset are in ``pieces``
    line_end = -1
    for start, end in _base64_runs(data):
        text = _base64_text(data[start:end])
        if text is None:
            continue
        text = text.replace(b"\n", b" ").replace(b"\r", b" ")
        if start < line_end:  # another run of the same line
            pieces.append(b" " + text)
            continue
        line_start = data.rfind(b"\n", 0, start) + 1
        line_end = data.find(b"\n", end)
        line_end = len(data) if line_end < 0 else line_end
        pieces.append(b"\n" * data.count(b"\n", emitted, line_start))
        pieces.append(text)
        emitted = line_end
    if not pieces:
        return None
    pieces.append(b"\n" * data.count(b"\n", emitted))
    return b"".join(pieces)


_DECODERS: Final[tuple[tuple[str, re.Pattern[bytes], Callable[[bytes], bytes]], ...]] = (
    ("percent", _PERCENT, _percent),
    ("json-escape", _ESCAPE, _escapes),
    ("html-entity", _ENTITY, _entities),
)


def _has_marker(data: bytes) -> bool:
    """Whether some line of ``data`` holds a marker of some encoding."""
    for name, marker, _decode in _DECODERS:
        if _QUICK[name] in data and marker.search(data) is not None:
            return True
    return next(_base64_runs(data), None) is not None


def _decode_lines(
    data: bytes, marker: re.Pattern[bytes], decode: Callable[[bytes], bytes]
) -> bytes | None:
    """The layer of ``data`` decoded by ``decode`` on each line holding ``marker``; ``None``
    when no line changed."""
    pieces: list[bytes] = []
    emitted = 0  # the line feeds before this offset are in ``pieces``
    covered = 0  # end of the last line decoded
    for found in marker.finditer(data):
        if found.start() < covered:
            continue
        start = data.rfind(b"\n", 0, found.start()) + 1
        end = data.find(b"\n", found.end())
        covered = end = len(data) if end < 0 else end
        line = data[start:end]
        # Keep the line count: a decoded line break is a space.
        decoded = decode(line).replace(b"\n", b" ").replace(b"\r", b" ")
        if decoded and decoded != line:
            pieces.append(b"\n" * data.count(b"\n", emitted, start))
            pieces.append(decoded)
            emitted = end
    if not pieces:
        return None
    pieces.append(b"\n" * data.count(b"\n", emitted))
    return b"".join(pieces)


def decoded_layers(data: bytes, max_depth: int = DEFAULT_DECODE_DEPTH) -> list[tuple[str, bytes]]:
    """Return ``(label, layer)`` for every decoding of ``data`` that changed some line, nested
    up to ``max_depth`` encodings deep (outermost decoding first in the label)."""
    if max_depth <= 0:
        return []
    return list(_layers(data, max_depth, ""))


def _layers(data: bytes, depth: int, prefix: str) -> Iterator[tuple[str, bytes]]:
    for name, marker, decode in (*_DECODERS, ("base64", None, None)):
        if marker is None:
            layer = _base64_layer(data)
        elif _QUICK[name] in data:
            layer = _decode_lines(data, marker, decode)
        else:
            continue
        if layer is None:
            continue
        label = f"{prefix}>{name}" if prefix else name
        yield label, layer
        if depth > 1 and _has_marker(layer):
            yield from _layers(layer, depth - 1, label)
