"""Screening fingerprints: the numpy window screen agrees with the Python definition."""

from __future__ import annotations

import hashlib
import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.boundary import (
    Matcher,
    fingerprint_identifier,
    fingerprints,
    make_hashed_denylist,
)
from customer_model_factory.boundary.fingerprints import (
    ScreenGroup,
    WindowScreen,
    fingerprint_base,
    keyed_fingerprint,
)
from customer_model_factory.boundary.normalise import (
    ALNUM_BYTES,
    FOLD_TABLE,
    SEPARATOR_BYTES,
    is_boundary,
)

SALT = "salt-fixed-for-properties"
VIEWS = st.lists(
    st.sampled_from(
        [b" ", b"a", b"B", b"c", b"_", b"1", b"\xc3\xa9", b"-", b".", b"/", b"\n", b"@", b"aB"]
    ),
    max_size=80,
).map(b"".join)


def _windows(view: bytes, max_atoms: int) -> set[bytes]:
    """Every word window of a view, found character by character in Python."""
    starts = [i for i in range(len(view)) if view[i] in ALNUM_BYTES and is_boundary(view, i)]
    ends = [
        i for i in range(1, len(view) + 1) if view[i - 1] in ALNUM_BYTES and is_boundary(view, i)
    ]
    assert len(starts) == len(ends)
    return {
        view[starts[first] : ends[first + width - 1]]
        for first in range(len(starts))
        for width in range(1, max_atoms + 1)
        if first + width - 1 < len(ends)
    }


def _key(window: bytes, separator_insensitive: bool) -> bytes:
    return window.translate(FOLD_TABLE, SEPARATOR_BYTES if separator_insensitive else b"")


def test_keyed_fingerprint_follows_its_definition() -> None:
    base = fingerprint_base(SALT)
    assert base % 2 == 1
    digest = hashlib.sha256(b"cmf-boundary-fingerprint\x00" + SALT.encode()).digest()
    assert base == int.from_bytes(digest[:8], "big") | 1
    data = b"acme bank"
    h = sum(byte * pow(base, i, 2**64) for i, byte in enumerate(data)) % 2**64
    x = (h * 0xBF58476D1CE4E5B9) % 2**64
    x ^= x >> 32
    x = (x * 0x94D049BB133111EB) % 2**64
    assert keyed_fingerprint(data, SALT) == x >> 32
    assert fingerprint_identifier("ACME Bank", SALT) == keyed_fingerprint(data, SALT)
    assert fingerprint_identifier("ACME Bank", "othersalt") != keyed_fingerprint(data, SALT)


def test_fingerprint_of_a_concatenation_is_not_the_sum_of_its_halves() -> None:
    # The meet-in-the-middle search on poly64-v1 used h(P + S) = h(P) + base^len(P) * h(S):
    # both halves searched apart, then matched on the top bits. Under polymix64-v1 that sum
    # predicts nothing about the published fingerprint.
    base = fingerprint_base(SALT)

    def poly(data: bytes) -> int:
        return sum(b * pow(base, i, 2**64) for i, b in enumerate(data)) % 2**64

    agree = 0
    for number in range(500):
        prefix, suffix = f"acme{number}".encode(), f"_{number * 7919:x}".encode()
        combined = (poly(prefix) + pow(base, len(prefix), 2**64) * poly(suffix)) % 2**64
        assert combined == poly(prefix + suffix)  # the polynomial part is still additive
        agree += keyed_fingerprint(prefix + suffix, SALT) >> 16 == combined >> 48
    assert agree <= 3  # chance agreement of 16 bits: 500 / 65536


@pytest.mark.parametrize("separator_insensitive", [False, True])
def test_screen_returns_exactly_the_windows_whose_fingerprint_is_listed(
    separator_insensitive: bool, monkeypatch
) -> None:
    @settings(max_examples=300, deadline=None)
    @given(VIEWS, st.integers(min_value=4, max_value=30), st.integers(1, 4), st.data())
    def check(view: bytes, slice_size: int, max_atoms: int, data: st.DataObject) -> None:
        monkeypatch.setattr(fingerprints, "_SLICE", slice_size)
        monkeypatch.setattr(fingerprints, "_OVERLAP", 200)
        monkeypatch.setattr(fingerprints, "_CAPACITY", slice_size + 200)
        windows = sorted(_windows(view, max_atoms))
        chosen = data.draw(st.lists(st.sampled_from(windows), max_size=3)) if windows else []
        listed = {keyed_fingerprint(_key(w, separator_insensitive), SALT) for w in chosen}
        listed.add(data.draw(st.integers(min_value=0, max_value=2**32 - 1)))
        screen = WindowScreen(
            [ScreenGroup(SALT, separator_insensitive, max_atoms, frozenset(listed))]
        )
        expected = {
            w for w in windows if keyed_fingerprint(_key(w, separator_insensitive), SALT) in listed
        }
        assert screen.candidates(view) == [expected]

    check()


def test_screen_reports_each_spelling_of_a_separator_insensitive_hit() -> None:
    listed = frozenset({keyed_fingerprint(b"acmebank", SALT)})
    screen = WindowScreen([ScreenGroup(SALT, True, 3, listed)])
    view = b"x __acme_bank_ AcmeBank a-c-m-e-b-a-n-k acme\nbank acme.bank"
    assert screen.candidates(view) == [{b"acme_bank", b"AcmeBank", b"acme\nbank", b"acme.bank"}]
    # Case-insensitive, CamelCase joins nothing: only AcmeBank spells acmebank strictly.
    sensitive = WindowScreen([ScreenGroup(SALT, False, 3, listed)])
    assert sensitive.candidates(view) == [{b"AcmeBank"}]


def _word(n: int = 8) -> str:
    return "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(n))


def test_two_salts_screen_each_with_its_own_keys() -> None:
    first, second = _word(), _word()
    rules = [
        *make_hashed_denylist([first], "salt-one-1").rules("a"),
        *make_hashed_denylist([second], "salt-two-2").rules("b"),
    ]
    matcher = Matcher(rules, "re")
    assert matcher._screen is not None
    text = f"{first} and {second} but not {first}{second}\n".encode()
    assert sorted(m.rule for m in matcher.scan(text)) == [0, 1]
