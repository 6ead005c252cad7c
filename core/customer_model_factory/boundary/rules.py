"""Boundary rules: what must never appear in the public tree, and where each rule came from.

Rules come from four sources and are merged into one :class:`RuleSet`, each rule recording its
``origin``:

* identifiers declared by installed packs (the ``cmf_proprietary_identifiers`` hook), as
  plaintext ``literals`` or salted ``hashed`` entries;
* a plaintext denylist file kept outside the public tree (:func:`read_plain_denylist`);
* a hashed denylist committed in the public tree (:class:`HashedDenylist`), so the public repo can
  enforce a rule without ever containing the identifier;
* path globs (pack module paths, private schema files) and schema ``$id`` values.

Identifiers are compared after :func:`normalise_identifier` (the one normalisation of
:mod:`.normalise`, shared by plaintext and hashed rules) under the hash scheme
``cmf-boundary-v1``; a rule is shown in reports by its label or a hash prefix, never by its text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from customer_model_factory.boundary.fingerprints import (
    FINGERPRINT_BITS,
    FINGERPRINT_SCHEME,
    keyed_fingerprint,
)
from customer_model_factory.boundary.normalise import (
    ALNUM_BYTES,
    SEPARATORS,
    atom_count,
    identifier_key,
)
from customer_model_factory.contributions import (
    HASHED_IDENTIFIER_RE,
    IDENTIFIER_HASH_SCHEME,
    ProprietaryIdentifiers,
)
from customer_model_factory.errors import ConfigError, DataFormatError

__all__ = [
    "DEFAULT_HASHED_DENYLIST",
    "FINGERPRINT_BITS",
    "HASH_SCHEME",
    "SEPARATORS",
    "HashedDenylist",
    "Rule",
    "RuleKind",
    "RuleSet",
    "check_denylist_digests",
    "denylist_digest",
    "fingerprint_identifier",
    "hash_identifier",
    "load_hashed_denylist",
    "make_hashed_denylist",
    "normalise_identifier",
    "read_identifier_lines",
    "read_plain_denylist",
    "rules_from_identifiers",
]

HASH_SCHEME: Final = IDENTIFIER_HASH_SCHEME
"""The only hash scheme this release reads and writes."""

DEFAULT_HASHED_DENYLIST: Final = "boundary-denylist.json"
"""File name of the hashed denylist read from the scan root when present."""

PACK_MAX_TOKENS: Final = 4
"""Words a pack's hashed identifier may span in the text (a pack does not say)."""
MAX_TOKENS_LIMIT: Final = 12
"""The widest word window a hashed denylist may ask scans to hash."""

_DISPLAY_HEX: Final = 12

RuleKind = Literal["literal", "hashed", "path_glob", "schema_id"]


def normalise_identifier(
    identifier: str, *, separator_insensitive: bool = False, confusables: bool = False
) -> str:
    """Return the form of ``identifier`` that rules compare and hash (scheme ``cmf-boundary-v1``).

    Default-ignorable code points removed, NFKC, case-folded, non-ASCII punctuation read as a
    space, ``/`` read as ``.``, stripped (:func:`~.normalise.identifier_key`); with
    ``separator_insensitive`` the characters of :data:`SEPARATORS` are removed too.
    """
    return identifier_key(
        identifier, separator_insensitive=separator_insensitive, confusables=confusables
    )


def hash_identifier(identifier: str, salt: str, *, separator_insensitive: bool = False) -> str:
    """Return ``sha256:<hex>`` of ``salt``, a NUL byte and the normalised identifier.

    This is the fixed scheme ``cmf-boundary-v1`` that packs publish their identifiers with.
    """
    normalised = normalise_identifier(identifier, separator_insensitive=separator_insensitive)
    digest = hashlib.sha256(salt.encode() + b"\x00" + normalised.encode()).hexdigest()
    return f"sha256:{digest}"


def fingerprint_identifier(
    identifier: str, salt: str, *, separator_insensitive: bool = False
) -> int:
    """Return the 32-bit screening fingerprint of an identifier (scheme ``polymix64-v1``,
    :func:`~.fingerprints.keyed_fingerprint` of the bytes :func:`hash_identifier` hashes after
    the salt).

    A scanner computes the fingerprint of every word window of a buffer at once (one prefix sum
    and a finaliser in numpy) and sha256 only for the few windows whose fingerprint is listed.
    Like the hash, it never holds the identifier.
    """
    normalised = normalise_identifier(identifier, separator_insensitive=separator_insensitive)
    return keyed_fingerprint(normalised.encode(), salt)


def _check_hashable(key: str) -> None:
    """:raises ValueError: a hashed rule could never match ``key`` (it must start and end with
    a letter or digit, where a word window starts and ends)."""
    if not key:
        raise ValueError("is empty")
    raw = key.encode()
    if raw[0] not in ALNUM_BYTES or raw[-1] not in ALNUM_BYTES:
        raise ValueError("starts or ends with a character that is not a letter or digit")


class Rule(BaseModel):
    """One boundary rule. Its plaintext (when it has one) is never serialised into reports.

    ``rule_id`` names it in reports: the label when one is given; else, for a plaintext rule,
    its position (``deny.txt:12``, ``acme-pack#literal-3``), which says nothing about its text;
    for a hashed rule, a prefix of its (already public) hash.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: RuleKind = Field(description="literal, hashed, path_glob or schema_id.")
    origin: str = Field(description="Where the rule comes from (pack source, denylist file).")
    rule_id: str = Field(description="Label or hash prefix naming the rule in reports.")
    text: str | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="The plaintext identifier, glob or schema id (never reported).",
    )
    hash: str | None = Field(default=None, description="sha256:<hex> of a hashed rule.")
    salt: str = Field(default="", description="Salt of a hashed rule.")
    separator_insensitive: bool = Field(
        default=False,
        description="Ignore runs of spaces, tabs, line breaks, '-', '_', '.' and '/' (and "
        "CamelCase transitions) when comparing.",
    )
    whole_word: bool = Field(default=True, description="Match only at word boundaries.")
    max_tokens: int = Field(default=1, ge=1, description="Words a hashed identifier may span.")
    min_tokens: int = Field(
        default=1, ge=1, description="Fewest words a spelling of a hashed identifier spans."
    )
    fingerprint: int | None = Field(
        default=None, description="Screening fingerprint of a hashed rule, when published."
    )


class RuleSet(BaseModel):
    """The merged rules of one verification, in a stable order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: tuple[Rule, ...] = Field(default=(), description="Every rule, sorted and deduplicated.")

    @classmethod
    def merge(cls, groups: Iterable[Iterable[Rule]]) -> RuleSet:
        """Merge rule groups; a rule declared twice keeps the first origin (sorted by origin)."""
        seen: dict[tuple[object, ...], Rule] = {}
        flat = sorted(
            (rule for group in groups for rule in group),
            key=lambda r: (r.kind, r.origin, r.rule_id, r.hash or "", r.text or ""),
        )
        for rule in flat:
            key = (
                rule.kind,
                rule.hash,
                rule.salt,
                normalise_identifier(rule.text, separator_insensitive=rule.separator_insensitive)
                if rule.text is not None and rule.kind != "path_glob"
                else rule.text,
                rule.separator_insensitive,
                rule.whole_word,
            )
            seen.setdefault(key, rule)
        return cls(rules=tuple(seen.values()))

    def of_kind(self, *kinds: RuleKind) -> tuple[Rule, ...]:
        """Return the rules of the given kinds, in order."""
        return tuple(rule for rule in self.rules if rule.kind in kinds)

    def summary(self) -> dict[str, int]:
        """Return the number of rules of each kind."""
        counts = dict.fromkeys(("literal", "hashed", "path_glob", "schema_id"), 0)
        for rule in self.rules:
            counts[rule.kind] += 1
        return counts


def _literal_rule(
    text: str,
    origin: str,
    *,
    kind: RuleKind = "literal",
    label: str | None = None,
    separator_insensitive: bool = False,
    whole_word: bool = True,
) -> Rule:
    # A plaintext rule is never named by a hash of its text: with a public salt, anyone could
    # confirm a guess against a report. It is named by its label, else by its position.
    return Rule(
        kind=kind,
        origin=origin,
        rule_id=label or f"{origin}#{kind}",
        text=text.strip(),
        separator_insensitive=separator_insensitive,
        whole_word=whole_word,
    )


def rules_from_identifiers(contribution: ProprietaryIdentifiers) -> list[Rule]:
    """Turn one pack's :class:`ProprietaryIdentifiers` into rules whose origin is its source.

    :raises ConfigError: the contribution names an unknown hash scheme or a malformed hash.
    """
    origin = f"pack:{contribution.source}"
    if contribution.hashed and contribution.hash_scheme != HASH_SCHEME:
        raise ConfigError(
            f"{origin}: unknown hash scheme {contribution.hash_scheme!r}; this release reads "
            f"{HASH_SCHEME}"
        )
    source = contribution.source
    rules: list[Rule] = [
        _literal_rule(
            literal,
            origin,
            label=f"{source}#literal-{number}",
            separator_insensitive=contribution.separator_insensitive,
        )
        for number, literal in enumerate(contribution.literals, start=1)
        if literal.strip()
    ]
    for value in contribution.hashed:
        if not HASHED_IDENTIFIER_RE.match(value):
            raise ConfigError(f"{origin}: hashed identifier is not sha256:<64 hex digits>")
        rules.append(
            Rule(
                kind="hashed",
                origin=origin,
                rule_id=value[: len("sha256:") + _DISPLAY_HEX],
                hash=value,
                salt=contribution.salt,
                separator_insensitive=contribution.separator_insensitive,
                # A pack does not say how many words its identifiers span.
                max_tokens=PACK_MAX_TOKENS,
            )
        )
    rules.extend(
        _literal_rule(glob, origin, kind="path_glob", label=f"{source}#path-glob-{number}")
        for number, glob in enumerate(contribution.path_globs, start=1)
    )
    rules.extend(
        _literal_rule(schema_id, origin, kind="schema_id", label=f"{source}#schema-id-{number}")
        for number, schema_id in enumerate(contribution.schema_ids, start=1)
    )
    return rules


def _read_list(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", path=path) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} is not UTF-8 text", path=path) from None
    except OSError as error:
        raise ConfigError(f"cannot read {what}: {error.strerror}", path=path) from None


_COMMENT_RE: Final = re.compile(r"\s#")


def _entries(text: str) -> Iterable[tuple[int, str, str | None]]:
    # Split on "\n" only: a form feed or U+2028 inside a line must not shift line numbers.
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        # A label follows "#" after any whitespace: a tab before "# label" is a label too.
        found = _COMMENT_RE.search(raw)
        body, comment = (raw[: found.start()], raw[found.end() :]) if found else (raw, "")
        body = body.strip()
        if body and not body.startswith("#"):
            yield number, body, comment.strip() or None


_MAX_HASHED_TOKENS: Final = MAX_TOKENS_LIMIT
_GLOB_PIECES_RE: Final = re.compile(r"[*?\[\]!/\\]+")


def _hashable(body: str, path: Path, number: int) -> list[str]:
    """The identifiers a line of a denylist becomes in a hashed denylist.

    A plain identifier is itself; ``schema: https://host/a/b.json`` is the id without its
    scheme (``host/a/b.json``, matched as a token sequence); ``path: **/acme_pack/**`` is each
    literal piece of the glob (``acme_pack``), matched in content and in paths alike.
    """
    if body in ("path:", "schema:"):
        raise ConfigError("empty rule", path=path, line=number)
    if body.startswith("path:"):
        glob = body[len("path:") :].strip()
        pieces = [
            piece.strip(" -_.")
            for piece in _GLOB_PIECES_RE.split(glob)
            if len(piece.strip(" -_.")) >= 3
        ]
        found = []
        for piece in pieces:
            try:
                _check_hashable(normalise_identifier(piece))
            except ValueError:
                continue
            found.append(piece)
        if not found:
            raise ConfigError(
                "path glob has no literal piece a hashed rule could match (such as the "
                "'acme_pack' of '**/acme_pack/**'); keep it in a plaintext denylist or a pack's "
                "path_globs",
                path=path,
                line=number,
            )
        return found
    if body.startswith("schema:"):
        schema_id = body[len("schema:") :].strip()
        schema_id = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", schema_id).strip("/#")
        if not schema_id:
            raise ConfigError(
                "schema id is empty once its scheme is removed", path=path, line=number
            )
        return [schema_id]
    return [body]


def read_identifier_lines(
    path: Path, *, line_numbers: list[int] | None = None
) -> tuple[list[str], list[str | None]]:
    """Read an identifier list to hash, in the format of a plaintext denylist.

    :param line_numbers: when given, the line of each identifier returned is appended to it.

    ``identifier  # optional label`` a line; blank lines and lines starting with ``#`` are
    ignored; ``path:`` and ``schema:`` lines become the identifiers :func:`_hashable` says.
    Every identifier is checked here, so an error names its file and line (and never quotes
    the identifier).

    :raises ConfigError: the file is missing, not UTF-8, holds no identifier, or a line cannot
        be matched token-wise.
    """
    names: list[str] = []
    labels: list[str | None] = []
    for number, body, label in _entries(_read_list(path, "identifier list")):
        for name in _hashable(body, path, number):
            try:
                _check_hashable(normalise_identifier(name))
            except ValueError as error:
                raise ConfigError(f"identifier {error}", path=path, line=number) from None
            tokens = atom_count(name)
            if tokens > _MAX_HASHED_TOKENS:
                raise ConfigError(
                    f"identifier spans {tokens} words; a hashed rule spans at most "
                    f"{_MAX_HASHED_TOKENS}",
                    path=path,
                    line=number,
                )
            if not normalise_identifier(name, separator_insensitive=True):
                raise ConfigError(
                    "identifier is empty once separators are ignored", path=path, line=number
                )
            names.append(name)
            labels.append(label)
            if line_numbers is not None:
                line_numbers.append(number)
    if not names:
        raise ConfigError("identifier list holds no identifier", path=path)
    return names, labels


def read_plain_denylist(path: Path, *, separator_insensitive: bool = False) -> list[Rule]:
    """Read a plaintext denylist: one identifier a line, ``#`` comments, blank lines ignored.

    A line ``identifier  # label`` names the rule ``label`` in reports. A line starting with
    ``path:`` is a path glob, ``schema:`` a schema ``$id``.

    :raises ConfigError: the file is missing, not UTF-8, or holds no rule.
    """
    origin = f"denylist:{path.name}"
    rules: list[Rule] = []
    for number, entry, label in _entries(_read_list(path, "denylist")):
        body = entry
        kind: RuleKind = "literal"
        if body.startswith("path:"):
            body, kind = body[len("path:") :].strip(), "path_glob"
        elif body.startswith("schema:"):
            body, kind = body[len("schema:") :].strip(), "schema_id"
        if not body:
            raise ConfigError("empty rule", path=path, line=number)
        if kind == "literal" and not normalise_identifier(
            body, separator_insensitive=separator_insensitive
        ):
            # Only separators: the rule would match every separator of the tree.
            raise ConfigError("rule is empty once separators are ignored", path=path, line=number)
        rules.append(
            _literal_rule(
                body,
                origin,
                kind=kind,
                label=label or f"{path.name}:{number}",
                separator_insensitive=separator_insensitive and kind == "literal",
            )
        )
    if not rules:
        raise ConfigError("denylist holds no rule", path=path)
    return rules


class HashedDenylist(BaseModel):
    """A denylist that can be committed publicly: salted hashes of normalised identifiers.

    Hashes follow :func:`hash_identifier`; ``max_tokens`` is how many words (alphanumeric runs,
    split at CamelCase) a spelling of an identifier may span, so the scanner knows which word
    windows to hash. Nothing is published per word: a multi-word identifier is only ever
    confirmed whole.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    scheme: Literal["cmf-boundary-v1"] = Field(description="Hash scheme; only cmf-boundary-v1.")
    salt: str = Field(min_length=8, description="Salt prepended (with a NUL byte) to each hash.")
    separator_insensitive: bool = Field(
        default=False, description="Identifiers were hashed with separators removed."
    )
    max_tokens: int = Field(
        default=1,
        ge=1,
        le=MAX_TOKENS_LIMIT,
        description="Widest word window a scan hashes: the most words an identifier has, plus "
        "one for a spelling that splits a word (AcmeBank for acmebank).",
    )
    min_tokens: int = Field(
        default=1,
        ge=1,
        le=MAX_TOKENS_LIMIT,
        description="Narrowest word window a scan hashes: the fewest words (split at "
        "punctuation, not at CamelCase) an identifier has; 1 when separator-insensitive, "
        "since a spelling may then join its words.",
    )
    hashes: tuple[str, ...] = Field(description="sha256:<hex> of each identifier, sorted.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Optional hash → public label shown in reports."
    )
    fingerprint_scheme: Literal["polymix64-v1"] = Field(
        default=FINGERPRINT_SCHEME,
        description="How fingerprints are made: polymix64-v1 is a polynomial hash modulo 2**64 "
        "of the normalised identifier's UTF-8 bytes passed through a keyed non-linear "
        "finaliser (base and key from sha256 of a domain label and the salt), top 32 bits.",
    )
    fingerprints: dict[str, int] = Field(
        default_factory=dict,
        description="Hash → its 32-bit screening fingerprint (fingerprint_identifier), so the "
        "scanner computes sha256 only for the word windows whose fingerprint is listed. Empty: "
        "every distinct window is hashed with sha256. When present it must cover every hash.",
    )

    @field_validator("hashes")
    @classmethod
    def _hashes_are_sorted_sha256(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for number, item in enumerate(value, start=1):
            if not HASHED_IDENTIFIER_RE.match(item):
                raise ValueError(f"entry {number} is not sha256:<64 hex digits>")
        if list(value) != sorted(set(value)):
            raise ValueError("hashes must be sorted and unique")
        return value

    @model_validator(mode="after")
    def _fingerprints_cover_every_hash(self) -> HashedDenylist:
        if self.min_tokens > self.max_tokens:
            raise ValueError("min_tokens is above max_tokens")
        if self.min_tokens > 1 and self.separator_insensitive:
            raise ValueError("min_tokens must be 1 when separator-insensitive")
        if not self.fingerprints:
            return self
        limit = 1 << FINGERPRINT_BITS
        for key, value in self.fingerprints.items():
            if not 0 <= value < limit:
                raise ValueError(f"fingerprint of {key[:19]} is not a {FINGERPRINT_BITS}-bit int")
        missing = [h for h in self.hashes if h not in self.fingerprints]
        if missing:
            # A partial screen would skip the windows of the uncovered rules: refuse it.
            raise ValueError(f"fingerprints must cover every hash; {missing[0][:19]} has none")
        return self

    def rules(self, origin: str) -> list[Rule]:
        """Return one ``hashed`` rule per hash, named by its label or hash prefix."""
        return [
            Rule(
                kind="hashed",
                origin=origin,
                rule_id=self.labels.get(value) or value[: len("sha256:") + _DISPLAY_HEX],
                hash=value,
                salt=self.salt,
                separator_insensitive=self.separator_insensitive,
                max_tokens=self.max_tokens,
                min_tokens=self.min_tokens,
                fingerprint=self.fingerprints.get(value),
            )
            for value in self.hashes
        ]


def make_hashed_denylist(
    identifiers: Sequence[str],
    salt: str,
    *,
    separator_insensitive: bool = False,
    labels: Sequence[str | None] | None = None,
    max_tokens: int | None = None,
    fingerprints: bool = True,
) -> HashedDenylist:
    """Hash ``identifiers`` into a :class:`HashedDenylist`.

    :param labels: optional public label per identifier (same order), shown in reports.
    :param max_tokens: widest word window to hash when scanning; default: the most words an
        identifier has, plus one (so ``AcmeBank`` still meets ``acmebank``), at most
        :data:`MAX_TOKENS_LIMIT`.
    :param fingerprints: publish each hash's screening fingerprint
        (:func:`fingerprint_identifier`), which makes scanning many times cheaper.
    :raises ConfigError: an identifier is empty or could never be matched.
    """
    if labels is not None and len(labels) != len(identifiers):
        raise ConfigError("labels and identifiers differ in length")
    hashes: set[str] = set()
    label_map: dict[str, str] = {}
    prints: dict[str, int] = {}
    widest = 1
    narrowest = MAX_TOKENS_LIMIT
    for index, identifier in enumerate(identifiers):
        if not identifier.strip():
            raise ConfigError(f"identifier {index + 1} is empty")
        key = normalise_identifier(identifier, separator_insensitive=separator_insensitive)
        if not key:
            raise ConfigError(f"identifier {index + 1} is empty once separators are ignored")
        try:
            _check_hashable(key)
        except ValueError as error:
            raise ConfigError(f"identifier {index + 1} {error}") from None
        widest = max(widest, atom_count(identifier))
        # A strict spelling has at least the words punctuation makes (CamelCase only adds).
        narrowest = min(narrowest, atom_count(key))
        value = hash_identifier(identifier, salt, separator_insensitive=separator_insensitive)
        hashes.add(value)
        prints[value] = fingerprint_identifier(
            identifier, salt, separator_insensitive=separator_insensitive
        )
        label = labels[index] if labels is not None else None
        if label:
            label_map[value] = label
    try:
        return HashedDenylist(
            scheme=HASH_SCHEME,
            salt=salt,
            separator_insensitive=separator_insensitive,
            max_tokens=(maximum := max_tokens or min(widest + 1, MAX_TOKENS_LIMIT)),
            min_tokens=1 if separator_insensitive else min(narrowest, maximum),
            hashes=tuple(sorted(hashes)),
            labels=label_map,
            fingerprints=dict(sorted(prints.items())) if fingerprints else {},
        )
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid hashed denylist: {where}: {first['msg']}") from None


def denylist_digest(path: Path) -> str:
    """Return ``sha256:<hex>`` of a hashed denylist file's bytes (what ``--denylist-digest``
    pins).

    :raises ConfigError: the file cannot be read.
    """
    try:
        return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise ConfigError(f"cannot read hashed denylist: {error.strerror}", path=path) from None


def check_denylist_digests(paths: Sequence[Path], pinned: Sequence[str]) -> None:
    """Refuse hashed denylists that differ from the digests CI pinned.

    Every file in ``paths`` must have its digest among ``pinned``, and every pinned digest must
    belong to one of them, so an edited, replaced or missing file is noticed.

    :raises ConfigError: a pinned digest is malformed, a file's digest is not pinned, or a
        pinned digest matches no file read.
    """
    if not pinned:
        return
    for value in pinned:
        if not HASHED_IDENTIFIER_RE.match(value.lower()):
            raise ConfigError(f"--denylist-digest {value[:80]!r} is not sha256:<64 hex digits>")
    wanted = {value.lower() for value in pinned}
    seen: set[str] = set()
    for path in paths:
        digest = denylist_digest(path)
        if digest not in wanted:
            raise ConfigError(
                f"hashed denylist digest {digest} is not a pinned --denylist-digest: the file "
                "was edited or replaced",
                path=path,
            )
        seen.add(digest)
    missing = sorted(wanted - seen)
    if missing:
        raise ConfigError(
            f"pinned --denylist-digest {missing[0]} matches no hashed denylist that was read"
        )


def load_hashed_denylist(path: Path) -> HashedDenylist:
    """Read and validate a hashed denylist file.

    :raises DataFormatError: the file is missing or not JSON.
    :raises ConfigError: the JSON does not describe a valid hashed denylist.
    """
    import orjson  # noqa: PLC0415

    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise DataFormatError("hashed denylist not found", path=path) from None
    except OSError as error:
        raise DataFormatError(
            f"hashed denylist cannot be read: {error.strerror or type(error).__name__}", path=path
        ) from None
    except orjson.JSONDecodeError as error:
        raise DataFormatError(f"hashed denylist is not JSON: {error}", path=path) from None
    try:
        denylist = HashedDenylist.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise ConfigError(_quote_free(first["msg"]), path=path, field=where) from None
    if not denylist.hashes:
        # An empty list would add no rule and let the scan pass in silence.
        raise ConfigError("hashed denylist holds no hash", path=path, field="hashes")
    return denylist


_QUOTED_RE: Final = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def _quote_free(message: str) -> str:
    """A validation message without the quoted input it may echo (part of an identifier, a
    salt, a wrongly pasted plaintext): ``'acme-ba…' is not sha256`` → ``a value is not sha256``.
    """
    return _QUOTED_RE.sub("a value", message)
