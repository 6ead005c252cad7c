"""The boundary verifier: prove that no proprietary identifier leaked into the public tree.

:func:`verify_boundary` is the one call behind ``cmf boundary verify``: it takes a
:class:`BoundaryRequest` (every option) and the plugin manager, and returns a
:class:`BoundaryReport`. Underneath, rules (:mod:`.rules`) come from installed packs, plaintext
and hashed denylists, path globs and schema ids; :func:`verify` scans a scope (:mod:`.scopes`:
files, git blobs and git metadata) with a compiled engine (:mod:`.engines`), decoding and
expanding what is not plain text (:mod:`.content`), applies the allowlist (:mod:`.allowlist`)
and returns a redacted :class:`BoundaryReport` that :mod:`.reporters` renders as text, JSON or
SARIF 2.1.0.
"""

from __future__ import annotations

from customer_model_factory.boundary.allowlist import (
    DEFAULT_ALLOWLIST,
    AllowEntry,
    Allowlist,
    load_allowlist,
)
from customer_model_factory.boundary.api import (
    BoundaryRequest,
    hash_denylist_file,
    verify_boundary,
)
from customer_model_factory.boundary.engines import ENGINES, Matcher, available_engines
from customer_model_factory.boundary.rules import (
    DEFAULT_HASHED_DENYLIST,
    HASH_SCHEME,
    HashedDenylist,
    Rule,
    RuleSet,
    fingerprint_identifier,
    hash_identifier,
    load_hashed_denylist,
    make_hashed_denylist,
    normalise_identifier,
    read_plain_denylist,
    rules_from_identifiers,
)
from customer_model_factory.boundary.scanner import (
    BoundaryReport,
    Leak,
    VerifyOptions,
    gather_rules,
    verify,
)
from customer_model_factory.boundary.scopes import PushUpdate, Scope, parse_push_lines

__all__ = [
    "DEFAULT_ALLOWLIST",
    "DEFAULT_HASHED_DENYLIST",
    "ENGINES",
    "HASH_SCHEME",
    "AllowEntry",
    "Allowlist",
    "BoundaryReport",
    "BoundaryRequest",
    "HashedDenylist",
    "Leak",
    "Matcher",
    "PushUpdate",
    "Rule",
    "RuleSet",
    "Scope",
    "VerifyOptions",
    "available_engines",
    "fingerprint_identifier",
    "gather_rules",
    "hash_denylist_file",
    "hash_identifier",
    "load_allowlist",
    "load_hashed_denylist",
    "make_hashed_denylist",
    "normalise_identifier",
    "parse_push_lines",
    "read_plain_denylist",
    "rules_from_identifiers",
    "verify",
    "verify_boundary",
]
