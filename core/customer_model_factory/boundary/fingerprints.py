"""Screening fingerprints of hashed rules (scheme ``polymix64-v1``) and the window screen.

A hashed denylist may publish, next to each salted sha256, a 32-bit *fingerprint* of the same
normalised identifier (its key, :func:`~customer_model_factory.boundary.normalise.identifier_key`)
so a scan computes sha256 only for the few word windows whose fingerprint is listed. With
``base`` derived from the salt (:func:`fingerprint_base`) and the key's UTF-8 bytes
``b_0 … b_{n-1}``::

    h = (b_0 + b_1·base + … + b_{n-1}·base^(n-1)) mod 2**64       # polynomial, additive
    x = h · M1 mod 2**64;  x ^= x >> 32                             # non-linear finaliser
    fingerprint = (x · M2 mod 2**64) >> 32

The polynomial part is what makes screening fast: the ``h`` of *every* window of a buffer falls
out of one prefix sum (``base`` is odd, so it has an inverse modulo 2**64). It is also linear, so
the top bits of ``h`` alone (the earlier ``poly64-v1``) let an attacker split a guess into two
halves searched independently and meet in the middle. The finaliser removes that: every output
bit depends on all 64 bits of ``h`` through two multiplications around an xor-shift (which mixes
the two halves, and is not linear modulo 2**64),
so the set of ``h`` that give a published fingerprint is an unstructured set of 2**32 values
among 2**64, and testing a guess means evaluating it whole. What is left to an attacker is the
cost ratio of evaluating this function instead of sha256 on one short guess: a multiply-add per
character plus the finaliser, against one SHA-256 compression (64 rounds) per guess. That is a
constant factor, measured and documented in ``docs/boundary.md``; a guess that survives the
screen must still be confirmed with the salted sha256.

A fingerprint is a screen, never a verdict: a listed fingerprint only sends the window on to
sha256, so a collision costs one extra hash and cannot hide a leak.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from customer_model_factory.boundary.normalise import ALNUM_BYTES, FOLD_TABLE, SEPARATOR_BYTES

__all__ = [
    "FINGERPRINT_BITS",
    "FINGERPRINT_SCHEME",
    "ScreenGroup",
    "WindowScreen",
    "atom_bounds",
    "fingerprint_base",
    "keyed_fingerprint",
]

FINGERPRINT_SCHEME: Final = "polymix64-v1"
"""The fingerprint scheme this release reads and writes."""

FINGERPRINT_BITS: Final = 32
"""Width of a screening fingerprint."""

_MASK: Final = (1 << 64) - 1
_M1: Final = 0xBF58476D1CE4E5B9
_M2: Final = 0x94D049BB133111EB
_DOMAIN: Final = b"cmf-boundary-fingerprint\x00"
# Buffers are screened in slices of about this many bytes: the per-byte arrays of a slice stay
# in the CPU cache. Consecutive slices overlap by _OVERLAP bytes, so a window up to that long
# that crosses a cut is whole in one of them.
_SLICE: Final = 128 * 1024
_OVERLAP: Final = 1024
_CAPACITY: Final = _SLICE + _OVERLAP
# A bitmap indexed by the low bits of a fingerprint rejects almost every window in one gather;
# the few that pass are compared exactly.
_TABLE_BITS: Final = 20

# Byte classes: 0 not part of a word, 1 digit or non-ASCII, 2 lower-case, 3 upper-case letter.
_CLASS_LUT: Final = bytes(
    (3 if 65 <= b <= 90 else 2 if 97 <= b <= 122 else 1 if b in ALNUM_BYTES else 0)
    for b in range(256)
)
_SEPARATOR_LUT: Final = bytes(1 if b in SEPARATOR_BYTES else 0 for b in range(256))


def fingerprint_base(salt: str) -> int:
    """Return the polynomial base of a salt's fingerprints: the first 8 bytes (big-endian) of
    sha256 of a fixed domain label (``cmf-boundary-fingerprint``), a NUL byte and the salt,
    with the lowest bit set (an odd base is invertible modulo 2**64)."""
    digest = hashlib.sha256(_DOMAIN + salt.encode()).digest()
    return int.from_bytes(digest[:8], "big") | 1


def _finalise(value: int) -> int:
    value = (value * _M1) & _MASK
    value ^= value >> 32
    return ((value * _M2) & _MASK) >> (64 - FINGERPRINT_BITS)


def keyed_fingerprint(data: bytes, salt: str) -> int:
    """Return the ``polymix64-v1`` fingerprint of ``data`` (an identifier key's UTF-8 bytes)."""
    base = fingerprint_base(salt)
    value = 0
    for byte in reversed(data):
        value = (value * base + byte) & _MASK
    return _finalise(value)


@dataclass(frozen=True, slots=True)
class ScreenGroup:
    """The fingerprints one salt (and one separator setting) listed, and the window widths."""

    salt: str
    separator_insensitive: bool
    max_atoms: int
    fingerprints: frozenset[int]
    min_atoms: int = 1


def atom_bounds(np: Any, view: bytes) -> tuple[Any, Any]:
    """Start and end offsets of the words (atoms) of a view: alphanumeric runs, cut where a
    lower-case ASCII letter is followed by an upper-case one."""
    classes = np.frombuffer(view.translate(_CLASS_LUT), dtype=np.uint8)
    size = len(classes)
    if size == 0:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty
    alnum = classes != 0
    # A boundary before byte i (1 <= i < size): the word-ness changes, or CamelCase.
    inner = alnum[1:] != alnum[:-1]
    inner |= (classes[1:] == 3) & (classes[:-1] == 2)
    boundary = np.empty(size + 1, dtype=np.bool_)
    boundary[0] = boundary[size] = True
    boundary[1:size] = inner
    starts = np.flatnonzero(boundary[:size] & alnum)
    ends = np.flatnonzero(boundary[1:] & alnum) + 1
    return starts, ends


class _Tables:
    """Per-group arrays: powers of the base and of its inverse, and the fingerprint bitmap."""

    def __init__(self, np: Any, group: ScreenGroup) -> None:
        base = fingerprint_base(group.salt)
        self.group = group
        self.powers = self._powers(np, base)
        self.inverse_powers = self._powers(np, pow(base, -1, 1 << 64))
        # Indexed by the top _TABLE_BITS bits of a fingerprint (of the finalised 64-bit value).
        self.bitmap = np.zeros(1 << _TABLE_BITS, dtype=bool)
        listed = np.array(sorted(group.fingerprints), dtype=np.uint64)
        self.bitmap[listed >> np.uint64(FINGERPRINT_BITS - _TABLE_BITS)] = True
        self.listed = frozenset(group.fingerprints)

    @staticmethod
    def _powers(np: Any, base: int) -> Any:
        powers = np.empty(_CAPACITY + 1, dtype=np.uint64)
        powers[0] = 1
        powers[1:] = base
        # Integer arrays wrap on overflow: the running product is base**i modulo 2**64.
        np.multiply.accumulate(powers, out=powers)
        return powers


class WindowScreen:
    """Find the word windows of a view whose fingerprint a group lists, in numpy.

    A *window* is ``min_atoms`` to ``max_atoms`` consecutive atoms (:func:`atom_bounds`) with
    whatever lies between them; its key is the window folded (:data:`FOLD_TABLE`) and, for a
    separator-insensitive group, stripped of separators. :meth:`candidates` returns, per group,
    the distinct windows (raw view bytes) whose key's fingerprint that group lists; the caller
    confirms each with sha256.

    :raises ImportError: numpy is not importable.
    """

    def __init__(self, groups: Iterable[ScreenGroup]) -> None:
        import numpy as np  # noqa: PLC0415

        self._np = np
        self._tables = [_Tables(np, group) for group in groups]
        self._sums = np.empty(_CAPACITY + 1, dtype=np.uint64)

    def candidates(self, view: bytes) -> list[set[bytes]]:
        """Return, for each group in order, the windows of ``view`` to confirm with sha256."""
        found: list[set[bytes]] = [set() for _ in self._tables]
        start, size = 0, len(view)
        while start < size:
            end = min(start + _SLICE, size)
            piece = view[start : min(end + _OVERLAP, size)]
            self._slice(piece, found)
            start = end
        return found

    def _slice(self, piece: bytes, found: list[set[bytes]]) -> None:
        np = self._np
        starts, ends = atom_bounds(np, piece)
        if not len(starts):
            return
        folded = np.frombuffer(piece.translate(FOLD_TABLE), dtype=np.uint8)
        keep: Any = None
        for number, tables in enumerate(self._tables):
            if tables.group.separator_insensitive:
                if keep is None:
                    keep = np.frombuffer(piece.translate(_SEPARATOR_LUT), dtype=np.bool_)
                    keep = ~keep
                    # Offset in the separator-free stream of each byte of the piece.
                    compact_at = np.empty(len(piece) + 1, dtype=np.int64)
                    compact_at[0] = 0
                    np.cumsum(keep, out=compact_at[1:])
                    compact = folded[keep]
                stream, window_starts, window_ends = compact, compact_at[starts], compact_at[ends]
            else:
                stream, window_starts, window_ends = folded, starts, ends
            for first, last in self._hits(tables, stream, window_starts, window_ends):
                found[number].add(piece[starts[first] : ends[last]])

    def _hits(
        self, tables: _Tables, stream: Any, starts: Any, ends: Any
    ) -> Iterable[tuple[int, int]]:
        """``(first atom, last atom)`` of each window whose fingerprint ``tables`` lists."""
        np = self._np
        size = len(stream)
        sums = self._sums[: size + 1]
        sums[0] = 0
        np.multiply(stream, tables.powers[:size], out=sums[1:])
        np.cumsum(sums, out=sums)
        head = sums[starts]
        tail = sums[ends]
        # base^-start (to start every window at power 0) times M1, the finaliser's first factor.
        scale = tables.inverse_powers[starts] * np.uint64(_M1)
        count = len(starts)
        value = np.empty(count, dtype=np.uint64)
        shifted = np.empty(count, dtype=np.uint64)
        # The bitmap index, written as uint64 into an intp array: take() then needs no copy.
        index_array = np.empty(count, dtype=np.intp)
        index_bits = index_array.view(np.uint64)
        m2 = np.uint64(_M2)
        half, top = np.uint64(32), np.uint64(64 - _TABLE_BITS)
        fingerprint_shift = 64 - FINGERPRINT_BITS
        hits: list[tuple[int, int]] = []
        for width in range(tables.group.min_atoms, min(tables.group.max_atoms, count) + 1):
            n = count - width + 1
            x, t = value[:n], shifted[:n]
            np.subtract(tail[width - 1 :], head[:n], out=x)
            np.multiply(x, scale[:n], out=x)
            np.right_shift(x, half, out=t)
            np.bitwise_xor(x, t, out=x)
            np.multiply(x, m2, out=x)
            np.right_shift(x, top, out=index_bits[:n])
            maybe = np.flatnonzero(tables.bitmap.take(index_array[:n]))
            if len(maybe):
                for index, full in zip(maybe.tolist(), x[maybe].tolist(), strict=True):
                    if full >> fingerprint_shift in tables.listed:
                        hits.append((index, index + width - 1))
        return hits
