"""The boundary verifier: prove that no proprietary identifier leaked into the public tree.

Rules (:mod:`.rules`) come from installed packs, plaintext and hashed denylists, path globs and
schema ids; :func:`verify` scans a git scope (:mod:`.scopes`) with a compiled engine
(:mod:`.engines`), applies the allowlist (:mod:`.allowlist`) and returns a redacted
:class:`BoundaryReport` that :mod:`.reporters` renders as text, JSON or SARIF 2.1.0.
"""

from __future__ import annotations

from customer_model_factory.boundary.allowlist import (
    DEFAULT_ALLOWLIST,
    AllowEntry,
    Allowlist,
    load_allowlist,
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
from customer_model_factory.boundary.scopes import Scope

__all__ = [
    "DEFAULT_ALLOWLIST",
    "DEFAULT_HASHED_DENYLIST",
    "ENGINES",
    "HASH_SCHEME",
    "AllowEntry",
    "Allowlist",
    "BoundaryReport",
    "HashedDenylist",
    "Leak",
    "Matcher",
    "Rule",
    "RuleSet",
    "Scope",
    "VerifyOptions",
    "available_engines",
    "fingerprint_identifier",
    "gather_rules",
    "hash_identifier",
    "load_allowlist",
    "load_hashed_denylist",
    "make_hashed_denylist",
    "normalise_identifier",
    "read_plain_denylist",
    "rules_from_identifiers",
    "verify",
]
