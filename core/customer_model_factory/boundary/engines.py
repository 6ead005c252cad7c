"""Matching engines: find which rules occur in a buffer, and exactly where.

Every buffer is first turned into its *view* (:func:`~.normalise.view_bytes`: one normalisation
for every rule), and encoded regions of it are decoded into further views
(:func:`~.decoding.decoded_layers`). Plaintext and hashed rules then look at the same views with
the same semantics: case-insensitive, matching at word boundaries (alphanumeric transitions and
CamelCase), and, for a separator-insensitive rule, ignoring any run of separators.

Plaintext rules go through a compiled multi-literal *prefilter* (hyperscan when importable, else
ahocorasick-rs, else Python ``re``) that says which rules may occur in a file; a per-rule regex
then confirms each candidate with the exact semantics and yields its positions. Every engine
therefore reports the same matches; they differ only in speed.

Hashed rules never hold their plaintext. A hashed identifier is confirmed by hashing a *word
window* (1 to ``max_tokens`` consecutive words of a view with what lies between them) exactly as
the identifier was hashed. When every hashed rule of a salt published a screening fingerprint,
the fingerprint of every window is computed in numpy
(:class:`~customer_model_factory.boundary.fingerprints.WindowScreen`) and only the windows whose
fingerprint is listed are hashed with sha256; otherwise every distinct window is hashed.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import operator
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from customer_model_factory.boundary.decoding import (
    DEFAULT_DECODE_DEPTH,
    Hits,
    decoded_layers,
    marker_database,
    marker_expressions,
    marker_hits,
)
from customer_model_factory.boundary.fingerprints import ScreenGroup, WindowScreen, atom_bounds
from customer_model_factory.boundary.normalise import (
    FOLD_TABLE,
    SEPARATOR_BYTES,
    is_boundary,
    view_bytes,
)
from customer_model_factory.boundary.rules import Rule, normalise_identifier

__all__ = [
    "ENGINES",
    "EngineName",
    "Match",
    "Matcher",
    "available_engines",
    "resolve_engine",
]

EngineName = Literal["auto", "hyperscan", "ahocorasick", "re"]
ENGINES: Final = ("hyperscan", "ahocorasick", "re")

_WORD_CLASS: Final = rb"A-Za-z0-9\x80-\xff"
_START: Final = rb"(?:(?<![" + _WORD_CLASS + rb"])|(?<=[a-z])(?=[A-Z]))"
_END: Final = rb"(?:(?![" + _WORD_CLASS + rb"])|(?<=[a-z])(?=[A-Z]))"
_SEPARATOR_RUN: Final = rb"[ \t\r\n\-_./]*"
_BATCH_MATCH_LIMIT: Final = 100_000
# Hyperscan ids of the encoding markers scanned with the plaintext rules (above any rule index).
_MARKER_ID: Final = 1 << 30
_CLEAN_CACHE_LIMIT: Final = 2_000_000


@dataclass(frozen=True, slots=True)
class Match:
    """One occurrence of a rule: 1-based line and column (in characters of the normalised
    line), the matched text (normalised), and the decoding that revealed it (``None`` when the
    text was there as written)."""

    rule: int
    line: int
    col: int
    text: str
    decoding: str | None = None


def available_engines() -> list[str]:
    """Return the engines importable here, fastest first."""
    found: list[str] = []
    try:
        import hyperscan  # noqa: F401, PLC0415

        found.append("hyperscan")
    except ImportError:
        pass
    try:
        import ahocorasick_rs  # noqa: F401, PLC0415

        found.append("ahocorasick")
    except ImportError:
        pass
    found.append("re")
    return found


def resolve_engine(name: EngineName) -> str:
    """Return the engine ``name`` selects (``auto`` = the fastest available).

    :raises ValueError: the named engine is not importable here.
    """
    available = available_engines()
    if name == "auto":
        return available[0]
    if name not in available:
        raise ValueError(f"engine {name!r} is not available here (available: {available})")
    return name


def _key(rule: Rule, confusables: bool) -> bytes:
    assert rule.text is not None
    return normalise_identifier(
        rule.text, separator_insensitive=rule.separator_insensitive, confusables=confusables
    ).encode()


def _body(key: bytes, separator_insensitive: bool) -> bytes:
    """A regex (bytes) of a key: ``.`` also matches ``/``; separator runs between characters."""
    pieces = [rb"[./]" if byte == 46 else b"\\x%02x" % byte for byte in key]
    return (_SEPARATOR_RUN if separator_insensitive else b"").join(pieces)


def _verify_pattern(rule: Rule, key: bytes) -> re.Pattern[bytes]:
    body = b"(?i:" + _body(key, rule.separator_insensitive) + b")"
    if rule.whole_word and key:
        if re.match(rb"[" + _WORD_CLASS + rb"]", key[:1]):
            body = _START + body
        if re.match(rb"[" + _WORD_CLASS + rb"]", key[-1:]):
            body += _END
    return re.compile(body)


def _literal_database(tokens: Sequence[bytes]) -> Any:
    """A hyperscan block-mode database of ``tokens`` as pure literals, or ``None`` when hyperscan
    (or its literal compiler, hyperscan 5.2+) is not available here."""
    try:
        import hyperscan  # noqa: PLC0415
    except ImportError:
        return None
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        database.compile(
            expressions=list(tokens), ids=list(range(len(tokens))), flags=0, literal=True
        )
    except (TypeError, hyperscan.error):
        return None
    return database


def _occurrences(haystack: bytes, needles: Sequence[bytes]) -> Iterator[tuple[bytes, int]]:
    """Yield ``(needle, offset)`` of every occurrence of ``needles`` in ``haystack`` that starts
    and ends at a word boundary of the view.

    One pass whatever the number of needles: hyperscan (a pure-literal database) when
    importable, else Aho-Corasick, else one ``bytes.find`` loop per needle.
    """

    def whole(start: int, end: int) -> bool:
        return is_boundary(haystack, start) and is_boundary(haystack, end)

    database = _literal_database(needles)
    if database is not None:
        ends: list[tuple[int, int]] = []
        database.scan(haystack, match_event_handler=lambda i, _f, to, _fl, _c: ends.append((i, to)))
        for index, end in ends:
            needle = needles[index]
            if whole(end - len(needle), end):
                yield needle, end - len(needle)
        return
    try:
        import ahocorasick_rs  # noqa: PLC0415
    except ImportError:
        for needle in needles:
            start = haystack.find(needle)
            while start >= 0:
                if whole(start, start + len(needle)):
                    yield needle, start
                start = haystack.find(needle, start + 1)
        return
    automaton = ahocorasick_rs.BytesAhoCorasick(list(needles))
    for index, start, end in automaton.find_matches_as_indexes(haystack, overlapping=True):
        if whole(start, end):
            yield needles[index], start


_DIGEST: Final = operator.methodcaller("digest")


def _raw(digest: str) -> bytes:
    return bytes.fromhex(digest.removeprefix("sha256:"))


def _locate(view: bytes, offset: int) -> tuple[int, int]:
    """1-based line and character column of a byte offset of a view."""
    line_start = view.rfind(b"\n", 0, offset) + 1
    line = view.count(b"\n", 0, line_start) + 1
    col = len(view[line_start:offset].decode("utf-8", "replace")) + 1
    return line, col


@dataclass(frozen=True, slots=True)
class _HashGroup:
    salt_prefix: bytes
    separator_insensitive: bool
    max_atoms: int
    min_atoms: int
    hashes: dict[bytes, int]
    # Fingerprints of every hash of the group, when all were published; else None.
    screen: frozenset[int] | None


@dataclass(frozen=True, slots=True)
class _Layer:
    """A buffer to match: a file's view, or a decoding of it (``label``) for file ``owner``."""

    owner: int
    label: str | None
    view: bytes


class Matcher:
    """All rules of a verification compiled for one engine; build once per process.

    :param rules: the ``literal`` / ``schema_id`` (plaintext) and ``hashed`` rules, indexed by
        their position; ``Match.rule`` is that index.
    :param engine: a name from :data:`ENGINES` (``resolve_engine`` picks one).
    :param confusables: fold TR39 confusable characters to the ASCII letters they imitate.
    :param max_decode_depth: how many encodings deep to decode (0: no decoding).
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        engine: str,
        *,
        confusables: bool = False,
        max_decode_depth: int = DEFAULT_DECODE_DEPTH,
    ) -> None:
        self.rules = tuple(rules)
        self.engine = engine
        self.confusables = confusables
        self.max_decode_depth = max_decode_depth
        self._plain = [i for i, r in enumerate(self.rules) if r.kind in ("literal", "schema_id")]
        self._keys = {i: _key(self.rules[i], confusables) for i in self._plain}
        # Exact patterns are compiled when a prefilter first points at their rule: most rules
        # of a large denylist never match, and compiling a pattern costs milliseconds.
        self._verify: dict[int, re.Pattern[bytes]] = {}
        self._hs_db = None
        self._ac = None
        self._ac_ids: list[int] = []
        self._slow: list[int] = []
        if self._plain:
            if engine == "hyperscan":
                self._build_hyperscan()
            elif engine == "ahocorasick":
                self._build_ahocorasick()
            else:
                self._slow = list(self._plain)
        if max_decode_depth > 0 and self._hs_db is None:
            # Markers have their own database when no plaintext one carries them: compiled
            # here, before any fork, not once per worker.
            marker_database()
        self._groups = self._build_hash_groups()
        self._screen = self._build_window_screen()
        # Per group without fingerprints: windows already hashed that hit nothing.
        self._clean: list[set[bytes]] = [set() for _ in self._groups]

    # ---- plaintext prefilters ----

    def _pattern(self, rule: int) -> re.Pattern[bytes]:
        """The exact pattern of a plaintext rule (compiled on first use)."""
        pattern = self._verify.get(rule)
        if pattern is None:
            pattern = self._verify[rule] = _verify_pattern(self.rules[rule], self._keys[rule])
        return pattern

    def _build_hyperscan(self) -> None:
        import hyperscan  # noqa: PLC0415

        expressions = [
            _body(self._keys[i], self.rules[i].separator_insensitive) for i in self._plain
        ]
        ids = list(self._plain)
        flags = [hyperscan.HS_FLAG_CASELESS] * len(expressions)
        if self.max_decode_depth > 0:
            # The encoding markers ride along: one pass over the batch finds both.
            for number, (_name, expression) in enumerate(marker_expressions()):
                expressions.append(expression)
                ids.append(_MARKER_ID + number)
                flags.append(0)
        database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        # Every match is reported (no SINGLEMATCH): a batch attributes each to its file. No
        # boundary assertions: the exact check confirms every candidate anyway.
        database.compile(expressions=expressions, ids=ids, flags=flags)
        self._hs_db = database
        self._hs_scratch = hyperscan.Scratch(database)

    def _build_ahocorasick(self) -> None:
        import ahocorasick_rs  # noqa: PLC0415

        patterns: list[bytes] = []
        for index in self._plain:
            key = self._keys[index]
            # bytes.lower() folds ASCII only, as views need; '.' also stands for '/', and
            # separator-insensitive rules need their own regex.
            if self.rules[index].separator_insensitive or b"." in key:
                self._slow.append(index)
            else:
                patterns.append(key)
                self._ac_ids.append(index)
        if patterns:
            self._ac = ahocorasick_rs.BytesAhoCorasick(patterns)

    def _plain_candidates(
        self, joined: bytes, starts: Sequence[int], *, markers: bool = False
    ) -> tuple[dict[int, set[int]], list[Hits] | None]:
        """Return buffer number → plaintext rules that may occur in it (a superset of the real
        ones), from one pass over the joined views, and with ``markers`` where each encoding
        may be in each buffer (``None``: the caller finds them itself)."""
        owners: dict[int, set[int]] = {}
        count = len(starts) - 1
        hits: list[Hits] | None = None

        def owner(end: int) -> int:
            return bisect.bisect_right(starts, end - 1) - 1

        if self._hs_db is not None:
            ends: list[tuple[int, int]] = []
            seen: list[tuple[int, int]] = []

            def on_match(rule_id: int, _from: int, to: int, _flags: int, _ctx: object) -> bool:
                if rule_id >= _MARKER_ID:
                    seen.append((rule_id - _MARKER_ID, to))
                    return False
                ends.append((rule_id, to))
                return len(ends) > _BATCH_MATCH_LIMIT

            import hyperscan  # noqa: PLC0415

            try:
                self._hs_db.scan(joined, match_event_handler=on_match, scratch=self._hs_scratch)
            except hyperscan.ScanTerminated:
                # A rule matches too often to attribute match by match: verify it everywhere.
                return {n: {rule for rule, _ in ends} for n in range(count)}, None
            for rule, end in ends:
                owners.setdefault(owner(end), set()).add(rule)
            if markers and self.max_decode_depth > 0:
                names = [name for name, _expression in marker_expressions()]
                hits = [{} for _ in range(count)]
                for marker, end in seen:
                    number = owner(end)
                    where = hits[number].setdefault(names[marker], [])
                    where.append(end - 1 - starts[number])
        if self._ac is not None:
            for pattern, _start, end in self._ac.find_matches_as_indexes(
                joined.lower(), overlapping=True
            ):
                owners.setdefault(owner(end), set()).add(self._ac_ids[pattern])
        for rule in self._slow:
            for found in self._pattern(rule).finditer(joined):
                owners.setdefault(owner(found.end()), set()).add(rule)
        return owners, hits

    # ---- hashed rules ----

    def _build_hash_groups(self) -> list[_HashGroup]:
        hashes: dict[tuple[str, bool], dict[str, int]] = {}
        widest: dict[tuple[str, bool], int] = {}
        narrowest: dict[tuple[str, bool], int] = {}
        prints: dict[tuple[str, bool], set[int] | None] = {}
        for index, rule in enumerate(self.rules):
            if rule.kind != "hashed" or rule.hash is None:
                continue
            key = (rule.salt, rule.separator_insensitive)
            hashes.setdefault(key, {}).setdefault(rule.hash, index)
            screen = prints.setdefault(key, set())
            if screen is None or rule.fingerprint is None:
                # One rule without a published fingerprint: the whole group is hashed in full.
                prints[key] = None
            else:
                screen.add(rule.fingerprint)
            widest[key] = max(widest.get(key, 1), rule.max_tokens)
            narrowest[key] = min(narrowest.get(key, rule.min_tokens), rule.min_tokens)
        return [
            _HashGroup(
                salt.encode() + b"\x00",
                sep,
                widest[(salt, sep)],
                min(narrowest[(salt, sep)], widest[(salt, sep)]),
                {_raw(digest): rule for digest, rule in group.items()},
                frozenset(prints[(salt, sep)] or ()) if prints[(salt, sep)] is not None else None,
            )
            for (salt, sep), group in sorted(hashes.items())
        ]

    def _build_window_screen(self) -> WindowScreen | None:
        """The numpy screen of the groups that published fingerprints."""
        screened = [group for group in self._groups if group.screen is not None]
        if not screened:
            return None
        return WindowScreen(
            ScreenGroup(
                group.salt_prefix[:-1].decode(),
                group.separator_insensitive,
                group.max_atoms,
                group.screen or frozenset(),
                group.min_atoms,
            )
            for group in screened
        )

    def _all_windows(self, view: bytes, max_atoms: int, min_atoms: int = 1) -> set[bytes]:
        """Every distinct word window of ``view`` (for groups without fingerprints)."""
        import numpy as np  # noqa: PLC0415

        starts, ends = atom_bounds(np, view)
        first, last = starts.tolist(), ends.tolist()
        windows: set[bytes] = set()
        for width in range(min_atoms, max_atoms + 1):
            windows.update(map(view.__getitem__, map(slice, first, last[width - 1 :])))
        return windows

    def _hashed_hits(self, joined: bytes) -> list[tuple[bytes, int]]:
        """Return ``(window, rule)`` for every distinct window of ``joined`` that a hashed rule
        confirms with sha256."""
        screened = self._screen.candidates(joined) if self._screen is not None else []
        screened_groups = iter(screened)
        hits: list[tuple[bytes, int]] = []
        for group, clean in zip(self._groups, self._clean, strict=True):
            if group.screen is not None:
                windows = next(screened_groups)
            else:
                windows = self._all_windows(joined, group.max_atoms, group.min_atoms) - clean
            if not windows:
                continue
            ordered = list(windows)
            deleted = SEPARATOR_BYTES if group.separator_insensitive else b""
            keys = [window.translate(FOLD_TABLE, deleted) for window in ordered]
            digests = list(map(_DIGEST, map(hashlib.sha256, map(group.salt_prefix.__add__, keys))))
            for window, digest in zip(ordered, digests, strict=True):
                rule = group.hashes.get(digest)
                if rule is not None:
                    hits.append((window, rule))
            if group.screen is None:
                if len(clean) + len(windows) > _CLEAN_CACHE_LIMIT:
                    clean.clear()
                clean.update(windows)
                clean.difference_update(window for window, _ in hits)
        return hits

    # ---- both ----

    def _decoded(self, views: Sequence[bytes], hits: list[Hits] | None) -> list[_Layer]:
        """The decoded layers of each view (as views themselves)."""
        if self.max_decode_depth <= 0:
            return []
        if hits is None:
            hits = marker_hits(views)
        layers: list[_Layer] = []
        for number, view in enumerate(views):
            decoded = decoded_layers(
                view, self.max_decode_depth, hits=None if hits is None else hits[number]
            )
            layers.extend(
                _Layer(number, label, view_bytes(text, confusables=self.confusables))
                for label, text in decoded
            )
        return layers

    def _match_layers(
        self,
        layers: Sequence[_Layer],
        first: int,
        per_layer: dict[int, list[tuple[int, int, int]]],
    ) -> list[Hits] | None:
        """Match ``layers`` (numbered from ``first``) joined as one text, adding to
        ``per_layer``; return the encoding markers the plaintext prefilter saw, when it
        looked (the first layers only)."""
        # A NUL byte between buffers: no separator-insensitive window and no plaintext match
        # runs from one file into the next.
        joined = b"\x00".join(layer.view for layer in layers)
        starts = [0, *itertools.accumulate(len(layer.view) + 1 for layer in layers)]
        hits: list[Hits] | None = None
        if self._plain:
            owners, hits = self._plain_candidates(joined, starts, markers=first == 0)
            for number, rules in owners.items():
                view = layers[number].view
                for rule in rules:
                    for found in self._pattern(rule).finditer(view):
                        per_layer.setdefault(first + number, []).append(
                            (rule, found.start(), found.end())
                        )
        if self._groups:
            windows = self._hashed_hits(joined)
            if windows:
                rules_of: dict[bytes, list[int]] = {}
                for window, rule in windows:
                    rules_of.setdefault(window, []).append(rule)
                for window, offset in _occurrences(joined, sorted(rules_of)):
                    number = bisect.bisect_right(starts, offset) - 1
                    local = offset - starts[number]
                    for rule in rules_of[window]:
                        per_layer.setdefault(first + number, []).append(
                            (rule, local, local + len(window))
                        )
        return hits

    def scan_batch(self, batch: Sequence[bytes]) -> list[list[Match]]:
        """Return the matches of each buffer of ``batch`` (many small files matched as one).

        The views of the batch are joined once; the plaintext prefilter (which also finds the
        encoding markers) and the hashed window screen each make one pass over the joined
        text, and only the buffers they point at are located. The decoded layers are then
        matched the same way.
        """
        if not batch:
            return []
        views = [view_bytes(data, confusables=self.confusables) for data in batch]
        layers = [_Layer(number, None, view) for number, view in enumerate(views)]
        per_layer: dict[int, list[tuple[int, int, int]]] = {}
        hits = self._match_layers(layers, 0, per_layer)
        decoded = self._decoded(views, hits)
        if decoded:
            self._match_layers(decoded, len(layers), per_layer)
        return self._assemble(batch, [*layers, *decoded], per_layer)

    def _assemble(
        self,
        batch: Sequence[bytes],
        layers: Sequence[_Layer],
        per_layer: dict[int, list[tuple[int, int, int]]],
    ) -> list[list[Match]]:
        found: list[list[Match]] = [[] for _ in batch]
        # (rule, line) already found in a file as written, or in a shallower decoding.
        seen: list[set[tuple[int, int]]] = [set() for _ in batch]
        for number in sorted(per_layer, key=lambda n: (layers[n].owner, n)):
            layer = layers[number]
            spans = sorted(set(per_layer[number]), key=lambda span: (span[1], span[0]))
            for rule, start, end in spans:
                line, col = _locate(layer.view, start)
                if layer.label is not None and (rule, line) in seen[layer.owner]:
                    continue
                text = layer.view[start:end].decode("utf-8", "replace")
                found[layer.owner].append(Match(rule, line, col, text, layer.label))
            seen[layer.owner].update((m.rule, m.line) for m in found[layer.owner])
        for matches in found:
            matches.sort(key=lambda m: (m.line, m.col, m.rule, m.decoding or ""))
        return found

    def scan(self, data: bytes) -> list[Match]:
        """Return every match of every rule in ``data``, sorted by position then rule."""
        return self.scan_batch([data])[0]
