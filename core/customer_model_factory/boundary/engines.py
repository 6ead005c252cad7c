"""Matching engines: find which rules occur in a buffer, and exactly where.

Plaintext rules go through a compiled multi-literal *prefilter* (hyperscan when importable, else
ahocorasick-rs, else Python ``re``) that says which rules may occur in a file; a per-rule Python
regex then confirms each candidate with the exact semantics (case-insensitive, whole-word,
separator-insensitive) and yields its positions. Every engine therefore reports the same
matches; they differ only in speed.

Hashed rules never hold their plaintext. Each batch of files is translated once (one
``bytes.translate``: token bytes lower-cased, every other byte a space). When every hashed rule
published a screening fingerprint, the fingerprint of every token is computed in numpy
(:class:`~customer_model_factory.boundary.fingerprints.TokenScreen`) and only the tokens whose
fingerprint is listed, and those holding a non-ASCII byte, reach Python, to be normalised and
hashed with sha256; otherwise the batch is split into its distinct tokens, each normalised and
hashed once (cached across files). Multi-token identifiers are followed from their lead token's
hash.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from customer_model_factory.boundary.fingerprints import ScreenGroup, TokenScreen, fingerprint_base
from customer_model_factory.boundary.rules import SEPARATORS, Rule, normalise_identifier

__all__ = [
    "ENGINES",
    "EngineName",
    "HashedTokens",
    "Match",
    "Matcher",
    "available_engines",
    "resolve_engine",
]

EngineName = Literal["auto", "hyperscan", "ahocorasick", "re"]
ENGINES: Final = ("hyperscan", "ahocorasick", "re")

_WORD: Final = rb"A-Za-z0-9_\x80-\xff"
_JOIN_CLASS: Final = r"[ \t\-_.]?"
_CACHE_LIMIT: Final = 4_000_000
_BATCH_MATCH_LIMIT: Final = 100_000
# Tokenise in slices of about this many bytes: each slice's token list is freed before the next
# is made, so the allocator reuses its memory instead of faulting in fresh pages (a third faster
# than splitting an 8 MB batch at once).
_SPLIT_SLICE: Final = 256 * 1024
# Map every byte to its lower-case ASCII form when it can be part of a token, else to a space,
# so one translate + split yields the tokens of a buffer.
_TOKEN_TABLE: Final = bytes(
    (b + 32 if 65 <= b <= 90 else b)
    if (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 or b == 95 or b >= 128)
    else 32
    for b in range(256)
)


@dataclass(frozen=True, slots=True)
class Match:
    """One occurrence of a rule: 1-based line and column (in characters), and the matched text."""

    rule: int
    line: int
    col: int
    text: str


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


def _verify_pattern(rule: Rule) -> re.Pattern[str]:
    assert rule.text is not None
    normalised = normalise_identifier(rule.text, separator_insensitive=rule.separator_insensitive)
    if rule.separator_insensitive:
        body = _JOIN_CLASS.join(re.escape(ch) for ch in normalised)
    else:
        body = re.escape(normalised)
    if rule.whole_word:
        if re.match(r"\w", normalised[:1]):
            body = r"(?<!\w)" + body
        if re.match(r"\w", normalised[-1:]):
            body += r"(?!\w)"
    return re.compile(body, re.IGNORECASE)


def _hs_expression(rule: Rule) -> tuple[bytes, bool]:
    assert rule.text is not None
    normalised = normalise_identifier(rule.text, separator_insensitive=rule.separator_insensitive)
    # In UTF-8 mode \\x{...} names a code point, so every character is escaped as one.
    pieces = [f"\\x{{{ord(ch):x}}}" for ch in normalised]
    joiner = r"[ \t\-_.]?" if rule.separator_insensitive else ""
    # No \b assertions: they make compiling 200 literals ~60x slower for a prefilter whose
    # candidates the exact check confirms anyway.
    return joiner.join(pieces).encode(), not normalised.isascii()


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


def _occurrences(haystack: bytes, tokens: Sequence[bytes]) -> Iterator[tuple[bytes, int]]:
    """Yield ``(token, offset)`` of every whole-token occurrence of ``tokens`` in ``haystack``.

    One pass whatever the number of tokens: hyperscan (a pure-literal database, compiled in well
    under a millisecond) when importable, else Aho-Corasick, else one ``bytes.find`` loop per
    token.
    """
    end_limit = len(haystack)

    def whole(start: int, end: int) -> bool:
        return (start == 0 or haystack[start - 1] not in _WORD_BYTES) and (
            end == end_limit or haystack[end] not in _WORD_BYTES
        )

    database = _literal_database(tokens)
    if database is not None:
        ends: list[tuple[int, int]] = []
        database.scan(haystack, match_event_handler=lambda i, _f, to, _fl, _c: ends.append((i, to)))
        for index, end in ends:
            token = tokens[index]
            if whole(end - len(token), end):
                yield token, end - len(token)
        return
    try:
        import ahocorasick_rs  # noqa: PLC0415
    except ImportError:
        for token in tokens:
            for offset in _find_whole(haystack, token):
                yield token, offset
        return
    automaton = ahocorasick_rs.BytesAhoCorasick(list(tokens))
    for index, start, end in automaton.find_matches_as_indexes(haystack, overlapping=True):
        if whole(start, end):
            yield tokens[index], start


_DIGEST: Final = operator.methodcaller("digest")
_DROP_UNDERSCORE: Final = operator.methodcaller("replace", b"_", b"")


def _distinct_tokens(translated: bytes) -> set[bytes]:
    """Return the distinct space-separated tokens of ``translated``, split slice by slice."""
    if len(translated) <= _SPLIT_SLICE:
        return set(translated.split())
    tokens: set[bytes] = set()
    start, size = 0, len(translated)
    while start < size:
        # Cut at a space so no token straddles two slices.
        end = translated.find(b" ", start + _SPLIT_SLICE)
        if end < 0:
            end = size
        tokens.update(translated[start:end].split())
        start = end
    return tokens


def _split_ascii(tokens: set[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Return the ASCII tokens and the others (which need NFKC and case folding).

    One C pass instead of a method call per token: deleting every ASCII byte but the space from
    the space-joined tokens leaves, between spaces, exactly the non-ASCII bytes of each token,
    so the non-empty pieces mark the non-ASCII tokens.
    """
    ordered = list(tokens)
    joined = b" ".join(ordered)
    if joined.isascii():
        return ordered, []
    marks = joined.translate(None, _ASCII_BUT_SPACE).split(b" ")
    others = list(itertools.compress(ordered, marks))
    return list(itertools.compress(ordered, map(operator.not_, marks))), others


def _raw(digest: str) -> bytes:
    return bytes.fromhex(digest.removeprefix("sha256:"))


_ASCII_BUT_SPACE: Final = bytes(b for b in range(128) if b != 32)
_WORD_BYTES: Final = frozenset(b for b in range(256) if _TOKEN_TABLE[b] != 32)


def _find_whole(haystack: bytes, token: bytes) -> Iterator[int]:
    """Yield the offsets of ``token`` in ``haystack`` at token boundaries (``bytes.find``
    runs in C; a regex with a look-behind would scan byte by byte)."""
    start = haystack.find(token)
    end_limit = len(haystack)
    while start >= 0:
        end = start + len(token)
        before_ok = start == 0 or haystack[start - 1] not in _WORD_BYTES
        after_ok = end == end_limit or haystack[end] not in _WORD_BYTES
        if before_ok and after_ok:
            yield start
        start = haystack.find(token, start + 1)


class _LineIndex:
    """Turn character offsets of a text into 1-based (line, column)."""

    def __init__(self, text: str) -> None:
        self._starts = [0]
        self._starts.extend(m.end() for m in re.finditer("\n", text))

    def locate(self, offset: int) -> tuple[int, int]:
        import bisect  # noqa: PLC0415

        index = bisect.bisect_right(self._starts, offset) - 1
        return index + 1, offset - self._starts[index] + 1


@dataclass(frozen=True, slots=True)
class HashedTokens:
    """Tokens of a batch of files that hit a hashed rule, or lead a multi-token one."""

    hits: tuple[tuple[bytes, int], ...]
    leads: tuple[tuple[bytes, tuple[int, ...]], ...]


@dataclass(frozen=True, slots=True)
class _HashGroup:
    # sha256 already fed with salt + NUL: each token costs one copy + update.
    prefix: Any
    salt_prefix: bytes
    separator_insensitive: bool
    max_tokens: int
    hashes: dict[bytes, int]
    leads: frozenset[bytes]
    # Fingerprints of every hash and lead of the group, when all were published; else None.
    screen: frozenset[int] | None
    # The polynomial base of the group's fingerprints (from its salt).
    base: int


class Matcher:
    """All rules of a verification compiled for one engine; build once per process.

    :param rules: the ``literal`` / ``schema_id`` (plaintext) and ``hashed`` rules, indexed by
        their position; ``Match.rule`` is that index.
    :param engine: a name from :data:`ENGINES` (``resolve_engine`` picks one).
    """

    def __init__(self, rules: Sequence[Rule], engine: str) -> None:
        self.rules = tuple(rules)
        self.engine = engine
        self._plain = [i for i, r in enumerate(self.rules) if r.kind in ("literal", "schema_id")]
        self._verify = {i: _verify_pattern(self.rules[i]) for i in self._plain}
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
        self._groups = self._build_hash_groups()
        self._vector = self._build_token_screen()
        self._token_cache: dict[bytes, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self._clean: set[bytes] = set()

    # ---- plaintext prefilters ----

    def _build_hyperscan(self) -> None:
        import hyperscan  # noqa: PLC0415

        expressions, flags = [], []
        for index in self._plain:
            expression, utf8 = _hs_expression(self.rules[index])
            expressions.append(expression)
            # Every match is reported (no SINGLEMATCH): a batch attributes each to its file.
            flag = hyperscan.HS_FLAG_CASELESS
            if utf8:
                flag |= hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_UCP
            flags.append(flag)
        database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        database.compile(expressions=expressions, ids=list(self._plain), flags=flags)
        self._hs_db = database
        self._hs_scratch = hyperscan.Scratch(database)

    def _build_ahocorasick(self) -> None:
        import ahocorasick_rs  # noqa: PLC0415

        patterns: list[bytes] = []
        for index in self._plain:
            rule = self.rules[index]
            assert rule.text is not None
            normalised = normalise_identifier(rule.text)
            # bytes.lower() folds ASCII only: other literals, and separator-insensitive ones,
            # are checked by their own regex.
            if rule.separator_insensitive or not normalised.isascii():
                self._slow.append(index)
            else:
                patterns.append(normalised.encode())
                self._ac_ids.append(index)
        if patterns:
            self._ac = ahocorasick_rs.BytesAhoCorasick(patterns)

    def candidate_rules(self, data: bytes, text: str | None = None) -> set[int]:
        """Return the plaintext rules that may occur in ``data`` (a superset of the real ones)."""
        found: set[int] = set()
        if self._hs_db is not None:

            def on_match(rule_id: int, _from: int, _to: int, _flags: int, _ctx: object) -> None:
                found.add(rule_id)

            self._hs_db.scan(data, match_event_handler=on_match, scratch=self._hs_scratch)
        if self._ac is not None:
            for pattern_index in set(
                self._ac.find_matches_as_indexes(data.lower(), overlapping=True)
            ):
                found.add(self._ac_ids[pattern_index[0]])
        if self._slow:
            if text is None:
                text = data.decode("utf-8", "replace")
            found.update(i for i in self._slow if self._verify[i].search(text))
        return found

    # ---- hashed rules ----

    def _build_hash_groups(self) -> list[_HashGroup]:
        hashes: dict[tuple[str, bool], dict[str, int]] = {}
        leads: dict[tuple[str, bool], set[str]] = {}
        max_tokens: dict[tuple[str, bool], int] = {}
        prints: dict[tuple[str, bool], set[int] | None] = {}
        for index, rule in enumerate(self.rules):
            if rule.kind != "hashed" or rule.hash is None:
                continue
            key = (rule.salt, rule.separator_insensitive)
            hashes.setdefault(key, {}).setdefault(rule.hash, index)
            leads.setdefault(key, set())
            screen = prints.setdefault(key, set())
            if rule.lead is not None:
                leads[key].add(rule.lead)
            if (
                screen is None
                or rule.fingerprint is None
                or (rule.lead is not None and rule.lead_fingerprint is None)
            ):
                # One rule without a published fingerprint: the whole group is hashed in full.
                prints[key] = None
            else:
                screen.add(rule.fingerprint)
                if rule.lead_fingerprint is not None:
                    screen.add(rule.lead_fingerprint)
            max_tokens[key] = max(max_tokens.get(key, 1), rule.max_tokens)
        groups = []
        for key, group in sorted(hashes.items()):
            salt, sep = key
            screen = prints[key]
            groups.append(
                _HashGroup(
                    hashlib.sha256(salt.encode() + b"\x00"),
                    salt.encode() + b"\x00",
                    sep,
                    max_tokens[key],
                    {_raw(digest): rule for digest, rule in group.items()},
                    frozenset(_raw(digest) for digest in leads[key]),
                    frozenset(screen) if screen is not None else None,
                    fingerprint_base(salt),
                )
            )
        return groups

    def _build_token_screen(self) -> TokenScreen | None:
        """The numpy screen, when every hashed rule published a fingerprint and numpy is here."""
        if not self._groups or any(group.screen is None for group in self._groups):
            return None
        try:
            return TokenScreen(
                ScreenGroup(group.base, group.separator_insensitive, group.screen or frozenset())
                for group in self._groups
            )
        except ImportError:  # numpy missing: every distinct token is hashed instead
            return None

    @staticmethod
    def _normalise_token(token: bytes, separator_insensitive: bool) -> bytes:
        if token.isascii():
            # ASCII tokens are already lower-case; NFKC and casefold leave them unchanged.
            return token.replace(b"_", b"") if separator_insensitive else token
        text = unicodedata.normalize("NFKC", token.decode("utf-8", "replace")).casefold().strip()
        if separator_insensitive:
            text = "".join(ch for ch in text if ch not in SEPARATORS)
        return text.encode()

    def _lookup(self, token: bytes) -> tuple[tuple[int, ...], tuple[int, ...]]:
        hits: list[int] = []
        leads: list[int] = []
        for number, group in enumerate(self._groups):
            normalised = self._normalise_token(token, group.separator_insensitive)
            hasher = group.prefix.copy()
            hasher.update(normalised)
            digest = hasher.digest()
            rule = group.hashes.get(digest)
            if rule is not None:
                hits.append(rule)
            if digest in group.leads:
                leads.append(number)
        return tuple(hits), tuple(leads)

    def _screen(self, tokens: set[bytes]) -> list[bytes]:
        """Hash each new token once per rule group; return those that hit or lead a rule.

        The hot loop runs in C: ``map`` of sha256 over the normalised tokens, then one set
        intersection with the rule digests. Tokens that hit nothing join the clean cache.
        """
        flagged: set[bytes] = set()
        ascii_tokens, other_tokens = _split_ascii(tokens)
        for group in self._groups:
            wanted = group.hashes.keys() | group.leads
            fast = (
                list(map(_DROP_UNDERSCORE, ascii_tokens))
                if group.separator_insensitive
                else ascii_tokens
            )
            if other_tokens:
                slow = [self._normalise_token(t, group.separator_insensitive) for t in other_tokens]
                normalised = fast + slow
                originals = ascii_tokens + other_tokens
            else:
                normalised, originals = fast, ascii_tokens
            digests = list(
                map(_DIGEST, map(hashlib.sha256, map(group.salt_prefix.__add__, normalised)))
            )
            found = wanted.intersection(digests)
            if found:
                # Several spellings may share a digest (separator-insensitive): keep them all.
                flagged.update(itertools.compress(originals, map(found.__contains__, digests)))
        if len(self._clean) + len(tokens) > _CACHE_LIMIT:
            self._clean.clear()
        self._clean.update(tokens)
        self._clean.difference_update(flagged)
        return sorted(flagged)

    def _hashed_token_hits(
        self, lowered_tokens: bytes
    ) -> tuple[list[tuple[bytes, int]], list[tuple[bytes, tuple[int, ...]]]]:
        if self._vector is not None:
            # Only listed fingerprints and non-ASCII tokens leave numpy.
            tokens = self._vector.candidates(lowered_tokens)
        else:
            tokens = _distinct_tokens(lowered_tokens)
        tokens -= self._clean
        known = tokens.intersection(self._token_cache) if self._token_cache else set()
        fresh = tokens - known if known else tokens
        for token in self._screen(fresh) if fresh else ():
            self._token_cache[token] = self._lookup(token)
            known.add(token)
        hits: list[tuple[bytes, int]] = []
        lead_tokens: list[tuple[bytes, tuple[int, ...]]] = []
        for token in sorted(known):
            rules, groups = self._token_cache[token]
            hits.extend((token, rule) for rule in rules)
            if groups:
                lead_tokens.append((token, groups))
        return hits, lead_tokens

    def _span_hits(
        self, lowered: bytes, lead_tokens: list[tuple[bytes, tuple[int, ...]]]
    ) -> Iterator[tuple[bytes, int]]:
        """Hash token sequences (``acme bank``, ``acme.bank.eu``) that start with a lead token."""
        seen: set[bytes] = set()
        for token, group_numbers in lead_tokens:
            widest = max(self._groups[n].max_tokens for n in group_numbers)
            span_re = re.compile(
                rb"(?<!["
                + _WORD
                + rb"])"
                + re.escape(token)
                + rb"(?:[ \t.\-@/:]["
                + _WORD
                + rb"]+){1,"
                + str(max(widest - 1, 1)).encode()
                + rb"}"
            )
            for found in span_re.finditer(lowered):
                parts = re.split(rb"([ \t.\-@/:])", found.group())
                # Every prefix of two or more tokens is a candidate identifier.
                for end in range(3, len(parts) + 1, 2):
                    candidate = b"".join(parts[:end])
                    if candidate in seen:
                        continue
                    seen.add(candidate)
                    yield from self._hash_span(candidate, (end + 1) // 2, group_numbers)

    def _hash_span(
        self, candidate: bytes, token_count: int, group_numbers: tuple[int, ...]
    ) -> Iterator[tuple[bytes, int]]:
        for number in group_numbers:
            group = self._groups[number]
            if token_count > group.max_tokens:
                continue
            normalised = normalise_identifier(
                candidate.decode("utf-8", "replace"),
                separator_insensitive=group.separator_insensitive,
            ).encode()
            hasher = group.prefix.copy()
            hasher.update(normalised)
            rule = group.hashes.get(hasher.digest())
            if rule is not None:
                yield candidate, rule

    # ---- both ----

    def scan_batch(self, batch: Sequence[bytes]) -> list[list[Match]]:
        """Return the matches of each buffer of ``batch`` (many small files scanned as one).

        Hashed rules tokenise the joined batch once; a token that hits is then searched in the
        joined text and attributed to the files it occurs in, so only those are located.
        """
        tokens = HashedTokens((), ())
        owners: dict[int, HashedTokens] = {}
        joined = b"\n".join(batch)
        sizes = [len(data) for data in batch]
        plain = self._batch_plain_candidates(joined, sizes) if self._plain and batch else None
        if self._groups and batch:
            # Translation is byte for byte: offsets in it are offsets in the joined files, and
            # every non-token byte is a space, so whole tokens are found without lower-casing.
            translated = joined.translate(_TOKEN_TABLE)
            hits, leads = self._hashed_token_hits(translated)
            tokens = HashedTokens(tuple(hits), tuple(leads))
            if hits or leads:
                owners = self._attribute(translated, sizes, tokens)
        empty = HashedTokens((), ())
        nothing: set[int] = set()
        if plain is not None or not self._plain:
            # Only the files a prefilter or a hashed token pointed at can hold a match.
            found: list[list[Match]] = [[] for _ in batch]
            for number in sorted(set(owners).union(plain or ())):
                found[number] = self.scan(
                    batch[number],
                    tokens=owners.get(number, empty) if self._groups else None,
                    plain=plain.get(number, nothing) if plain is not None else None,
                )
            return found
        # The prefilter could not batch: each file is prefiltered on its own.
        return [
            self.scan(data, tokens=owners.get(number, empty) if self._groups else None)
            for number, data in enumerate(batch)
        ]

    @staticmethod
    def _attribute(
        translated: bytes, sizes: Sequence[int], tokens: HashedTokens
    ) -> dict[int, HashedTokens]:
        import bisect  # noqa: PLC0415
        import itertools  # noqa: PLC0415

        starts = [0, *itertools.accumulate(size + 1 for size in sizes)]
        hits: dict[int, list[tuple[bytes, int]]] = {}
        leads: dict[int, list[tuple[bytes, tuple[int, ...]]]] = {}
        wanted = sorted({token for token, _ in tokens.hits} | {token for token, _ in tokens.leads})
        owners: dict[bytes, set[int]] = {token: set() for token in wanted}
        for token, offset in _occurrences(translated, wanted):
            owners[token].add(bisect.bisect_right(starts, offset) - 1)
        for token, rule in tokens.hits:
            for number in owners[token]:
                hits.setdefault(number, []).append((token, rule))
        for token, groups in tokens.leads:
            for number in owners[token]:
                leads.setdefault(number, []).append((token, groups))
        return {
            number: HashedTokens(tuple(hits.get(number, ())), tuple(leads.get(number, ())))
            for number in sorted(set(hits) | set(leads))
        }

    def _batch_plain_candidates(
        self, joined: bytes, sizes: Sequence[int]
    ) -> dict[int, set[int]] | None:
        """Return file number → plaintext rules that may occur in it, from one pass over the
        joined batch; ``None`` when the engine cannot batch (each file is then prefiltered)."""
        import bisect  # noqa: PLC0415
        import itertools  # noqa: PLC0415

        if self._slow or (self._hs_db is None and self._ac is None):
            return None
        starts = [0, *itertools.accumulate(size + 1 for size in sizes)]
        ends: list[tuple[int, int]] = []
        if self._hs_db is not None:

            def on_match(rule_id: int, _from: int, to: int, _flags: int, _ctx: object) -> bool:
                ends.append((rule_id, to))
                # Stop (and fall back to per-file scans) when a rule matches too often to batch.
                return len(ends) > _BATCH_MATCH_LIMIT

            import hyperscan  # noqa: PLC0415

            try:
                self._hs_db.scan(joined, match_event_handler=on_match, scratch=self._hs_scratch)
            except hyperscan.ScanTerminated:
                return None
        else:
            assert self._ac is not None
            for pattern, _start, end in self._ac.find_matches_as_indexes(
                joined.lower(), overlapping=True
            ):
                ends.append((self._ac_ids[pattern], end))
                if len(ends) > _BATCH_MATCH_LIMIT:
                    break
        if len(ends) > _BATCH_MATCH_LIMIT:
            return None
        owners: dict[int, set[int]] = {}
        for rule, end in ends:
            owners.setdefault(bisect.bisect_right(starts, end - 1) - 1, set()).add(rule)
        return owners

    def scan(
        self,
        data: bytes,
        *,
        tokens: HashedTokens | None = None,
        plain: set[int] | None = None,
    ) -> list[Match]:
        """Return every match of every rule in ``data``, sorted by position then rule.

        :param tokens: the hashed-rule tokens of a batch holding ``data`` (from
            :meth:`scan_batch`); ``None`` tokenises ``data`` itself.
        :param plain: the plaintext rules the batch prefilter attributed to ``data``; ``None``
            prefilters ``data`` itself.
        """
        text: str | None = None
        matches: list[Match] = []
        index: _LineIndex | None = None
        if plain is not None:
            candidates = plain
        else:
            candidates = self.candidate_rules(data) if self._plain else set()
        if candidates:
            text = data.decode("utf-8", "replace")
            index = _LineIndex(text)
            for rule in sorted(candidates):
                for found in self._verify[rule].finditer(text):
                    line, col = index.locate(found.start())
                    matches.append(Match(rule, line, col, found.group()))
        if self._groups and (tokens is None or tokens.hits or tokens.leads):
            if tokens is None:
                hits, lead_tokens = self._hashed_token_hits(data.translate(_TOKEN_TABLE))
            else:
                hits, lead_tokens = list(tokens.hits), list(tokens.leads)
            located: list[tuple[bytes, int]] = list(hits)
            if lead_tokens:
                located.extend(self._span_hits(data.lower(), lead_tokens))
            if located:
                if text is None:
                    text = data.decode("utf-8", "replace")
                    index = _LineIndex(text)
                assert index is not None
                matches.extend(self._locate_hashed(data, text, index, located))
        matches.sort(key=lambda m: (m.line, m.col, m.rule))
        return matches

    @staticmethod
    def _locate_hashed(
        data: bytes, text: str, index: _LineIndex, located: list[tuple[bytes, int]]
    ) -> Iterator[Match]:
        lowered = data.lower()
        seen: set[tuple[int, int]] = set()
        for token, rule in located:
            for offset in _find_whole(lowered, token):
                if (offset, rule) in seen:
                    continue
                seen.add((offset, rule))
                char_offset = len(data[:offset].decode("utf-8", "replace"))
                line, col = index.locate(char_offset)
                yield Match(rule, line, col, text[char_offset : char_offset + len(token)])
