"""One normalisation for every rule: the text plaintext and hashed rules both see.

A buffer is turned into its *view* (:func:`view_bytes`) before any rule looks at it, and an
identifier into its *key* (:func:`identifier_key`) by the same steps, so a plaintext rule and a
hashed rule made from the same identifier find exactly the same occurrences:

1. default-ignorable code points are removed (zero-width space and joiners, soft hyphen, word
   joiner, variation selectors, bidirectional controls, byte order mark, tag characters);
2. NFKC (fullwidth ``ＡＣＭＥ`` is ``ACME``, the ligature ``ﬁ`` is ``fi``);
3. optionally (``--confusables``), characters that Unicode TR39 lists as confusable with an ASCII
   letter or digit are replaced by it (Cyrillic ``а`` is Latin ``a``);
4. non-ASCII characters are case-folded (``Großbank`` is ``grossbank``), and every non-ASCII
   character that is neither a letter, a digit nor a combining mark becomes a space (curly
   quotes, dashes and no-break spaces separate words as ASCII punctuation does).

ASCII text is already its own view (the common case costs one ``isascii`` check). The view keeps
the case of ASCII letters so CamelCase transitions stay visible; rules compare it case-folded
(:data:`FOLD_TABLE`: ASCII letters lower-cased, ``/`` read as ``.`` so a module path written as
directories is the dotted path).

Word boundaries are *alphanumeric transitions*: a rule matches where its first character starts
an alphanumeric run or follows a lower-case letter that an upper-case one follows (CamelCase), and
likewise at its end. ``test_acme.py``, ``acme_v2`` and ``AcmeV2`` all contain ``acme``; ``acmed``
does not. Separator-insensitive rules treat every run of :data:`SEPARATORS` (and a CamelCase
transition) as nothing at all.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = [
    "ALNUM_BYTES",
    "FOLD_TABLE",
    "SEPARATORS",
    "SEPARATOR_BYTES",
    "atom_count",
    "fold_text",
    "identifier_key",
    "is_boundary",
    "view_bytes",
]

SEPARATORS: Final = " \t\r\n-_./"
"""Characters a separator-insensitive rule ignores (any run of them, or none)."""

SEPARATOR_BYTES: Final = SEPARATORS.encode()

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt).
_IGNORABLE_RE: Final = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]+"
)
_NON_ASCII_RUN: Final = re.compile(r"[^\x00-\x7f]+")
_CHUNK: Final = 2048
# Non-ASCII runs recur (accented words, dashes, quotes): each is folded once.
_RUN_CACHE: dict[str, str] = {}
_CONFUSABLE_RUN_CACHE: dict[str, str] = {}
_RUN_CACHE_LIMIT: Final = 200_000


FOLD_TABLE: Final = bytes((b + 32 if 65 <= b <= 90 else 46 if b == 47 else b) for b in range(256))
"""``bytes.translate`` table comparing views: ASCII upper-case to lower-case, ``/`` to ``.``."""

ALNUM_BYTES: Final = frozenset(
    b for b in range(256) if 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 or b >= 128
)
"""Bytes of a view that are part of a word (every non-ASCII byte of a view is a letter's)."""


def _fold(run: str, *, confusables: bool) -> str:
    """Fold one run of non-ASCII characters (after NFKC): confusables mapped, case folded,
    punctuation a space."""
    if confusables:
        from customer_model_factory.boundary._confusables import CONFUSABLES  # noqa: PLC0415

        run = run.translate(CONFUSABLES)
    folded = run.casefold()
    if folded.isalnum():
        return folded
    return "".join(
        ch if ch.isalnum() or unicodedata.category(ch)[0] == "M" or ch.isascii() else " "
        for ch in folded
    )


def fold_text(text: str, *, confusables: bool = False) -> str:
    """Return the view of ``text``: steps 1-4 of the module docstring, ASCII case kept."""
    if text.isascii():
        return text
    return _fold_non_ascii(text, confusables=confusables)


def _fold_non_ascii(text: str, *, confusables: bool) -> str:
    normalised = unicodedata.normalize("NFKC", text)
    if normalised.isascii():
        return normalised
    cache = _CONFUSABLE_RUN_CACHE if confusables else _RUN_CACHE
    ignorable = [False]

    def fold_run(match: re.Match[str]) -> str:
        run = match.group()
        folded = cache.get(run)
        if folded is None:
            if _IGNORABLE_RE.search(run):
                ignorable[0] = True
                return run
            if len(cache) >= _RUN_CACHE_LIMIT:
                cache.clear()
            folded = cache[run] = _fold(run, confusables=confusables)
        return folded

    folded_text = _NON_ASCII_RUN.sub(fold_run, normalised)
    if not ignorable[0]:
        return folded_text
    # Rare: an ignorable code point. Remove them all first (one may split a letter from its
    # combining mark), then fold again; NFKC maps two fillers (U+3164, U+FFA0) to another.
    text = _IGNORABLE_RE.sub("", unicodedata.normalize("NFKC", _IGNORABLE_RE.sub("", text)))
    return _NON_ASCII_RUN.sub(fold_run, text) if not text.isascii() else text


def view_bytes(data: bytes, *, confusables: bool = False) -> bytes:
    """Return the UTF-8 view of a buffer (itself when ASCII). Lines are kept: no step adds or
    removes a line feed, so a line of the view is the same line of the file.

    Only the chunks (of about 2 KB, cut after a line feed) holding a non-ASCII byte are decoded
    and folded: most non-ASCII files are ASCII but for a few names or symbols.
    """
    if data.isascii():
        return data
    pieces: list[bytes] = []
    start, size = 0, len(data)
    while start < size:
        end = data.find(b"\n", min(start + _CHUNK, size))
        end = size if end < 0 else end + 1
        chunk = data[start:end]
        if chunk.isascii():
            pieces.append(chunk)
        else:
            # A chunk ends at a line feed, so it never splits a UTF-8 sequence.
            text = chunk.decode("utf-8", "replace")
            pieces.append(_fold_non_ascii(text, confusables=confusables).encode())
        start = end
    return b"".join(pieces)


def identifier_key(
    identifier: str, *, separator_insensitive: bool = False, confusables: bool = False
) -> str:
    """Return the normalised identifier that rules compare and hash.

    The view of the identifier, case-folded, ``/`` read as ``.``, stripped of surrounding
    whitespace; with ``separator_insensitive`` every character of :data:`SEPARATORS` removed.
    """
    key = fold_text(identifier, confusables=confusables).lower().replace("/", ".").strip()
    if separator_insensitive:
        key = "".join(ch for ch in key if ch not in SEPARATORS)
    return key


def is_boundary(view: bytes, position: int) -> bool:
    """True when ``position`` of ``view`` is a word boundary (an alphanumeric transition)."""
    if position <= 0 or position >= len(view):
        return True
    before, after = view[position - 1], view[position]
    if (before in ALNUM_BYTES) != (after in ALNUM_BYTES):
        return True
    return 97 <= before <= 122 and 65 <= after <= 90


def atom_count(identifier: str) -> int:
    """Return how many words (alphanumeric runs, split at CamelCase) an identifier spans."""
    view = fold_text(identifier).encode()
    count = 0
    for position, byte in enumerate(view):
        if byte in ALNUM_BYTES and is_boundary(view, position):
            count += 1
    return count
