"""Screening fingerprints of hashed rules (scheme ``poly64-v1``) and the token screen built on them.

A hashed denylist may publish, next to each salted sha256, a 32-bit *fingerprint* of the same
normalised identifier, so a scan computes sha256 only for the few tokens whose fingerprint is
listed. The fingerprint is the top 32 bits of a polynomial hash of the normalised identifier's
UTF-8 bytes ``b_0 … b_{n-1}``::

    h = (b_0 + b_1·B + b_2·B² + … + b_{n-1}·B^(n-1)) mod 2**64
    fingerprint = h >> 32

with the base ``B`` taken from the salt (:func:`fingerprint_base`). A polynomial hash is additive
over positions: the hash of *every* token of a buffer falls out of one prefix sum of
``byte · B^position``, scaled by ``B^-start`` (``B`` is odd, so it has an inverse modulo 2**64).
:class:`TokenScreen` computes that with numpy, a few array passes per buffer instead of a Python
object per token, and only the tokens whose fingerprint is listed leave C.

A fingerprint is a screen, never a verdict: a listed fingerprint only sends the token on to
sha256, so a collision costs one extra hash and cannot hide a leak.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "FINGERPRINT_BITS",
    "FINGERPRINT_SCHEME",
    "ScreenGroup",
    "TokenScreen",
    "fingerprint_base",
    "poly_fingerprint",
]

FINGERPRINT_SCHEME: Final = "poly64-v1"
"""The fingerprint scheme this release reads and writes."""

FINGERPRINT_BITS: Final = 32
"""Width of a screening fingerprint."""

_MASK: Final = (1 << 64) - 1
_SPACE: Final = 32
_UNDERSCORE: Final = 95
# Buffers are screened in slices of about this many bytes (cut at a space): the per-byte arrays
# of a slice stay in the CPU cache, which is several times faster than one pass over 4 MB.
_SLICE: Final = 128 * 1024
# Powers are tabulated for slices up to this length; a longer slice (a single token longer than
# the margin) is split into Python tokens instead.
_CAPACITY: Final = _SLICE + 64 * 1024
# A bitmap indexed by the low bits of a fingerprint rejects almost every token in one gather;
# the few that pass are compared exactly.
_TABLE_BITS: Final = 20


def fingerprint_base(salt: str) -> int:
    """Return the polynomial base of a salt's fingerprints: the first 8 bytes of sha256(salt),
    big-endian, with the lowest bit set (an odd base is invertible modulo 2**64)."""
    return int.from_bytes(hashlib.sha256(salt.encode()).digest()[:8], "big") | 1


def poly_fingerprint(data: bytes, base: int) -> int:
    """Return the ``poly64-v1`` fingerprint of ``data`` (already normalised) under ``base``."""
    value = 0
    for byte in reversed(data):
        value = (value * base + byte) & _MASK
    return value >> (64 - FINGERPRINT_BITS)


@dataclass(frozen=True, slots=True)
class ScreenGroup:
    """The fingerprints one salt (and one separator setting) listed."""

    base: int
    separator_insensitive: bool
    fingerprints: frozenset[int]


class _Tables:
    """Per-group arrays: powers of the base and of its inverse, and the fingerprint bitmap."""

    def __init__(self, np: Any, group: ScreenGroup) -> None:
        self.separator_insensitive = group.separator_insensitive
        self.powers = self._powers(np, group.base)
        self.inverse_powers = self._powers(np, pow(group.base, -1, 1 << 64))
        self.bitmap = np.zeros(1 << _TABLE_BITS, dtype=bool)
        listed = np.array(sorted(group.fingerprints), dtype=np.uint64)
        self.bitmap[listed & ((1 << _TABLE_BITS) - 1)] = True
        self.listed = listed

    @staticmethod
    def _powers(np: Any, base: int) -> Any:
        powers = np.empty(_CAPACITY + 1, dtype=np.uint64)
        powers[0] = 1
        powers[1:] = base
        # Integer arrays wrap on overflow: the running product is base**i modulo 2**64.
        np.multiply.accumulate(powers, out=powers)
        return powers


class TokenScreen:
    """Find the tokens of a translated buffer that a listed fingerprint points at, in numpy.

    The buffer is the scanner's translation of a batch of files: every byte that can be part of
    a token is kept (ASCII letters lower-cased), every other byte is a space. :meth:`candidates`
    returns the distinct tokens that either are ASCII and whose fingerprint (after each group's
    normalisation: underscores removed when separator-insensitive) some group listed, or hold a
    non-ASCII byte: those need NFKC and case folding, which only Python does, so the caller
    normalises and hashes them itself. A run of more than 64 KB without a space is rare and
    too long to tabulate: the tokens of its slice are all returned, to be hashed directly.

    :raises ImportError: numpy is not importable.
    """

    def __init__(self, groups: Iterable[ScreenGroup]) -> None:
        import numpy as np  # noqa: PLC0415

        self._np = np
        self._groups = [_Tables(np, group) for group in groups]
        self._sums = np.empty(_CAPACITY + 1, dtype=np.uint64)
        self._padded = np.zeros(_CAPACITY + 2, dtype=bool)

    def candidates(self, translated: bytes) -> set[bytes]:
        """Return the distinct tokens of ``translated`` to hash with sha256 (see the class)."""
        found: set[bytes] = set()
        if not translated:
            return found
        ascii_only = translated.isascii()
        view = memoryview(translated)
        start, size = 0, len(translated)
        while start < size:
            # Cut at a space, so that no token straddles two slices.
            end = translated.find(b" ", start + _SLICE)
            if end < 0:
                end = size
            if end - start > _CAPACITY:
                found.update(translated[start:end].split())
            else:
                self._slice(translated, view[start:end], start, ascii_only, found)
            start = end
        return found

    def _bounds(self, array: Any) -> tuple[Any, Any]:
        """Start and end offsets of the runs of non-space bytes of ``array``."""
        np = self._np
        size = len(array)
        padded = self._padded[: size + 2]
        padded[0] = padded[size + 1] = False
        np.not_equal(array, _SPACE, out=padded[1 : size + 1])
        edges = np.flatnonzero(padded[1:] != padded[:-1])
        return edges[0::2], edges[1::2]

    def _hits(self, tables: _Tables, array: Any, starts: Any, ends: Any) -> Any:
        """Indices of the runs whose fingerprint ``tables`` lists."""
        np = self._np
        size = len(array)
        sums = self._sums[: size + 1]
        sums[0] = 0
        np.multiply(array, tables.powers[:size], out=sums[1:])
        np.cumsum(sums, out=sums)
        hashes = sums[ends]
        hashes -= sums[starts]
        hashes *= tables.inverse_powers[starts]
        hashes >>= np.uint64(64 - FINGERPRINT_BITS)
        maybe = np.flatnonzero(tables.bitmap[hashes & np.uint64((1 << _TABLE_BITS) - 1)])
        if not len(maybe):
            return maybe
        return maybe[np.isin(hashes[maybe], tables.listed)]

    def _slice(
        self, translated: bytes, view: memoryview, offset: int, ascii_only: bool, found: set[bytes]
    ) -> None:
        np = self._np
        array = np.frombuffer(view, dtype=np.uint8)
        bounds: tuple[Any, Any] | None = None
        for tables in self._groups:
            if (
                tables.separator_insensitive
                and translated.find(b"_", offset, offset + len(view)) >= 0
            ):
                self._insensitive(translated, array, offset, tables, found)
                continue
            if bounds is None:
                bounds = self._bounds(array)
            starts, ends = bounds
            for index in self._hits(tables, array, starts, ends).tolist():
                found.add(translated[offset + int(starts[index]) : offset + int(ends[index])])
        if not ascii_only:
            high = np.flatnonzero(array >= 128)
            if len(high):
                starts, ends = bounds if bounds is not None else self._bounds(array)
                owners = np.unique(np.searchsorted(starts, high, side="right") - 1)
                found.update(
                    translated[offset + s : offset + e]
                    for s, e in zip(starts[owners].tolist(), ends[owners].tolist(), strict=True)
                )

    def _insensitive(
        self, translated: bytes, array: Any, offset: int, tables: _Tables, found: set[bytes]
    ) -> None:
        """Screen the tokens with their underscores removed, as separator-insensitive rules
        normalise them; report each hit as the original token around it."""
        np = self._np
        keep = array != _UNDERSCORE
        compact = array[keep]
        starts, ends = self._bounds(compact)
        hits = self._hits(tables, compact, starts, ends)
        if not len(hits):
            return
        # Offset k of the compact array is offset k + (underscores before it) of the slice.
        underscores = np.flatnonzero(~keep)
        shifted = underscores - np.arange(len(underscores))
        for position in starts[hits].tolist():
            at = offset + position + int(np.searchsorted(shifted, position, side="right"))
            first = translated.rfind(b" ", 0, at) + 1
            last = translated.find(b" ", at)
            found.add(translated[first : last if last >= 0 else len(translated)])
