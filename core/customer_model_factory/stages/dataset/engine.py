"""The dataset stage's fast engine: reads files quickly and calls :mod:`.rules` on the rows.

Nothing here decides whether a row is acceptable; :mod:`.rules` does. The engine only makes that
cheap, and its contract with the rules (``tests/unit/test_dataset_engine_contract.py``) is that
the report is byte-identical to checking every row with :meth:`~.rules.RowRules.check`:

- A row is decoded by msgspec into a typed struct of the fields the rules read. When every shape
  rule is known to pass for it (its JSON types are checked by the decoder, its categorical
  signature has a cached verdict that says so, its one source and one policy reference are
  judged fine (once each, then cached: a dataset citing thousands of documents keeps every row
  on this path), its times parse), the engine
  calls the verdict's value rules directly (:meth:`~.rules.RowRules.value_rules`, built once
  per cached verdict; :meth:`_RowChecker.check_typed`); any other row is decoded as a dict and
  checked by :meth:`~.rules.RowRules.check`, which names each problem. A
  :class:`~.findings.Finding` is built only when something is wrong.
- The categorical fields of a row form a *signature*; the rules' verdict on it is computed once
  and cached, so a typical row costs one tuple and one dict lookup for all of them.
- Secrets and personal data are found with one multi-pattern scan over whole blocks of raw bytes
  (:mod:`~customer_model_factory.detectors`); only rows with a candidate are decoded field by
  field. A line holding a ``\\uXXXX`` or ``\\/`` escape is always a candidate: an escape can
  hide any character of a secret from the raw bytes.
- A repeated key is ruled out for a whole block with one count of its quotes against the keys
  and strings its rows decoded into (:func:`_repeated_keys`); only rows that may repeat one are
  parsed exactly (:meth:`~.rules.RowRules.duplicate_keys`).
- Memory grows with the number of distinct rows, never with the text: each row leaves a 16-byte
  digest of its leakage key (XXH3-128, or blake2b without ``xxhash``) and its trace id
  (uniqueness; ids longer than 64 characters are kept as a 16-byte blake2b digest).
- Whitespace runs and escaped tabs/newlines are flagged by the same block scan, so the common
  row's leakage key needs no whitespace collapsing (:func:`_fold`, proven equal to
  :func:`~.rules.leakage_key`).
- Large files are split into line-aligned byte ranges checked by worker processes; their results
  are merged in file order, so the report is byte-identical whatever the number of workers.
"""

import datetime as dt
import functools
import gc
import hashlib
import marshal
import os
import re
import sys
import threading
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from hashlib import blake2b
from itertools import accumulate
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import orjson

from customer_model_factory.detectors import DetectorSet, default_detector_set
from customer_model_factory.io import (
    DEFAULT_MAX_DEPTH,
    GZIP_SUFFIX,
    MAX_DEPTH_LIMIT,
    diagnose_jsonl_line,
    file_format_problem,
    json_type_name,
    open_shard,
)
from customer_model_factory.stages.dataset.models import (
    DECISIONS,
    HIGH_RISK_SEVERITIES,
    JSONL_PROBLEM_CODES,
    REDACTION_STATUSES,
    SEVERITIES,
    CustomerWorkspace,
    hash_dataset_files,
    rfc3339_seconds,
)
from customer_model_factory.stages.dataset.rules import (
    COUNTED,
    S_PII,
    S_SECRET,
    SIG_FIELDS,
    TRACE_ID_LIMIT,
    RowRules,
    ValueRules,
    Verdict,
    _Settings,
    cross_split_duplicate,
    duplicate_in_split,
    duplicate_trace_id,
    normalise,
    temporal_order,
)

__all__: list[str] = []  # internal: the stage's entry point is in .validate

_BLOCK_BYTES: Final = 8 << 20
_PARALLEL_MIN_BYTES: Final = 32 << 20
_MIN_RANGE_BYTES: Final = 16 << 20
_CACHE_LIMIT: Final = 65_536
_LONG_ID: Final = 64
_LINE_BITS: Final = 40
_LINE_MASK: Final = (1 << _LINE_BITS) - 1
_BOM: Final = b"\xef\xbb\xbf"
_INPUT_ROWS: Final = "<rows>"
_UNSEEN: Final[Any] = object()

try:
    # 128-bit XXH3: ~10x faster than blake2b on short texts; the digest never leaves the run.
    from xxhash import xxh3_128_digest as _digest
except ImportError:  # pragma: no cover - exercised only without the optional accelerator

    def _digest(data: bytes) -> bytes:
        return blake2b(data, digest_size=16).digest()


# Lower-cases ASCII letters and maps every ASCII whitespace character (as str.split sees them)
# to a space.
_ASCII_FOLD: Final = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f",
    b"abcdefghijklmnopqrstuvwxyz         ",
)


def _expected_values(ws: CustomerWorkspace) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The categorical fields whose valid values a workspace fixes, with those values."""
    return (
        ("customer_id", (ws.customer_id,)),
        ("tenant_id", (ws.tenant_id,)),
        ("workspace_id", (ws.workspace_id,)),
        ("split", tuple(ws.allowed_splits)),
        ("expected_decision", tuple(DECISIONS)),
        ("severity", tuple(SEVERITIES)),
        ("label", tuple(ws.label_map)),
        ("redaction_status", tuple(REDACTION_STATUSES)),
    )


@functools.cache
def _typed_decoder(
    expected: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> tuple[Callable[[bytes], Any], type[Exception], Callable[[Any], tuple[Any, ...]]] | None:
    """A decoder of the trace fields the rules read, typed as the contract wants them, with its
    error type and a reader of a decoded row's fields as one tuple (:data:`SIG_FIELDS`, then
    trace_id, prompt, response, source_refs, policy_refs, observed_at, event_time, metadata: the
    order :meth:`_RowChecker.check_typed` unpacks).

    msgspec decodes a row straight into a slotted struct and checks every field's JSON type in
    C, so the common row skips both the dict and the per-field type checks. Fields the rules do
    not read are refused (such a row takes the dict path); a row with any field of the wrong type
    fails to decode and takes the dict path, which names the problem. ``None`` without msgspec.

    :param expected: categorical fields and their valid values (:func:`_expected_values`); each
        is decoded as a ``Literal`` of them, so a valid value comes back as one shared string
        whose hash is cached (the row's signature is then cheap to look up), and any other value
        takes the dict path, which judges it.
    """
    try:
        import msgspec  # noqa: PLC0415
    except ImportError:  # pragma: no cover - msgspec is a dependency; the dict path is complete
        return None

    text = str | None
    flag = bool | None
    allowed = dict(expected)
    fields = [
        (name, (Literal[allowed[name]] | None) if name in allowed else text, None)  # type: ignore[valid-type]
        for name in SIG_FIELDS
    ]
    fields[S_PII] = ("contains_pii", flag, None)
    fields[S_SECRET] = ("contains_secret", flag, None)
    fields += [
        ("trace_id", text, None),
        ("prompt", text, None),
        ("response", text, None),
        # Exactly one string each (the common row); any other list fails to decode and
        # takes the dict path, as a row the typed path cannot prove would.
        ("source_refs", tuple[str] | None, None),
        ("policy_refs", tuple[str] | None, None),
        ("observed_at", text, None),
        ("event_time", text, None),
        ("metadata", dict[str, Any] | None, None),
    ]
    # gc=False: decoded JSON cannot hold a reference cycle. Unknown fields are refused, so
    # every byte of a row it accepts is decoded and checked (msgspec skips an unknown field
    # without checking its UTF-8 or its numbers), and its keys are known.
    row_type = msgspec.defstruct(
        "TraceRow", fields, kw_only=True, gc=False, forbid_unknown_fields=True
    )
    return msgspec.json.Decoder(row_type).decode, msgspec.MsgspecError, msgspec.structs.astuple


# ---- per-chunk validation state ----


@dataclass
class _Chunk:
    """What one line-aligned byte range (or an iterable) yields; merged in file order.

    Locations are packed as ``range_index << 40 | local_line`` and resolved at merge time;
    repeated trace ids and digests are found once every chunk is in (:class:`_Merger`).
    """

    lines: int = 0
    rows: int = 0
    base: int = 0
    findings: list[tuple[str, str, str, str | None, str | None, int]] = field(default_factory=list)
    signatures: dict[tuple[Any, ...], Verdict] = field(default_factory=dict)
    slow_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Compact, so a chunk pickles and merges cheaply: the key of every valid trace id (the id,
    # or a digest of a long one) and its local line, in row order; every leakage digest (16
    # bytes each, concatenated) with ``local line << 8 | split index``; and the trace id of a
    # digest's row when it is not a valid id (blank), by (packed) location. Local lines are
    # small ints, cheap to append; the merge packs them with the range's ``base``.
    ids: list[Any] = field(default_factory=list)
    id_locs: array = field(default_factory=lambda: array("q"))
    digests: bytearray = field(default_factory=bytearray)
    digest_meta: array = field(default_factory=lambda: array("q"))
    digest_tids: dict[int, str] = field(default_factory=dict)
    train_max: float = float("-inf")
    eval_times: array = field(default_factory=lambda: array("d"))
    eval_locs: array = field(default_factory=lambda: array("q"))
    stopped: bool = False
    copy_rows: int = 0
    copy_redacted: int = 0
    copy_spans: int = 0
    copy_dropped: int = 0

    def __getstate__(self) -> dict[str, Any]:
        # A worker's chunk is pickled back to the parent: its trace ids (str, or the bytes
        # digest of a long one) go as one marshal blob, about twenty times cheaper than
        # pickling half a million strings one by one (pickle memoises each).
        state = dict(self.__dict__)
        state["ids"] = marshal.dumps(self.ids)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["ids"] = marshal.loads(state["ids"])  # our own worker's blob
        self.__dict__.update(state)


class _RowChecker(RowRules):
    """Applies :class:`~.rules.RowRules` to the rows of one byte range, recording into a
    :class:`_Chunk` and caching the rules' row-independent verdicts."""

    def __init__(
        self, settings: _Settings, range_index: int, *, keep_redacted: bool = True
    ) -> None:
        super().__init__(settings, keep_redacted=keep_redacted)
        self.base = range_index << _LINE_BITS
        self.chunk = _Chunk(base=self.base)
        chunk = self.chunk
        self.cache: dict[tuple[Any, ...], Verdict] = chunk.signatures
        # The hooks' appends, bound once (they run for almost every row).
        self.ids_append = chunk.ids.append
        self.id_locs_append = chunk.id_locs.append
        self.digests_extend = chunk.digests.extend
        self.digest_meta_append = chunk.digest_meta.append
        # Each cached verdict's value rules (RowRules.value_rules), by verdict and, with the
        # verdict, by signature (the typed path's one lookup).
        self.judges: dict[Verdict, ValueRules] = {}
        self.typed: dict[tuple[Any, ...], tuple[Verdict, ValueRules]] = {}
        # Row-independent verdicts are shared by every range a process checks.
        shared = settings.shared
        self.ref_verdicts: dict[str, dict[str, tuple[str, str] | None]] = shared.setdefault(
            "ref_verdicts", {"source_refs": {}, "policy_refs": {}}
        )
        # Single references already known to be fine (the fast path of check_typed()).
        self.source_ok: dict[str, bool] = shared.setdefault("source_ok", {})
        self.policy_ok: dict[str, bool] = shared.setdefault("policy_ok", {})
        # The typed path covers rows with no workspace-specific required field.
        self.typed_ok = not self.extra_required
        # Deepest nesting a row may hold, and the typed rows' field reader (set by the range
        # checker; see _typed_decoder).
        self.max_depth = DEFAULT_MAX_DEPTH
        self.astuple: Callable[[Any], tuple[Any, ...]] = tuple

    # -- the rules' hooks --

    def add(  # noqa: PLR0917 - positional on purpose: called per finding in the hot loop
        self,
        code: str,
        severity: str,
        message: str,
        trace_id: str | None,
        field_name: str | None,
        line: int,
    ) -> None:
        self.chunk.findings.append(
            (code, severity, message, trace_id, field_name, self.base | line)
        )

    def record_row(  # noqa: PLR0917
        self,
        trace_id: str | None,
        prompt: str | None,
        response: str | None,
        blank_tid: str | None,
        event: float | None,
        verdict: Verdict,
        line: int,
        spaced: bool,
    ) -> None:
        if trace_id is not None:
            self.ids_append(
                trace_id
                if len(trace_id) <= _LONG_ID
                else hashlib.blake2b(trace_id.encode(), digest_size=16).digest()
            )
            self.id_locs_append(line)
        if prompt is not None and response is not None:
            self.digests_extend(_digest(_fold(prompt, response, spaced=spaced)))
            # One int per row: the local line with the split's index in the low byte.
            self.digest_meta_append(line << 8 | verdict.split_index)
            if blank_tid is not None:
                # A blank id names the row in a leakage finding but is no trace id.
                self.chunk.digest_tids[self.base | line] = blank_tid
        if event is not None:
            chunk = self.chunk
            if verdict.role == 1:
                if event > chunk.train_max:  # noqa: PLR1730 - cheaper than max() per row
                    chunk.train_max = event
            else:
                chunk.eval_times.append(event)
                chunk.eval_locs.append(line)

    def verdict(self, row: Any, sig: tuple[Any, ...]) -> Verdict:
        """The signature verdict, from the cache when the rules said it may be reused."""
        cache = self.cache
        try:
            entry = cache.get(sig)
        except TypeError:  # an unhashable value (list/dict) where a scalar belongs
            entry = None
        if entry is not None and (
            (sig[S_PII] is not None and sig[S_PII].__class__ is not bool)
            or (sig[S_SECRET] is not None and sig[S_SECRET].__class__ is not bool)
        ):
            entry = None
        if entry is not None:
            entry.count += 1
            return entry
        entry, reusable = self.judge_signature(row)
        cached = reusable and len(cache) < _CACHE_LIMIT
        if cached:
            try:
                cache[sig] = entry
            except TypeError:
                cached = False
            else:
                judge = self.judges[entry] = self.value_rules(entry)
                self.typed[sig] = (entry, judge)
        if not cached:
            for name, value in zip(COUNTED, entry.counted, strict=True):
                if value is not None:
                    self.chunk.slow_counts[(name, value)] += 1
        return entry

    def value_rules_of(self, verdict: Verdict) -> ValueRules:
        judge = self.judges.get(verdict)
        return judge if judge is not None else self.value_rules(verdict)

    def string_ref(self, entry: str, name: str) -> tuple[str, str] | None:
        cache = self.ref_verdicts[name]
        verdict = cache.get(entry, _UNSEEN)
        if verdict is _UNSEEN:
            verdict = self.judge_string_ref(entry, name)
            if len(cache) < _CACHE_LIMIT:
                cache[entry] = verdict
                if verdict is None:
                    (self.source_ok if name == "source_refs" else self.policy_ok)[entry] = True
        return verdict

    # -- the two ways in --

    def check(
        self,
        row: dict[str, Any],
        line: int,
        candidate: bool,
        spaced: bool = True,
        kinds: frozenset[int] | None = None,
    ) -> dict[str, Any] | None:
        """Count the row and apply every rule (:meth:`~.rules.RowRules.check`)."""
        self.chunk.rows += 1
        return super().check(row, line, candidate, spaced, kinds)

    def check_typed(self, row: Any, line: int, spaced: bool, raw: bytes) -> int:
        """Check a row decoded by :func:`_typed_decoder` when every shape rule is known to pass
        for it, by calling the value rules directly, and return its keys plus string values (for
        :func:`_repeated_keys`); return ``0``, having recorded nothing (a reference verdict may
        have been cached), when that is not known (the caller then checks the row as a dict).

        Known to pass: a non-blank trace id, prompt and response; one source and one policy
        reference the rules judge fine (:meth:`string_ref`, cached); RFC 3339 times with an
        offset (and an event time where the as-of policy needs one); a categorical signature
        already judged; no prefilter hit (the caller's part); the struct's JSON types (the
        decoder's part).
        """
        # One C call reads every field (an attribute load on a struct costs about as much).
        fields = self.astuple(row)
        trace_id, prompt, response, source, policy, observed, event, metadata = fields[12:]
        # (source_ok and policy_ok hold only references judged fine; typed_ok is checked by
        # the caller, which takes the typed path only when it holds.)
        if not (
            trace_id
            and prompt
            and response
            and source
            and policy
            and observed
            and (source[0] in self.source_ok or self.string_ref(source[0], "source_refs") is None)
            and (policy[0] in self.policy_ok or self.string_ref(policy[0], "policy_refs") is None)
            and len(trace_id) <= TRACE_ID_LIMIT
            and not trace_id.isspace()
            and not prompt.isspace()
            and not response.isspace()
        ):
            return 0
        known = self.typed.get(fields[:12])
        if known is None:
            return 0
        observed_seconds = rfc3339_seconds(observed)
        if observed_seconds is None:
            return 0
        event_seconds = None
        if event is not None:
            event_seconds = rfc3339_seconds(event)
            if event_seconds is None:
                return 0
        elif self.needs_event_time:
            return 0
        entry, judge = known
        # The row's keys plus string values (its quotes prove no key repeats: _may_repeat): the
        # categorical ones, then trace_id, prompt, response, observed_at, one reference each.
        tokens = entry.tokens + (12 if event is None else 14)
        if metadata is not None:
            inner = _shape(metadata, self.max_depth - 1)
            if inner is None:
                return 0  # too deep: the dict path reports it
            tokens += 1 + inner[0] + inner[1]

        self.chunk.rows += 1
        entry.count += 1
        # The verdict's value rules (RowRules.judge_values, without its lookup).
        judge(
            trace_id,
            trace_id,
            prompt,
            response,
            observed_seconds,
            event_seconds,
            None,
            raw,
            line,
            spaced,
            False,
        )
        return tokens


def _fold(prompt: str, response: str, *, spaced: bool) -> bytes:
    """:func:`~.rules.leakage_key`, fast for ASCII text.

    :param spaced: the raw row may hold whitespace other than single spaces.
    """
    text = f"{prompt}\x00{response}"
    if not text.isascii():
        return _delimited(normalise(prompt).encode(), normalise(response).encode())
    # ASCII: NFKC is the identity and case-folding is lower-casing.
    if spaced or prompt[0] == " " or prompt[-1] == " " or response[0] == " " or response[-1] == " ":
        # One byte translation folds case and maps every whitespace character to a space, then
        # runs of spaces collapse; field by field: a NUL inside a text is a character, not the
        # separator.
        prompt_key = b" ".join(prompt.encode().translate(_ASCII_FOLD).split())
        response_key = b" ".join(response.encode().translate(_ASCII_FOLD).split())
        return _delimited(prompt_key, response_key)
    # Not spaced: the raw line holds no whitespace but single spaces (a tab, newline or other
    # control character in a JSON string is always escaped, and escapes mark a line spaced),
    # so only the case is left to fold. The prompt is not blank, so its key is not empty.
    if "\x00" in prompt:
        return _delimited(prompt.lower().encode(), response.lower().encode())
    return text.encode().lower()


def _delimited(prompt_key: bytes, response_key: bytes) -> bytes:
    if prompt_key and b"\x00" not in prompt_key:
        return prompt_key + b"\x00" + response_key
    return len(prompt_key).to_bytes(8, "big") + prompt_key + b"\x00" + response_key


# ---- reading byte ranges ----

# Raw JSON that may hide whitespace other than single spaces inside a string: a run of spaces
# or an escaped tab, newline, carriage return, form feed, vertical tab, separator or space
# (JSON forbids raw control characters in strings, so they always appear escaped; an escaped
# space next to another space is a run the raw bytes do not show).
_WHITESPACE_MARKER: Final = rb"  |\\[tnrf]|\\u00(?:0[9-dA-D]|1[c-fC-F]|20)"
# A line holding a \uXXXX or \/ escape: an escape can hide any character of a secret from the
# raw-byte prefilter, so such a line is a candidate for every detector (they see decoded text).
# The match runs to the end of the line, so it is reported once per line however many escapes.
_ESCAPE_MARKER: Final = rb"\\[u/][^\n]*(?:\n|\z)"
_ESCAPE_RE: Final = re.compile(rb"\\[u/][^\n]*(?:\n|\Z)")
# A key parted from its colon by whitespace: where it may occur, `":` does not count keys.
_SPACED_KEY: Final = re.compile(rb'"[ \t\r\n]+:')


class _BlockScanner:
    """One pass over a block for the secret/PII prefilter (raw patterns, and any line with an
    escape that could hide a secret) and the whitespace markers.

    With Hyperscan the detectors' prefilter patterns and the markers share one database, so a
    block is scanned once; without it, the detector set's own engine and ``re`` are used.
    """

    def __init__(self, detectors: DetectorSet) -> None:
        self._detectors = detectors
        self._db: Any = None
        self._re = re.compile(_WHITESPACE_MARKER)
        if detectors.engine != "hyperscan":
            return
        import hyperscan  # noqa: PLC0415

        patterns = [d.prefilter_pattern.encode("ascii") for d in detectors.detectors]
        flags = [hyperscan.HS_FLAG_CASELESS if d.caseless else 0 for d in detectors.detectors]
        self._marker_id = len(patterns)
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(
            expressions=[*patterns, _WHITESPACE_MARKER, _ESCAPE_MARKER],
            ids=list(range(len(patterns) + 2)),
            flags=[*flags, 0, 0],
        )

    def scan(self, block: bytes) -> tuple[list[tuple[int, int | None]], list[int]]:
        """Return ``(candidates, whitespace-marker ends)`` in ``block``.

        A candidate is ``(end, detector index)``; the index is ``None`` when the engine cannot
        tell which detector fired (the ``re`` fallback) or a line holds an escape, meaning "run
        them all".
        """
        if self._db is None:
            markers = [match.end() for match in self._re.finditer(block)]
            candidates = [(end, None) for end in self._detectors.candidate_ends(block)]
            # An escape's match ends after its line's newline: end - 1 is in the line.
            candidates += [(match.end() - 1, None) for match in _ESCAPE_RE.finditer(block)]
            return candidates, markers
        candidates: list[tuple[int, int | None]] = []
        markers = []
        marker_id = self._marker_id

        def on_match(ident: int, _start: int, end: int, _flags: int, _context: Any) -> None:
            if ident < marker_id:
                candidates.append((end, ident))
            elif ident == marker_id:
                markers.append(end)
            else:
                candidates.append((end - 1, None))

        self._db.scan(block, match_event_handler=on_match)
        return candidates, markers


_SCANNERS = threading.local()


def _block_scanner() -> _BlockScanner:
    """This thread's block scanner (a Hyperscan database's scratch space serves one scan at a
    time; worker processes inherit the parent's)."""
    scanner = getattr(_SCANNERS, "scanner", None)
    if scanner is None:
        scanner = _SCANNERS.scanner = _BlockScanner(default_detector_set())
    return scanner


def _line_index(end: int, closing: list[int], count: int) -> int:
    # The newline closing line i sits at offset cumulative_length(i) + i.
    index = bisect_left(range(count), end, key=lambda i: closing[i] + i)
    return min(index, count - 1)


def _lines_of_matches(
    candidates: list[tuple[int, int | None]], marker_ends: list[int], lines: list[bytes]
) -> tuple[dict[int, frozenset[int] | None], set[int]]:
    """Where the matches of a block scan fall, by index of the line (of the block split on
    newlines) each ends in: the detectors whose prefilter fired on a line (``None``: all of
    them), and the lines holding a whitespace marker."""
    if not candidates and not marker_ends:
        return {}, set()
    closing = list(accumulate(map(len, lines)))
    count = len(closing)
    fired: dict[int, set[int] | None] = {}
    for end, ident in candidates:
        index = _line_index(end, closing, count)
        known = fired.get(index, set())
        if ident is None or known is None:
            fired[index] = None
        else:
            known.add(ident)
            fired[index] = known
    flagged = {index: None if ids is None else frozenset(ids) for index, ids in fired.items()}
    return flagged, {_line_index(end, closing, count) for end in marker_ends}


@dataclass(frozen=True, slots=True)
class _Range:
    index: int
    shard: int
    path: str
    start: int
    end: int
    is_first: bool
    is_last: bool
    compressed: bool = False


def _check_range(  # noqa: PLR0917 - the range, then how to read it
    settings: _Settings,
    byte_range: _Range,
    max_line_bytes: int,
    copy: Any = None,
    progress: Callable[[int], None] | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> _Chunk:
    """Read and check one line-aligned byte range of a shard.

    The cyclic garbage collector is paused meanwhile: the rows' lists, dicts and tuples hold no
    cycles, yet every 700 of them would start a collection (5-8 % of the checking time).
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        chunk = _check_lines(
            settings,
            byte_range,
            max_line_bytes,
            copy,
            None if byte_range.compressed else progress,
            max_depth,
        )
        if byte_range.compressed and progress is not None:
            progress(byte_range.end - byte_range.start)
        return chunk
    finally:
        if paused:
            gc.enable()


def _check_lines(  # noqa: PLR0917
    settings: _Settings,
    byte_range: _Range,
    max_line_bytes: int,
    copy: Any,
    progress: Callable[[int], None] | None,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> _Chunk:
    checker = _RowChecker(settings, byte_range.index, keep_redacted=copy is not None)
    checker.max_depth = max_depth
    chunk = checker.chunk
    scanner = _block_scanner()
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    typed = (
        _typed_decoder(_expected_values(settings.workspace))
        if copy is None and checker.typed_ok
        else None
    )
    typed_decode, typed_error, checker.astuple = (
        typed if typed is not None else (None, Exception, tuple)
    )
    check_typed = checker.check_typed
    check = checker.check
    line = 0

    def problem(kind: str, message: str, at: int) -> None:
        checker.add(JSONL_PROBLEM_CODES[kind], "error", message, None, None, at)
        if copy is not None:
            chunk.copy_dropped += 1

    compressed = byte_range.compressed
    # A compressed shard is one range read to its end (its decompressed size is unknown).
    end = sys.maxsize if compressed else byte_range.end
    with open_shard(byte_range.path) as handle:
        if byte_range.is_first:
            trouble = file_format_problem(handle.read(64))
            if trouble is not None:
                # Not UTF-8 JSONL at all: one finding for the file, not one per line.
                problem(trouble[0], trouble[1], 1)
                chunk.stopped = True
                return chunk
        handle.seek(byte_range.start)
        position = byte_range.start
        carry = b""
        skipping = False
        while position < end:
            want = min(_BLOCK_BYTES, end - position)
            data = handle.read(want)
            exhausted = compressed and len(data) < want
            if not data and not (compressed and carry):
                break
            cut = data.rfind(b"\n")
            if (
                not compressed
                and not skipping
                and not carry
                and 0 <= cut < len(data) - 1
                and position + len(data) < byte_range.end
            ):
                # The common block: whole lines, then the start of one more. That start is read
                # again with the next block, so this one is used as read, without a copy.
                limit = cut + 1
                position += limit
                handle.seek(position)
                if progress is not None:
                    progress(limit)
                block = data
                lines = data.split(b"\n")
                lines.pop()  # the partial line
                terminated = True
                at_end = False
            else:
                position += len(data)
                if progress is not None:
                    progress(len(data))
                if skipping:
                    cut = data.find(b"\n")
                    if cut < 0:
                        continue
                    skipping = False
                    data = data[cut + 1 :]
                if carry:
                    data = carry + data
                    carry = b""
                at_end = position >= end or exhausted
                if not at_end:
                    cut = data.rfind(b"\n")
                    if cut < 0:
                        if len(data) > max_line_bytes + 2:
                            line += 1
                            problem(
                                "line_too_long",
                                f"line is longer than {max_line_bytes} bytes",
                                line,
                            )
                            skipping = True
                        else:
                            carry = data
                        continue
                    block, carry = data[: cut + 1], data[cut + 1 :]
                else:
                    block = data
                if not block:
                    continue
                lines = block.split(b"\n")
                terminated = block.endswith(b"\n")
                if terminated:
                    lines.pop()
                limit = len(block)
            last_index = len(lines) - 1
            # Decoded key counts of the rows of this block, by line index (see _repeated_keys).
            row_keys: dict[int, int] = {}
            block_line = line
            candidates, marker_ends = scanner.scan(block)
            if limit < len(block):
                # Matches in the partial line are found again with the next block.
                candidates = [found for found in candidates if found[0] < limit]
                marker_ends = [end for end in marker_ends if end < limit]
            flagged, spaced = _lines_of_matches(candidates, marker_ends, lines)
            carriage = b"\r" in block if limit == len(block) else block.find(b"\r", 0, limit) >= 0
            for index, line_bytes in enumerate(lines):
                line += 1
                candidate = index in flagged
                kinds = flagged.get(index) if candidate else None
                raw = line_bytes[:-1] if carriage and line_bytes.endswith(b"\r") else line_bytes
                if line == 1 and byte_range.is_first and raw.startswith(_BOM):
                    problem("bom", "file starts with a UTF-8 byte order mark (BOM)", line)
                    raw = raw[len(_BOM) :]
                    if copy is not None:
                        chunk.copy_dropped -= 1
                if len(raw) > max_line_bytes:
                    problem("line_too_long", f"line is longer than {max_line_bytes} bytes", line)
                    continue
                if typed_decode is not None and not candidate:
                    try:
                        typed_row = typed_decode(raw)
                    except (typed_error, UnicodeDecodeError, RecursionError):
                        pass  # not the common shape: the dict path names what is wrong
                    else:
                        tokens = check_typed(typed_row, line, index in spaced, raw)
                        if tokens:
                            row_keys[index] = tokens
                            continue
                try:
                    value = loads(raw)
                except decode_error:
                    if not raw.strip():
                        continue
                    if line == 1 and byte_range.is_first and raw.lstrip().startswith(b"["):
                        problem(
                            "json_array",
                            "file holds a JSON array; JSONL needs one JSON object per line",
                            line,
                        )
                        chunk.stopped = True
                        chunk.lines = line
                        return chunk
                    unterminated = (
                        index == last_index and not terminated and at_end and byte_range.is_last
                    )
                    kind, message = diagnose_jsonl_line(
                        raw, last_without_newline=unterminated, max_depth=max_depth
                    )
                    problem(kind, message, line)
                    continue
                if type(value) is not dict:
                    if line == 1 and byte_range.is_first and isinstance(value, list):
                        problem(
                            "json_array",
                            "file holds a JSON array; JSONL needs one JSON object per line",
                            line,
                        )
                        chunk.stopped = True
                        chunk.lines = line
                        return chunk
                    problem(
                        "not_object",
                        f"line holds a JSON {json_type_name(value)}, expected an object",
                        line,
                    )
                    continue
                shape = _shape(value, max_depth)
                if shape is None:
                    message = f"arrays and objects nest deeper than {max_depth} levels"
                    problem("nesting_too_deep", message, line)
                    continue
                repeated = False
                if copy is not None:
                    # Checked now: the copy must not hold a shadowed value.
                    repeated = _may_repeat(raw, shape) and checker.duplicate_keys(
                        raw, _named(value, candidate), line
                    )
                else:
                    row_keys[index] = shape[0] + shape[1]
                redacted = check(value, line, candidate, index in spaced, kinds)
                if copy is not None:
                    # A repeated key's shadowed value never reaches the copy.
                    _copy_row(copy, chunk, raw, redacted, checker.last_spans, repeated, value)
            if row_keys:
                _repeated_keys(checker, block, limit, lines, row_keys, block_line, flagged)
    chunk.lines = line
    return chunk


def _may_repeat(raw: bytes, shape: tuple[int, int] | None) -> bool:
    """Whether a row decoded into ``shape`` (its keys, its string values) may repeat a key.

    Every key and string value is written between two quotes, and any other quote is escaped
    (``\\"``) inside a string, so a row holds at least twice as many quotes as key and string
    occurrences, exactly twice as many decoded when no key repeats and no string holds a quote.
    Failing that, every key ends in `":` unless whitespace parts it from its colon, so with no
    such whitespace, as many `":` as keys decoded also proves it.
    """
    if shape is None:
        return True
    keys, strings = shape
    if raw.count(b'"') == 2 * (keys + strings):
        return False
    return raw.count(b'":') != keys or _SPACED_KEY.search(raw) is not None


def _repeated_keys(  # noqa: PLR0917
    checker: _RowChecker,
    block: bytes,
    limit: int,
    lines: list[bytes],
    row_keys: dict[int, tuple[int, int]],
    block_line: int,
    flagged: Mapping[int, Any],
) -> None:
    """Report the rows of a block that repeat a key, with one count over the block for almost
    all: when the block holds twice as many quotes as its rows' decoded keys and string values
    plus the other lines' quotes, no row repeats a key (see :func:`_may_repeat`); otherwise
    each row is judged on its own, and those that may repeat one are parsed exactly.
    """
    others = 0
    if len(row_keys) < len(lines):
        others = sum(
            lines[index].count(b'"') for index in range(len(lines)) if index not in row_keys
        )
    if _count_quotes(block, limit) == 2 * sum(row_keys.values()) + others:
        return
    for index, tokens in row_keys.items():
        raw = lines[index]
        if raw.count(b'"') == 2 * tokens:
            continue
        raw = raw.removesuffix(b"\r")
        if block_line + index == 0 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        row = orjson.loads(raw)
        if _may_repeat(raw, _shape(row, MAX_DEPTH_LIMIT)):
            checker.duplicate_keys(raw, _named(row, index in flagged), block_line + index + 1)


def _count_quotes(block: bytes, limit: int) -> int:
    """How many quotes the first ``limit`` bytes of ``block`` hold, as ``bytes.count`` says, in
    one vectorised pass (about five times faster)."""
    return int(np.count_nonzero(np.frombuffer(block, np.uint8, limit) == _QUOTE))


_QUOTE: Final = ord('"')


def _copy_row(  # noqa: PLR0917
    copy: Any,
    chunk: _Chunk,
    raw: bytes,
    redacted: dict[str, Any] | None,
    spans: int,
    repeated: bool = False,
    value: dict[str, Any] | None = None,
) -> None:
    chunk.copy_rows += 1
    if redacted is None:
        copy.write(orjson.dumps(value) + b"\n" if repeated else raw + b"\n")
        return
    chunk.copy_redacted += 1
    chunk.copy_spans += spans
    redacted["redaction_status"] = "redacted"
    copy.write(orjson.dumps(redacted) + b"\n")


def _shape(value: Any, limit: int) -> tuple[int, int] | None:
    """How many keys and how many string values a decoded JSON object or array holds, nested
    ones included; ``None`` when it nests deeper than ``limit`` levels (itself is level 1)."""
    keys = strings = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return None
        if type(node) is dict:
            keys += len(node)
            items = node.values()
        else:
            items = node
        for item in items:
            kind = type(item)
            if kind is str:
                strings += 1
            elif kind is dict or kind is list:
                stack.append((item, depth + 1))
    return keys, strings


def _named(row: dict[str, Any], candidate: bool) -> str | None:
    """The trace id that may name a row in a finding found before the rules ran (none when the
    row may hold a secret: the rules decide whether the id is one)."""
    trace_id = row.get("trace_id")
    return trace_id if type(trace_id) is str and not candidate else None


def _plan_ranges(shards: list[Path], workers: int) -> list[_Range]:
    """Split shards into line-aligned byte ranges, in file order (one per shard for one worker).

    With several workers, each range is a ``1 / (2 * workers)`` share of what remains, but at
    least :data:`_MIN_RANGE_BYTES` (guided scheduling): large ranges first keep the per-range
    cost low, small ones last let the workers finish together.
    """
    remaining = sum(shard.stat().st_size for shard in shards)
    ranges: list[_Range] = []
    for shard_index, shard in enumerate(shards):
        size = shard.stat().st_size
        bounds = [0]
        compressed = shard.name.endswith(GZIP_SUFFIX)  # read whole: it cannot be split
        with open(shard, "rb") as handle:
            while workers > 1 and not compressed:
                step = max(_MIN_RANGE_BYTES, remaining // (2 * workers))
                cursor = bounds[-1] + step
                if cursor >= size:
                    break
                handle.seek(cursor)
                handle.readline()
                boundary = handle.tell()
                if boundary >= size:
                    break
                remaining -= boundary - bounds[-1]
                bounds.append(boundary)
        remaining -= size - bounds[-1]
        bounds.append(size)
        for position in range(len(bounds) - 1):
            ranges.append(
                _Range(
                    index=len(ranges),
                    shard=shard_index,
                    path=str(shard),
                    start=bounds[position],
                    end=bounds[position + 1],
                    is_first=position == 0,
                    is_last=position == len(bounds) - 2,
                    compressed=compressed,
                )
            )
    return ranges


_WORKER: dict[str, Any] = {}


def _worker_check(byte_range: _Range) -> _Chunk:
    return _check_range(
        _WORKER["settings"],
        byte_range,
        _WORKER["max_line_bytes"],
        max_depth=_WORKER.get("max_depth", DEFAULT_MAX_DEPTH),
    )


def _default_workers(total_bytes: int) -> int:
    if total_bytes < _PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _hash_shards(shards: list[Path], result: dict[str, Any]) -> None:
    result["dataset_hash"], result["digests"] = hash_dataset_files(shards)


# ---- merging ----


class _Merger:
    """Merges chunks in file order, applying the cross-chunk rules exactly as one pass would.

    Trace ids and leakage digests are collected, and hashed, as chunks arrive (while the
    workers still run); :meth:`repeats` finds the repeated ones at the end in a few array
    passes (numpy), comparing the values themselves wherever two hashes agree.
    """

    def __init__(self, resolve: Callable[[int], tuple[str, int]], splits: tuple[str, ...]) -> None:
        self.resolve = resolve
        self.splits = splits
        self.findings: list[tuple[str, str, str, str | None, str | None, int]] = []
        self.ids: list[Any] = []
        self.id_hashes: list[Any] = []
        self.id_sorted: list[Any] = []
        self.id_locs = array("q")
        self.digests = bytearray()
        self.digest_hashes: list[Any] = []
        self.digest_sorted: list[Any] = []
        self.digest_meta = array("q")
        self.digest_tids: dict[int, str] = {}
        self.counts: Counter[tuple[str, str]] = Counter()
        self.rows = 0
        self.train_max = float("-inf")
        self.eval: list[tuple[array, array]] = []

    def where(self, packed: int) -> str:
        path, line = self.resolve(packed)
        return f"{path}:{line}"

    def add(self, chunk: _Chunk) -> None:
        self.rows += chunk.rows
        self.findings.extend(chunk.findings)
        for verdict in chunk.signatures.values():
            for name, value in zip(COUNTED, verdict.counted, strict=True):
                if value is not None:
                    self.counts[(name, value)] += verdict.count
        self.counts.update(chunk.slow_counts)
        self.ids.extend(chunk.ids)
        # Each chunk's hashes are also sorted now, while the workers still run: the final sort
        # then merges sorted runs (see _repeated), off the single-core tail of the run.
        hashes = _hash_keys(chunk.ids)
        self.id_hashes.append(hashes)
        self.id_sorted.append(np.sort(hashes))
        self.id_locs.extend(_rebased(chunk.id_locs, chunk.base))
        self.digests += chunk.digests
        hashes = _digest_keys(chunk.digests)
        self.digest_hashes.append(hashes)
        self.digest_sorted.append(np.sort(hashes))
        self.digest_meta.extend(_rebased(chunk.digest_meta, chunk.base << 8))
        self.digest_tids.update(chunk.digest_tids)
        self.train_max = max(self.train_max, chunk.train_max)
        if chunk.eval_times:
            self.eval.append((chunk.eval_times, _rebased(chunk.eval_locs, chunk.base)))

    def tid_at(self, packed: int) -> str | None:
        """The trace id recorded at a location (``None``: none, or a long one's digest)."""
        # Locations grow in file order, and chunks arrive in file order.
        index = bisect_left(self.id_locs, packed)
        if index < len(self.id_locs) and self.id_locs[index] == packed:
            key = self.ids[index]
            return key if isinstance(key, str) else None
        return None

    def repeats(self) -> None:
        """Add the findings of repeated trace ids and of repeated prompt + response digests."""
        none = np.empty(0, np.int64)
        locs = self.id_locs
        for index, first in _repeated(
            np.concatenate([none, *self.id_hashes]),
            self.ids.__getitem__,
            np.concatenate([none, *self.id_sorted]),
        ):
            key = self.ids[index]
            self._add(
                duplicate_trace_id(self.where(locs[first])),
                key if isinstance(key, str) else None,
                locs[index],
            )
        blob = self.digests
        meta = self.digest_meta
        for index, first in _repeated(
            np.concatenate([none, *self.digest_hashes]),
            lambda i: bytes(blob[16 * i : 16 * i + 16]),
            np.concatenate([none, *self.digest_sorted]),
        ):
            packed = meta[index] >> 8
            tid = self.digest_tids[packed] if packed in self.digest_tids else self.tid_at(packed)
            self._leak(meta[first], meta[index] & 0xFF, tid, packed)

    def _leak(self, first_value: int, split_index: int, tid: str | None, packed: int) -> None:
        first = first_value >> 8
        first_split = self.splits[first_value & 0xFF]
        split = self.splits[split_index]
        if first_split == split:
            self._add(duplicate_in_split(split, self.where(first)), tid, packed)
        else:
            self._add(cross_split_duplicate(first_split, self.where(first), split), tid, packed)

    def _add(
        self, template: tuple[str, str, str, str | None], tid: str | None, packed: int
    ) -> None:
        code, severity, message, field_name = template
        self.findings.append((code, severity, message, tid, field_name, packed))

    def temporal_findings(self) -> None:
        if self.train_max == float("-inf"):
            return
        newest = self.train_max
        stamp = dt.datetime.fromtimestamp(newest, dt.UTC).isoformat().replace("+00:00", "Z")
        for times, locs in self.eval:
            for seconds, packed in zip(times, locs, strict=True):
                if seconds < newest:
                    tid = self.tid_at(packed)
                    self._add(temporal_order(stamp), tid if isinstance(tid, str) else None, packed)


def _rebased(values: array, base: int) -> array:
    """``value | base`` for every value (local lines, packed with their range's base)."""
    if not base or not values:
        return values
    return array("q", (np.frombuffer(values, np.int64) | base).tobytes())


def _hash_keys(keys: list[Any]) -> Any:
    """One 64-bit hash per key (str or bytes; Python's own, consistent within this process)."""
    return np.fromiter(map(hash, keys), dtype=np.int64, count=len(keys))


def _digest_keys(blob: bytes | bytearray) -> Any:
    """The first 8 bytes of each 16-byte digest of ``blob``, as one int64 each (a copy: the
    blob is free to change or go)."""
    return np.frombuffer(blob, dtype=np.int64)[0::2].copy()


def _repeated(
    hashes: Any, value_of: Callable[[int], Any], runs: Any = None
) -> list[tuple[int, int]]:
    """Return ``(index, index of the first equal value)`` for every value equal to an earlier
    one, in index order; ``hashes[i]`` is a hash of value ``i`` and ``value_of(i)`` the value.

    Sorting the hashes puts equal ones side by side (a plain sort: about twice as fast as an
    argsort); only the values of the hashes that occur more than once (true repeats and the
    rare colliding hash) are then compared, in index order, so the first of equal values wins.

    :param runs: the same hashes as consecutive sorted runs (each chunk's, sorted as it
        arrived); a stable sort (timsort) merges them in a fraction of a full sort.
    """
    if len(hashes) < 2:
        return []
    ordered = np.sort(hashes) if runs is None else np.sort(runs, kind="stable")
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return []
    # The indices of the hashes that occur more than once, ascending (index order): one binary
    # search per hash in the few repeated ones (np.isin would sort everything again).
    repeated = np.unique(ordered[1:][same])
    slot = np.searchsorted(repeated, hashes)
    slot[slot == len(repeated)] = 0
    members = np.flatnonzero(repeated[slot] == hashes)
    first: dict[Any, int] = {}
    found: list[tuple[int, int]] = []
    for index in members.tolist():
        earlier = first.setdefault(value_of(index), index)
        if earlier != index:
            found.append((index, earlier))
    return found


class _HashingWriter:
    """A binary writer that hashes what it writes."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return int(self.handle.write(data))


def _display_name(source: Path, shard: Path) -> str:
    return str(shard) if source == shard else str(source / shard.name)


def _count_fields(merger: _Merger) -> dict[str, Any]:
    by: dict[str, dict[str, int]] = {
        name: {} for name in ("split", "label", "class", "decision", "severity", "sector")
    }
    for (name, value), count in merger.counts.items():
        by[name][str(value)] = count
    severity = by["severity"]
    return {
        "row_count": merger.rows,
        "split_counts": dict(sorted(by["split"].items())),
        "label_counts": dict(sorted(by["label"].items())),
        "label_class_counts": dict(sorted(by["class"].items())),
        "decision_counts": dict(sorted(by["decision"].items())),
        "severity_counts": {level: severity.get(level, 0) for level in SEVERITIES},
        "high_risk_count": sum(severity.get(level, 0) for level in HIGH_RISK_SEVERITIES),
        "sector_counts": dict(sorted(by["sector"].items())),
    }
