"""Boundary rules: what must never appear in the public tree, and where each rule came from.

Rules come from four sources and are merged into one :class:`RuleSet`, each rule recording its
``origin``:

* identifiers declared by installed packs (the ``cmf_proprietary_identifiers`` hook), as
  plaintext ``literals`` or salted ``hashed`` entries;
* a plaintext denylist file kept outside the public tree (:func:`read_plain_denylist`);
* a hashed denylist committed in the public tree (:class:`HashedDenylist`), so the public repo can
  enforce a rule without ever containing the identifier;
* path globs (pack module paths, private schema files) and schema ``$id`` values.

Identifiers are compared after :func:`normalise_identifier` under the fixed hash scheme
``cmf-boundary-v1``; a rule is shown in reports by its label or a hash prefix, never by its text.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
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
    fingerprint_base,
    poly_fingerprint,
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
    "fingerprint_base",
    "fingerprint_identifier",
    "hash_identifier",
    "identifier_tokens",
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

SEPARATORS: Final = " \t-_."
"""Characters a separator-insensitive rule ignores (``acme_bank`` == ``acme-bank`` == ``AcmeBank``).
"""

_DISPLAY_HEX: Final = 12
# A token is a run of word characters; identifiers join tokens with these single characters.
_ATOM_RE: Final = re.compile(r"[^\W]+|[\s.\-@/:]", re.UNICODE)
_JOINERS: Final = frozenset(" \t.-@/:")

RuleKind = Literal["literal", "hashed", "path_glob", "schema_id"]


def normalise_identifier(identifier: str, *, separator_insensitive: bool = False) -> str:
    """Return the form of ``identifier`` that rules compare and hash (scheme ``cmf-boundary-v1``).

    NFKC-normalised, case-folded and stripped; with ``separator_insensitive`` the characters of
    :data:`SEPARATORS` are removed too.
    """
    normalised = unicodedata.normalize("NFKC", identifier).casefold().strip()
    if separator_insensitive:
        normalised = "".join(ch for ch in normalised if ch not in SEPARATORS)
    return normalised


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
    """Return the 32-bit screening fingerprint of an identifier (scheme ``poly64-v1``): the top
    32 bits of a polynomial hash, modulo 2**64, of the normalised identifier (the bytes
    :func:`hash_identifier` hashes after the salt), whose base is :func:`fingerprint_base` of
    the salt.

    A scanner computes the fingerprint of every token of a buffer at once (one prefix sum in
    numpy) and sha256 only for the few tokens whose fingerprint is listed. Like the hash, it
    never holds the identifier; it lets a dictionary attack discard a wrong guess before
    sha256, which a salted hash of a guessable name never resisted anyway.
    """
    normalised = normalise_identifier(identifier, separator_insensitive=separator_insensitive)
    return poly_fingerprint(normalised.encode(), fingerprint_base(salt))


def identifier_tokens(identifier: str) -> list[str]:
    """Split an identifier into its word tokens (``acme-bank.eu`` → ``acme``, ``bank``, ``eu``).

    :raises ValueError: the identifier holds a character that is neither a word character nor a
        single joiner (space, tab, ``.``, ``-``, ``@``, ``/``, ``:``) between two tokens, so
        token-wise matching could never find it.
    """
    text = unicodedata.normalize("NFKC", identifier).strip()
    pieces = _ATOM_RE.findall(text)
    if "".join(pieces) != text or not pieces:
        raise ValueError("contains a character that is neither a word character nor a joiner")
    tokens = [piece for piece in pieces if piece not in _JOINERS]
    for first, second in itertools.pairwise(pieces):
        if first in _JOINERS and second in _JOINERS:
            raise ValueError("has two joiners in a row")
    if pieces[0] in _JOINERS or pieces[-1] in _JOINERS:
        raise ValueError("starts or ends with a joiner")
    return tokens


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
        default=False, description="Ignore spaces, tabs, '-', '_' and '.' when comparing."
    )
    whole_word: bool = Field(default=True, description="Match only at word boundaries.")
    max_tokens: int = Field(default=1, ge=1, description="Tokens a hashed identifier may span.")
    lead: str | None = Field(
        default=None, description="Hash of the first token of a multi-token hashed identifier."
    )
    fingerprint: int | None = Field(
        default=None, description="Screening fingerprint of a hashed rule, when published."
    )
    lead_fingerprint: int | None = Field(
        default=None, description="Screening fingerprint of the lead token, when published."
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
                # A pack does not say how many tokens its identifiers span; three covers
                # module paths and "Org Unit Name" style names.
                max_tokens=3,
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


_MAX_HASHED_TOKENS: Final = 8
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
                identifier_tokens(piece)
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


def read_identifier_lines(path: Path) -> tuple[list[str], list[str | None]]:
    """Read an identifier list to hash, in the format of a plaintext denylist.

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
                tokens = identifier_tokens(name)
            except ValueError as error:
                raise ConfigError(f"identifier {error}", path=path, line=number) from None
            if len(tokens) > _MAX_HASHED_TOKENS:
                raise ConfigError(
                    f"identifier spans {len(tokens)} word tokens; a hashed rule spans at most "
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

    Hashes follow :func:`hash_identifier`; ``max_tokens`` is how many word tokens the longest
    identifier spans, so the scanner knows which token sequences to hash.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    scheme: Literal["cmf-boundary-v1"] = Field(description="Hash scheme; only cmf-boundary-v1.")
    salt: str = Field(min_length=8, description="Salt prepended (with a NUL byte) to each hash.")
    separator_insensitive: bool = Field(
        default=False, description="Identifiers were hashed with separators removed."
    )
    max_tokens: int = Field(
        default=1, ge=1, le=8, description="Longest identifier, in word tokens."
    )
    hashes: tuple[str, ...] = Field(description="sha256:<hex> of each identifier, sorted.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Optional hash → public label shown in reports."
    )
    leads: dict[str, str] = Field(
        default_factory=dict,
        description="Hash of a multi-token identifier → hash of its first token, so the scanner "
        "hashes token sequences only after their first token occurred.",
    )
    fingerprint_scheme: Literal["poly64-v1"] = Field(
        default=FINGERPRINT_SCHEME,
        description="How fingerprints are made: poly64-v1 is the top 32 bits of the polynomial "
        "hash, modulo 2**64, of the normalised identifier's UTF-8 bytes, whose base is the first "
        "8 bytes (big-endian, lowest bit set) of sha256(salt).",
    )
    fingerprints: dict[str, int] = Field(
        default_factory=dict,
        description="Hash (of an identifier or a lead) → its 32-bit screening fingerprint "
        "(fingerprint_identifier), so the scanner computes sha256 only for the tokens whose "
        "fingerprint is listed. Empty: every distinct token is hashed with sha256. When present "
        "it must cover every hash and every lead.",
    )

    @field_validator("hashes")
    @classmethod
    def _hashes_are_sorted_sha256(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not HASHED_IDENTIFIER_RE.match(item):
                raise ValueError(f"{item[:20]!r} is not sha256:<64 hex digits>")
        if list(value) != sorted(set(value)):
            raise ValueError("hashes must be sorted and unique")
        return value

    @model_validator(mode="after")
    def _fingerprints_cover_every_hash(self) -> HashedDenylist:
        if not self.fingerprints:
            return self
        limit = 1 << FINGERPRINT_BITS
        for key, value in self.fingerprints.items():
            if not 0 <= value < limit:
                raise ValueError(f"fingerprint of {key[:20]!r} is not a {FINGERPRINT_BITS}-bit int")
        missing = [h for h in (*self.hashes, *self.leads.values()) if h not in self.fingerprints]
        if missing:
            # A partial screen would skip the tokens of the uncovered rules: refuse it.
            raise ValueError(
                f"fingerprints must cover every hash and lead; {missing[0][:20]!r} has none"
            )
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
                lead=self.leads.get(value),
                fingerprint=self.fingerprints.get(value),
                lead_fingerprint=(
                    self.fingerprints.get(self.leads[value]) if value in self.leads else None
                ),
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
    :param max_tokens: token sequences to hash when scanning; default: the longest identifier
        (at least 2 when separator-insensitive, so ``acme bank`` still meets ``acmebank``).
    :param fingerprints: publish each hash's screening fingerprint
        (:func:`fingerprint_identifier`), which makes scanning several times cheaper.
    :raises ConfigError: an identifier is empty or cannot be matched token-wise.
    """
    if labels is not None and len(labels) != len(identifiers):
        raise ConfigError("labels and identifiers differ in length")
    hashes: set[str] = set()
    label_map: dict[str, str] = {}
    leads: dict[str, str] = {}
    prints: dict[str, int] = {}
    longest = 1
    for index, identifier in enumerate(identifiers):
        if not identifier.strip():
            raise ConfigError(f"identifier {index + 1} is empty")
        if not normalise_identifier(identifier, separator_insensitive=separator_insensitive):
            raise ConfigError(f"identifier {index + 1} is empty once separators are ignored")
        try:
            tokens = identifier_tokens(identifier)
        except ValueError as error:
            raise ConfigError(f"identifier {index + 1} {error}") from None
        longest = max(longest, len(tokens))
        value = hash_identifier(identifier, salt, separator_insensitive=separator_insensitive)
        hashes.add(value)
        prints[value] = fingerprint_identifier(
            identifier, salt, separator_insensitive=separator_insensitive
        )
        if len(tokens) > 1:
            leads[value] = hash_identifier(
                tokens[0], salt, separator_insensitive=separator_insensitive
            )
            prints[leads[value]] = fingerprint_identifier(
                tokens[0], salt, separator_insensitive=separator_insensitive
            )
        label = labels[index] if labels is not None else None
        if label:
            label_map[value] = label
    if separator_insensitive:
        longest = max(longest, 2)
    try:
        return HashedDenylist(
            scheme=HASH_SCHEME,
            salt=salt,
            separator_insensitive=separator_insensitive,
            max_tokens=max_tokens or longest,
            hashes=tuple(sorted(hashes)),
            labels=label_map,
            leads=leads,
            fingerprints=dict(sorted(prints.items())) if fingerprints else {},
        )
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid hashed denylist: {where}: {first['msg']}") from None


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
