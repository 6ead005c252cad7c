"""Detection and redaction of secrets and personal data in trace text, without echoing it.

Detection runs in two steps so that a clean dataset costs almost nothing:

1. **Prefilter.** Every detector contributes one pattern to a single compiled multi-pattern engine
   (Hyperscan when it is installed, else one alternation compiled with :mod:`re`) that scans whole
   blocks of raw JSONL bytes at once and reports only *where* a candidate ends. The prefilter
   patterns are deliberately looser than the precise ones (no leading word boundary, since a JSON
   escape such as ``\\n`` may precede a token), so every precise match is also a candidate.
2. **Confirmation.** Only rows holding a candidate are decoded and scanned field by field with the
   precise patterns; card numbers must pass the Luhn checksum and a known issuer prefix, IBANs the
   ISO 13616 mod-97 check, phone numbers a plausible digit count.

A :class:`Detection` carries the detector's kind, category and span, never the matched text;
:func:`redact_text` replaces each span with a typed placeholder such as
``[REDACTED:aws_access_key]``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "DETECTORS",
    "KEY_SUFFIX",
    "Detection",
    "Detector",
    "DetectorSet",
    "default_detector_set",
    "iban_is_valid",
    "iter_text_fields",
    "luhn_is_valid",
    "placeholder",
    "redact_text",
]

Category = Literal["secret", "pii"]

KEY_SUFFIX: Final = "#key"
"""Suffix of the field path of an object key (as opposed to its value)."""


def luhn_is_valid(digits: str) -> bool:
    """Return whether a string of ASCII digits passes the Luhn (mod 10) checksum."""
    if not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_is_valid(candidate: str) -> bool:
    """Return whether ``candidate`` (spaces allowed) is an IBAN passing the ISO 13616 mod-97
    check."""
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isascii() or not compact.isalnum():
        return False
    if not (compact[:2].isalpha() and compact[2:4].isdigit()):
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


# Issuer prefixes: Visa, Mastercard, American Express, Discover, JCB, Diners Club, UnionPay.
_CARD_PREFIX: Final = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|6011|65|64[4-9]|35|30|36|38|62)")


def _card_is_valid(text: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    return 13 <= len(digits) <= 19 and bool(_CARD_PREFIX.match(digits)) and luhn_is_valid(digits)


def _phone_is_plausible(text: str) -> bool:
    digits = sum(char.isdigit() for char in text)
    return 8 <= digits <= 15


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of secret or personal data.

    :param kind: the typed placeholder name (``aws_access_key``, ``email``, ...).
    :param category: ``secret`` or ``pii``.
    :param pattern: the precise pattern, matched on decoded text.
    :param prefilter: the looser pattern matched on raw bytes (defaults to ``pattern`` without
        its leading ``\\b``).
    :param caseless: match both patterns case-insensitively.
    :param validate: a checksum or plausibility check every precise match must pass.
    """

    kind: str
    category: Category
    pattern: str
    prefilter: str = ""
    caseless: bool = False
    validate: Callable[[str], bool] | None = None

    @property
    def prefilter_pattern(self) -> str:
        """The pattern the multi-pattern engine scans raw bytes with."""
        if self.prefilter:
            return self.prefilter
        return self.pattern.removeprefix(r"\b")


DETECTORS: Final[tuple[Detector, ...]] = (
    Detector(
        "aws_access_key",
        "secret",
        r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b",
        # Prefilters below keep the distinctive prefix and a short tail: long bounded repeats
        # only make Hyperscan's database slower to compile (140 -> 67 ms for the set), and the
        # exact pattern confirms every candidate anyway.
        prefilter=r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{8}",
    ),
    Detector(
        "aws_secret_key",
        "secret",
        r"aws_?secret_?access_?key[\"'\\ ]*[:=][\"'\\ ]*[A-Za-z0-9/+=]{40}",
        caseless=True,
        prefilter=r"aws_?secret_?access_?key",
    ),
    Detector(
        "github_token",
        "secret",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{22,})",
        prefilter=r"gh[pousr]_[A-Za-z0-9]{8}|github_pat_",
    ),
    Detector(
        "slack_token", "secret", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", r"xox[abposr]-[A-Za-z0-9-]{10}"
    ),
    Detector(
        "stripe_key",
        "secret",
        r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}",
        prefilter=r"[rs]k_(?:live|test)_[0-9A-Za-z]{16}",
    ),
    Detector(
        "api_token",
        "secret",
        r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}",
        prefilter=r"sk-[A-Za-z0-9_-]{8}",
    ),
    Detector(
        "google_api_key", "secret", r"\bAIza[0-9A-Za-z_-]{35}", prefilter=r"AIza[0-9A-Za-z_-]{8}"
    ),
    Detector(
        "private_key",
        "secret",
        # The whole key, BEGIN through END: the body is the secret. Without an END line, the
        # rest of the text is taken as the body.
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
        r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|[\s\S]*)",
        prefilter=r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----",
    ),
    Detector(
        "jwt",
        "secret",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        prefilter=r"eyJ[A-Za-z0-9_-]{8,}\.eyJ",
    ),
    Detector(
        "password_in_url",
        "secret",
        r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s/:@\"'<>\\]{1,64}:[^\s/@\"'<>\\]{1,64}@",
        prefilter=r"://[^\s/:@\"'<>\\]{1,64}:[^\s/@\"'<>\\]{1,64}@",
    ),
    Detector(
        "email",
        "pii",
        r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b",
        # Anchored on "@": a leading character class here makes Hyperscan's whole database
        # about 2.5x slower.
        prefilter=r"@[A-Za-z0-9-]{1,63}\.",
    ),
    Detector(
        "phone_number",
        "pii",
        r"(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}"
        r"|\(\d{3}\) ?\d{3}-\d{4}|\b\d{3}-\d{3}-\d{4})\b",
        prefilter=r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}[ .-]?\d{2,4}"
        r"|\(\d{3}\) ?\d{3}-\d{4}|\d{3}-\d{3}-\d{4}",
        validate=_phone_is_plausible,
    ),
    Detector(
        "iban",
        "pii",
        r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
        prefilter=r"[A-Z]{2}\d{2} ?[A-Z0-9]{4} ?[A-Z0-9]{4}",
        validate=iban_is_valid,
    ),
    Detector(
        "credit_card",
        "pii",
        r"\b\d(?:[ -]?\d){12,18}\b",
        prefilter=r"\d(?:[ -]?\d){12}",
        validate=_card_is_valid,
    ),
)
"""Every built-in detector, secrets first."""


@dataclass(frozen=True, slots=True)
class Detection:
    """One confirmed secret or personal-data span in a text; it never holds the text itself."""

    kind: str
    category: Category
    start: int
    end: int


def placeholder(kind: str) -> str:
    """Return the typed redaction placeholder of a detector kind: ``[REDACTED:<kind>]``."""
    return f"[REDACTED:{kind}]"


class DetectorSet:
    """The detectors compiled once: a multi-pattern prefilter and the precise patterns.

    :param detectors: the detectors to run (default: :data:`DETECTORS`).
    :param engine: ``"hyperscan"``, ``"re"``, or ``None`` to use Hyperscan when it is installed.
    """

    def __init__(
        self, detectors: tuple[Detector, ...] = DETECTORS, *, engine: str | None = None
    ) -> None:
        self.detectors = detectors
        self._precise = [
            (
                detector,
                re.compile(
                    detector.pattern, re.ASCII | (re.IGNORECASE if detector.caseless else 0)
                ),
            )
            for detector in detectors
        ]
        self._widths = [_min_width(detector.pattern) for detector in detectors]
        # By detector selection (a frozenset of indices, or None for all): the fewest
        # characters any of them can match, and those detectors with their precise patterns.
        self._shortest: dict[Collection[int] | None, int] = {}
        self._selected: dict[Collection[int] | None, list[tuple[Detector, re.Pattern[str]]]] = {}
        self._hs_db: Any = None
        self._fallback: re.Pattern[bytes] | None = None
        if engine == "hyperscan" and not _hyperscan_available():
            raise RuntimeError("hyperscan is not installed")
        use_hyperscan = engine in (None, "hyperscan") and _hyperscan_available()
        self.engine: str = "hyperscan" if use_hyperscan else "re"

    def candidate_ends(self, block: bytes) -> list[int]:
        """Return the sorted end offsets in ``block`` where a prefilter pattern matched.

        An empty list proves that no detector matches anywhere in the block. The prefilter is
        compiled on first use: callers that scan blocks with their own combined database (the
        dataset validator) never pay for this one.
        """
        if self.engine == "hyperscan":
            if self._hs_db is None:
                self._hs_db = _compile_hyperscan(self.detectors)
            ends: list[int] = []
            append = ends.append

            def on_match(_id: int, _start: int, end: int, _flags: int, _context: Any) -> None:
                append(end)

            self._hs_db.scan(block, match_event_handler=on_match)
            ends.sort()
            return ends
        if self._fallback is None:
            self._fallback = _compile_fallback(self.detectors)
        return [match.end() for match in self._fallback.finditer(block)]

    def has_candidate(self, data: bytes) -> bool:
        """Return whether any prefilter pattern matches ``data``."""
        return bool(self.candidate_ends(data))

    def scan_text(self, text: str, only: Collection[int] | None = None) -> list[Detection]:
        """Return the confirmed detections in ``text``, sorted by start, overlaps removed.

        Overlapping spans keep the earliest (then the longest) one, so a password inside a URL is
        reported once.

        :param only: indices (into :attr:`detectors`) of the detectors to run, e.g. those whose
            prefilter fired on the row; ``None`` runs them all. A detector whose looser prefilter
            did not match cannot match precisely, so restricting to them loses nothing.
        """
        cacheable = only is None or isinstance(only, frozenset)
        shortest = self._shortest.get(only) if cacheable else None
        if shortest is None:
            indices = range(len(self.detectors)) if only is None else only
            shortest = min((self._widths[index] for index in indices), default=0)
            if cacheable:
                self._shortest[only] = shortest
        if len(text) < shortest:
            return []  # too short for any of these detectors to match
        found: list[Detection] = []
        # A row's fields are scanned one by one with the same selection: build it once.
        precise = self._selected.get(only) if cacheable else None
        if precise is None:
            precise = (
                self._precise if only is None else [self._precise[index] for index in sorted(only)]
            )
            if cacheable:
                self._selected[only] = precise
        for detector, pattern in precise:
            for match in pattern.finditer(text):
                if detector.validate is not None and not detector.validate(match.group()):
                    continue
                found.append(Detection(detector.kind, detector.category, *match.span()))
        if len(found) < 2:
            return found
        found.sort(key=lambda d: (d.start, -d.end))
        kept: list[Detection] = []
        for detection in found:
            if kept and detection.start < kept[-1].end:
                continue
            kept.append(detection)
        return kept


def redact_text(text: str, detections: list[Detection]) -> str:
    """Replace each detected span (as returned by :meth:`DetectorSet.scan_text`) with its typed
    placeholder."""
    if not detections:
        return text
    parts: list[str] = []
    cursor = 0
    for detection in detections:
        parts.append(text[cursor : detection.start])
        parts.append(placeholder(detection.kind))
        cursor = detection.end
    parts.append(text[cursor:])
    return "".join(parts)


def iter_text_fields(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(field_path, text)`` for every string inside a JSON value, keys included.

    Paths read like ``prompt``, ``metadata.notes`` or ``source_refs[0]``; an object key's own
    path ends in :data:`KEY_SUFFIX` (``metadata.notes#key``).
    """
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                yield f"{child}{KEY_SUFFIX}", key
            yield from iter_text_fields(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from iter_text_fields(item, f"{path}[{index}]")


def _min_width(pattern: str) -> int:
    """The fewest characters ``pattern`` can match (0 when that cannot be worked out)."""
    try:
        from re import _parser  # noqa: PLC0415 - the stdlib's own pattern parser (3.11+)

        return int(_parser.parse(pattern).getwidth()[0])
    except Exception:  # a lower bound of 0 is always safe
        return 0


def _hyperscan_available() -> bool:
    try:
        import hyperscan  # noqa: PLC0415, F401
    except ImportError:
        return False
    return True


def _compile_hyperscan(detectors: tuple[Detector, ...]) -> Any:
    import hyperscan  # noqa: PLC0415

    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    expressions = [d.prefilter_pattern.encode("ascii") for d in detectors]
    flags = [hyperscan.HS_FLAG_CASELESS if d.caseless else 0 for d in detectors]
    database.compile(expressions=expressions, ids=list(range(len(detectors))), flags=flags)
    return database


def _compile_fallback(detectors: tuple[Detector, ...]) -> re.Pattern[bytes]:
    alternatives = [
        f"(?i:{d.prefilter_pattern})" if d.caseless else f"(?:{d.prefilter_pattern})"
        for d in detectors
    ]
    return re.compile("|".join(alternatives).encode("ascii"), re.ASCII)


@functools.cache
def default_detector_set() -> DetectorSet:
    """Return the process-wide :class:`DetectorSet` of the built-in detectors (compiled once)."""
    return DetectorSet()
