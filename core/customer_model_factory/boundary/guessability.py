"""How guessable an identifier is: the warning ``cmf boundary hash-denylist`` prints.

A hashed denylist is public. Its salt is public too, so anyone can hash a guess and compare: a
salted sha256 hides an identifier only as well as the identifier resists guessing. This module
estimates, conservatively, how many bits of guessing an identifier costs an attacker who knows
its shape (words, digits, separators) and holds a dictionary:

* a word of a common-word list (English and business vocabulary): 16 bits (a 65 000-word
  dictionary);
* any other run of letters: 3.5 bits a letter (pronounceable names are far from random);
* a run of digits: log2(10) = 3.3 bits a digit;
* a non-ASCII character: 6 bits;
* each separator or punctuation character between words: 2 bits (which one, and where).

An identifier under :data:`LOW_BITS` (about 10**12 guesses: hours on one graphics card for
sha256) is reported with the reasons (short, dictionary words, digits only). The estimate is a
warning, never a guarantee: an identifier that follows a public naming scheme is weaker than its
bits suggest.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from customer_model_factory.boundary.normalise import identifier_key

__all__ = ["COMMON_WORDS", "LOW_BITS", "guessability_warnings", "identifier_bits"]

LOW_BITS: Final = 40.0
"""Estimated bits below which an identifier is reported as guessable."""

_DICTIONARY_BITS: Final = 16.0
_LETTER_BITS: Final = 3.5
_DIGIT_BITS: Final = math.log2(10)
_OTHER_BITS: Final = 6.0
_JOIN_BITS: Final = 2.0
_SHORT: Final = 8
_PIECE: Final = re.compile(r"[a-z]+|[0-9]+|[^\x00-\x7f]+|[\x00-\x7f]")

COMMON_WORDS: Final = frozenset(
    """
    the of and to in is you that it he was for on are as with his they at be this have from or one
    had by word but not what all were we when your can said there use an each which she do how
    their if will up other about out many then them these so some her would make like him into
    time has look two more write go see number no way could people my than first water been call
    who oil its now find long down day did get come made may part new old big high low top best
    good great real true main next last open free full own same right left north south east west
    city state world home life work team group data test demo dev prod stage beta alpha live core
    base main master user admin root api app web site net mail info news shop store market bank
    banking credit debit card loan loans mortgage payment payments pay fund funds capital finance
    financial invest investment trust mutual savings account accounts client clients customer
    customers retail commercial business corporate private public internal external insurance
    insurer health care medical energy power oil gas tech technology labs lab systems system
    solutions services service global international national united general holding holdings
    partners partner company corp inc ltd llc plc gmbh ag sa bv co group risk fraud score scoring
    scorer model models classifier guard guardrail policy rules rule engine pack sector priv
    private secret confidential project alpha omega delta sigma gamma prime blue red green black
    white gold silver star sun moon sky river lake stone rock tree forest acme example sample foo
    bar baz qux corp enterprise digital cloud smart data analytics
    """.split()  # noqa: SIM905
)
"""Words a dictionary attack tries first (common English and business vocabulary)."""


def identifier_bits(identifier: str) -> tuple[float, list[str]]:
    """Return the estimated guessing cost of ``identifier`` in bits, and why it is low."""
    key = identifier_key(identifier)
    bits = 0.0
    reasons: list[str] = []
    words = 0
    for piece in _PIECE.findall(key):
        if piece.isascii() and piece.isalpha():
            if piece in COMMON_WORDS:
                bits += _DICTIONARY_BITS
                words += 1
            else:
                bits += _LETTER_BITS * len(piece)
        elif piece.isdigit():
            bits += _DIGIT_BITS * len(piece)
        elif not piece.isascii():
            bits += _OTHER_BITS * len(piece)
        else:
            bits += _JOIN_BITS
    if len(key) < _SHORT:
        reasons.append(f"short ({len(key)} characters)")
    if words:
        reasons.append(f"{words} dictionary word(s)")
    if key.isdigit():
        reasons.append("digits only")
    return bits, reasons


def _entry_lines(path: Path) -> list[int]:
    """Line numbers of the entries of an identifier list (blank and ``#`` lines skipped)."""
    numbers: list[int] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        body = raw.partition(" #")[0].strip()
        if body and not body.startswith("#"):
            numbers.append(number)
    return numbers


def guessability_warnings(
    path: Path, identifiers: Sequence[str], lines: Sequence[int] | None = None
) -> list[str]:
    """Return one warning per guessable identifier of the list ``path``, naming its line.

    :param lines: the line number of each identifier; default: the n-th entry line of the file
        (blank and ``#`` lines skipped).

    A warning never quotes the identifier: it names the file, the line, the estimated bits
    and the reasons.
    """
    if lines is None:
        try:
            lines = _entry_lines(path)
        except (OSError, UnicodeDecodeError):
            lines = []
    warnings: list[str] = []
    for index, identifier in enumerate(identifiers):
        bits, reasons = identifier_bits(identifier)
        if bits >= LOW_BITS:
            continue
        line = lines[index] if index < len(lines) else index + 1
        why = f": {', '.join(reasons)}" if reasons else ""
        warnings.append(
            f"{path}:{line}: warning: identifier is guessable (about {bits:.0f} bits, under "
            f"{LOW_BITS:.0f}{why}); anyone can confirm a guess against its published hash"
        )
    return warnings
