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

import binascii
import bisect
import html
import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Final
from urllib.parse import unquote_to_bytes

__all__ = [
    "DECODINGS",
    "DEFAULT_DECODE_DEPTH",
    "MAX_DECODE_DEPTH",
    "MAX_LAYERS",
    "MIN_BASE64",
    "decoded_layers",
    "marker_database",
    "marker_hits",
]

DEFAULT_DECODE_DEPTH: Final = 3
"""Encodings decoded inside each other by default (``--max-decode-depth``)."""
MAX_DECODE_DEPTH: Final = 8
"""The deepest ``--max-decode-depth`` accepted."""
MAX_LAYERS: Final = 64
"""The most decoded layers made of one buffer (decodings of decodings included)."""
MIN_BASE64: Final = 16
"""Shortest base64 run decoded (12 bytes of text)."""
DECODINGS: Final = ("percent", "json-escape", "html-entity", "base64")

# Percent-encoded bytes that can spell a word: printable ASCII and UTF-8 lead bytes (%0A, %09
# and the like hide no identifier).
_PERCENT: Final = re.compile(rb"%(?:[2-7][0-9A-Fa-f]|[C-Fc-f][0-9A-Fa-f])")
# Escapes that can spell a word: printable ASCII (U+0020-U+007F), Latin-1 letters (U+00A0-U+00FF)
# and beyond;
# the control-character escapes that fill source code ("\x00", "\x1b") hide no identifier.
_ESCAPE: Final = re.compile(
    rb"\\(?:u00[2-7A-Fa-f][0-9A-Fa-f]|u(?!00)[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|x[2-7A-Fa-f][0-9A-Fa-f])"
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
_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")
# The characters the first three positions of a base64 group of text can hold (see
# _base64_runs): derived from bytes 0x20-0x7E, tab, line feed and carriage return.
_QUAD_SETS: Final = (
    b"CDIJKLMNOPQRSTUVWXYZabcdef",
    b"ACDEFGHQSTUVWXgijklmnwyz0123",
    b"ABEFIJMNQRUVYZcdghklopstwx014589",
)
# Bytes of decoded text that count as printable (plus every non-ASCII byte of valid UTF-8).
_PRINTABLE: Final = bytes([9, 10, 13, *range(32, 127)])


def _percent(line: bytes) -> bytes:
    return unquote_to_bytes(line)


def _escape_one(match: re.Match[bytes]) -> bytes:
    code = int(match.group()[2:], 16)
    try:
        return chr(code).encode("utf-8")
    except (ValueError, OverflowError, UnicodeEncodeError):  # a surrogate, beyond U+10FFFF
        return b" "


_ANY_ESCAPE: Final = re.compile(rb"\\(?:u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|x[0-9A-Fa-f]{2})")


# A backslash the unicode_escape codec would warn about (an escape Python does not know).
_UNKNOWN_ESCAPE: Final = re.compile(rb"\\(?:[^\\'\"abfnrtvx0-7uUN\n]|$)")


def _escapes(line: bytes) -> bytes:
    if line.isascii() and _UNKNOWN_ESCAPE.search(line) is None:
        # The C codec decodes every escape at once (and \\n, \\t, \\\\ too); a malformed
        # one falls back to escape by escape.
        try:
            return line.decode("unicode_escape").encode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            pass
    return _ANY_ESCAPE.sub(_escape_one, line)


def _entities(line: bytes) -> bytes:
    return html.unescape(line.decode("utf-8", "replace")).encode("utf-8", "replace")


def _base64_text(run: bytes) -> bytes | None:
    body = run.rstrip(b"=")
    if len(body) % 4 == 1:
        return None
    try:
        decoded = binascii.a2b_base64(
            body.translate(_URLSAFE) + b"=" * (-len(body) % 4), strict_mode=True
        )
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
    looks like base64 of text.

    Text is mostly bytes 0x20-0x7E (and tab, line feed, carriage return), so in its base64 the
    first three characters of each group of four come from small sets (:data:`_QUAD_SETS`: the
    first is the top six bits of a byte, the second two bits of it and the top nibble of the
    next, the third a low nibble and two top bits). A word, a path or a hex digest passes that
    test in well under one group in ten, so only real candidates are decoded. A quarter of the
    groups may fail it (the bytes of non-ASCII characters).
    """
    for found in _BASE64_RUN.finditer(data.translate(_BASE64_TABLE)):
        start, end = found.span()
        run = data[start:end]
        groups = len(run) // 4
        failing = (
            len(run[0::4].translate(None, _QUAD_SETS[0]))
            + len(run[1::4].translate(None, _QUAD_SETS[1]))
            + len(run[2::4].translate(None, _QUAD_SETS[2]))
        )
        if failing * 4 <= groups:
            yield start, end


def _runs_near(data: bytes, hits: Sequence[int]) -> Iterator[tuple[int, int]]:
    """The base64 runs of the lines holding the given offsets (in order, each line once)."""
    done = -1
    for hit in sorted(hits):
        if hit <= done:
            continue
        start = data.rfind(b"\n", 0, hit) + 1
        end = data.find(b"\n", hit)
        done = end = len(data) if end < 0 else end
        for run_start, run_end in _base64_runs(data[start:end]):
            yield start + run_start, start + run_end


def _base64_layer(data: bytes, hits: Sequence[int] | None = None) -> bytes | None:
    """The layer of ``data`` holding, at each line, the text its base64 runs decode to.

    :param hits: offsets where base64 of text may be (from :func:`base64_candidates`): only
        their lines are searched. ``None`` searches every line.
    """
    pieces: list[bytes] = []
    emitted = 0  # the line feeds before this offset are in ``pieces``
    line_end = -1
    runs = _base64_runs(data) if hits is None else _runs_near(data, hits)
    for start, end in runs:
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
    data: bytes,
    marker: re.Pattern[bytes],
    decode: Callable[[bytes], bytes],
    hits: Sequence[int] | None = None,
) -> bytes | None:
    """The layer of ``data`` decoded by ``decode`` on each line holding ``marker`` (or, given
    ``hits``, each line holding one of those offsets); ``None`` when no line changed."""
    pieces: list[bytes] = []
    emitted = 0  # the line feeds before this offset are in ``pieces``
    covered = 0  # end of the last line decoded
    offsets = (found.start() for found in marker.finditer(data)) if hits is None else sorted(hits)
    for offset in offsets:
        if offset < covered:
            continue
        start = data.rfind(b"\n", 0, offset) + 1
        end = data.find(b"\n", offset)
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


# A hyperscan expression for four groups of base64 of text in a row (see _base64_runs): one
# pass over a batch of buffers tells which may hold base64 text.
# Hyperscan expressions telling where each encoding may be, all in one pass over a batch: a
# superset of what the Python markers find on those lines (only encodings that can spell a
# letter or digit: %20 and &amp; fill files and hide nothing).
_HS_MARKERS: Final = (
    ("percent", rb"%(?:[2-7][0-9A-Fa-f]|[C-Fc-f][0-9A-Fa-f])"),
    (
        "json-escape",
        rb"\\(?:u00[2-7A-Fa-f][0-9A-Fa-f]|u0[1-9A-Fa-f][0-9A-Fa-f]{2}|u[1-9A-Fa-f][0-9A-Fa-f]{3}"
        rb"|U[0-9A-Fa-f]{8}|x[2-7A-Fa-f][0-9A-Fa-f])",
    ),
    ("html-entity", None),  # _HS_ENTITY
    # A base64 run that starts with four groups of base64 of text (see _base64_runs).
    (
        "base64",
        rb"(?:^|[^A-Za-z0-9+/_\-])(?:[CDI-Za-f][ACDEFGHQSTUVWXgijklmnwyz0-3]"
        rb"[ABEFIJMNQRUVYZcdghklopstwx014589][A-Za-z0-9+/_\-]){4}",
    ),
)
# Numeric entities, and the named ones of accented Latin letters (&eacute; &szlig; &AElig;):
# the markup escapes (&amp; &lt; &nbsp;) fill HTML and spell nothing.
_HS_ENTITY: Final = (
    rb"&#[0-9]|&#[xX][0-9A-Fa-f]|&(?:szlig|eth|ETH|thorn|THORN);|(?:acute|grave|circ|uml|tilde"
    rb"|ring|cedil|slash|lig|caron|dot|macr|ogon|breve|strok|dblac|midot|hook);"
)
_HS_DATABASE: list[object] = []


def marker_expressions() -> list[tuple[str, bytes]]:
    """``(encoding, hyperscan expression)`` of every marker, for a caller that scans them in
    its own database."""
    return [
        (name, expression if expression is not None else _HS_ENTITY)
        for name, expression in _HS_MARKERS
    ]


def marker_database() -> object | None:
    """The compiled hyperscan marker database (compiled once per process; build it before
    forking workers), or ``None`` without hyperscan."""
    if not _HS_DATABASE:
        try:
            import hyperscan  # noqa: PLC0415
        except ImportError:
            _HS_DATABASE.append(None)
        else:
            expressions = [expression for _name, expression in marker_expressions()]
            database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            database.compile(
                expressions=expressions, ids=list(range(len(expressions))), flags=[0] * 4
            )
            _HS_DATABASE.append((database, hyperscan.Scratch(database)))
    return _HS_DATABASE[0]


Hits = dict[str, list[int]]
"""Encoding name → offsets in a buffer where it may be."""


def marker_hits(buffers: Sequence[bytes]) -> list[Hits] | None:
    """Return, for each buffer, where each encoding may be, from one hyperscan pass over them
    all; ``None`` without hyperscan (each decoder then searches every buffer in Python)."""
    compiled = marker_database()
    if compiled is None:
        return None
    database, scratch = compiled  # type: ignore[misc]
    starts = [0, *itertools.accumulate(len(buffer) + 1 for buffer in buffers)]
    found: list[Hits] = [{} for _ in buffers]
    names = [name for name, _expression in _HS_MARKERS]

    def on_match(marker: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
        number = bisect.bisect_right(starts, to - 1) - 1
        found[number].setdefault(names[marker], []).append(to - 1 - starts[number])

    database.scan(b"\x00".join(buffers), match_event_handler=on_match, scratch=scratch)
    return found


def decoded_layers(
    data: bytes, max_depth: int = DEFAULT_DECODE_DEPTH, *, hits: Hits | None = None
) -> list[tuple[str, bytes]]:
    """Return ``(label, layer)`` for every decoding of ``data`` that changed some line, nested
    up to ``max_depth`` encodings deep (outermost decoding first in the label).

    :param hits: where :func:`marker_hits` saw each encoding in ``data`` (an encoding it did
        not see is not looked for); ``None`` searches every line for every encoding.
    """
    if max_depth <= 0 or hits == {}:
        return []
    # Each layer may hold several encodings again: bound the tree as well as its depth, so a
    # crafted file cannot make decoding explode.
    return list(itertools.islice(_layers(data, max_depth, "", hits), MAX_LAYERS))


def _layers(
    data: bytes, depth: int, prefix: str, hits: Hits | None = None
) -> Iterator[tuple[str, bytes]]:
    for name, marker, decode in (*_DECODERS, ("base64", None, None)):
        where = None if hits is None else hits.get(name)
        if hits is not None and not where:
            continue
        if marker is None:
            layer = _base64_layer(data, where)
        elif where is not None or _QUICK[name] in data:
            layer = _decode_lines(data, marker, decode, where)
        else:
            continue
        if layer is None:
            continue
        label = f"{prefix}>{name}" if prefix else name
        yield label, layer
        if depth > 1 and _has_marker(layer):
            yield from _layers(layer, depth - 1, label)
