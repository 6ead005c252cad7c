"""Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) and sha256 content hashes.

Every hash the factory records is ``sha256`` over the canonical form of a JSON value, so anyone can
recompute it with any RFC 8785 implementation. Values without a canonical form are rejected
instead of being coerced: ``NaN`` and ``Infinity`` (not JSON), mapping keys that are not strings
(JSON objects have string keys only), and types JSON does not know.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any, Final

import orjson
import rfc8785

from customer_model_factory.errors import CanonicalizationError

__all__ = [
    "HASH_PREFIX",
    "canonical_json",
    "content_hash",
    "sha256_bytes",
    "sha256_file",
]

HASH_PREFIX: Final = "sha256:"
_CHUNK: Final = 1 << 20
_SAFE_INT: Final = 2**53 - 1
_BMP_MAX: Final = "\uffff"


class _Plain:
    """Whether a prepared value can take the fast path (see :func:`canonical_json`)."""

    __slots__ = ("ok",)

    def __init__(self) -> None:
        self.ok = True


def _prepare(value: Any, path: str, plain: _Plain | None = None) -> Any:
    """Return ``value`` ready for RFC 8785, rejecting what has no canonical form, naming where.

    JSON numbers are IEEE doubles: an integer beyond 2**53 is accepted when its canonical text
    reads back as the same integer (so canonical output round-trips), and rejected when writing it
    would silently change its value.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if -_SAFE_INT <= value <= _SAFE_INT:
            return value
        if plain is not None:
            plain.ok = False
        try:
            as_float = float(value)
        except OverflowError:
            as_float = math.inf
        if not math.isinf(as_float):
            text = rfc8785.dumps(as_float).decode()
            read_back = int(text) if text.lstrip("-").isdigit() else int(as_float)
            if read_back == value:
                return as_float
        raise CanonicalizationError(
            f"{path}: {value} is not exactly representable as a JSON number"
        )
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise CanonicalizationError(f"{path}: {value!r} has no JSON representation")
        if plain is not None:
            plain.ok = False
        return value
    if isinstance(value, Mapping):
        prepared = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalizationError(
                    f"{path}: object key {key!r} is a {type(key).__name__}, JSON keys are strings"
                )
            if plain is not None and not key.isascii() and max(key) > _BMP_MAX:
                plain.ok = False
            prepared[key] = _prepare(item, f"{path}.{key}", plain)
        return prepared
    if isinstance(value, list | tuple):
        return [_prepare(item, f"{path}[{index}]", plain) for index, item in enumerate(value)]
    raise CanonicalizationError(f"{path}: a {type(value).__name__} is not a JSON value")


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 canonical JSON bytes of ``value``.

    Object keys are sorted by their UTF-16 code units, numbers use the ECMAScript shortest form,
    strings are minimally escaped, and no whitespace is emitted.

    :param value: a JSON value made of ``dict``, ``list``/``tuple``, ``str``, ``int``, finite
        ``float``, ``bool`` and ``None``.
    :returns: the canonical UTF-8 bytes.
    :raises CanonicalizationError: for NaN, Infinity, a non-string key or a non-JSON type; the
        message names the path to the offending value (``$.metrics.f1``).
    """
    plain = _Plain()
    prepared = _prepare(value, "$", plain)
    if plain.ok:
        # Without numbers other than safe integers, and with every key in the Basic Multilingual
        # Plane (where UTF-16 and code-point order agree), RFC 8785 output is exactly orjson's
        # compact output with sorted keys; orjson writes it in C. Anything else (or a string
        # orjson refuses, such as a lone surrogate) takes the reference implementation.
        try:
            return orjson.dumps(prepared, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass
    try:
        return rfc8785.dumps(prepared)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as error:
        raise CanonicalizationError(f"$: {error}") from error


def sha256_bytes(data: bytes) -> str:
    """Return ``"sha256:<hex>"`` of ``data``."""
    return HASH_PREFIX + hashlib.sha256(data).hexdigest()


def content_hash(value: Any) -> str:
    """Return ``"sha256:<hex>"`` of the canonical JSON of ``value``.

    :raises CanonicalizationError: when ``value`` has no canonical form.
    """
    return sha256_bytes(canonical_json(value))


def sha256_file(path: Any) -> str:
    """Return ``"sha256:<hex>"`` of a file's exact bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return HASH_PREFIX + digest.hexdigest()
