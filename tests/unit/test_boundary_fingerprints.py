"""Screening fingerprints: the numpy token screen agrees with the Python definition."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.boundary import (
    Matcher,
    engines,
    fingerprint_identifier,
    fingerprints,
    make_hashed_denylist,
)
from customer_model_factory.boundary.fingerprints import (
    ScreenGroup,
    TokenScreen,
    fingerprint_base,
    poly_fingerprint,
)

SALT = "salt-fixed-for-properties"
# Bytes a translated buffer can hold: token bytes (lower-case ASCII, digits, _, non-ASCII) and
# the space every other byte became.
TRANSLATED = st.lists(
    st.sampled_from([b" ", b"a", b"b", b"c", b"_", b"1", b"\xc3", b"\xa9", b"ab", b"  "]),
    max_size=120,
).map(b"".join)


def _expected(translated: bytes, listed: set[int], separator_insensitive: bool) -> set[bytes]:
    """What the screen must return, token by token in Python."""
    base = fingerprint_base(SALT)
    out = set()
    for token in set(translated.split()):
        if not token.isascii():
            out.add(token)
            continue
        normalised = token.replace(b"_", b"") if separator_insensitive else token
        # A token of underscores alone is empty once normalised: no rule can name it.
        if normalised and poly_fingerprint(normalised, base) in listed:
            out.add(token)
    return out


def test_poly_fingerprint_is_the_positional_sum() -> None:
    base = fingerprint_base(SALT)
    assert base % 2 == 1
    data = b"acme bank"
    total = sum(byte * pow(base, i, 2**64) for i, byte in enumerate(data)) % 2**64
    assert poly_fingerprint(data, base) == total >> 32
    assert poly_fingerprint(b"", base) == 0
    assert fingerprint_identifier("ACME Bank", SALT) == poly_fingerprint(data, base)


@pytest.mark.parametrize("separator_insensitive", [False, True])
def test_screen_returns_exactly_the_listed_and_non_ascii_tokens(
    separator_insensitive: bool, monkeypatch
) -> None:
    @settings(max_examples=300, deadline=None)
    @given(TRANSLATED, st.integers(min_value=1, max_value=12), st.booleans(), st.data())
    def check(translated: bytes, slice_size: int, tight: bool, data: st.DataObject) -> None:
        # Small slices: cutting at spaces runs; a tight capacity makes some slices over-long.
        monkeypatch.setattr(fingerprints, "_SLICE", slice_size)
        monkeypatch.setattr(fingerprints, "_CAPACITY", slice_size + 4 if tight else 1000)
        base = fingerprint_base(SALT)
        tokens = sorted(set(translated.split()))
        chosen = data.draw(st.lists(st.sampled_from(tokens), max_size=3)) if tokens else []
        listed = {
            poly_fingerprint(t.replace(b"_", b"") if separator_insensitive else t, base)
            for t in chosen
        } | {data.draw(st.integers(min_value=0, max_value=2**32 - 1))}
        screen = TokenScreen([ScreenGroup(base, separator_insensitive, frozenset(listed))])
        found = screen.candidates(translated)
        expected = _expected(translated, listed, separator_insensitive)
        if tight:
            # The tokens of an over-long slice all go on to sha256: never fewer, never others.
            assert expected <= found <= set(translated.split())
        else:
            assert found == expected

    check()


def test_screen_reports_the_original_spelling_of_a_separator_insensitive_hit() -> None:
    base = fingerprint_base(SALT)
    listed = frozenset({poly_fingerprint(b"acmebank", base)})
    screen = TokenScreen([ScreenGroup(base, True, listed)])
    translated = b"x __acme_bank_ acmebank a_c_m_e_b_a_n_k acme bank"
    assert screen.candidates(translated) == {b"__acme_bank_", b"acmebank", b"a_c_m_e_b_a_n_k"}
    sensitive = TokenScreen([ScreenGroup(base, False, listed)])
    assert sensitive.candidates(translated) == {b"acmebank"}


def test_two_salts_screen_each_with_its_own_base() -> None:
    first, second = _word(), _word()
    rules = [
        *make_hashed_denylist([first], "salt-one-1").rules("a"),
        *make_hashed_denylist([second], "salt-two-2").rules("b"),
    ]
    matcher = Matcher(rules, "re")
    assert matcher._vector is not None
    text = f"{first} and {second} but not {first}{second}\n".encode()
    assert sorted(m.rule for m in matcher.scan(text)) == [0, 1]


def _word(n: int = 8) -> str:
    return "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(n))


def test_matcher_without_numpy_finds_the_same_leaks(monkeypatch) -> None:
    word, lead, tail = _word(), _word(), _word()
    denylist = make_hashed_denylist([word, f"{lead} {tail}", f"Ÿ{word}É"], "salt-" + _word())
    text = (
        f"{word} {word.upper()}_x {lead}.{tail}\nŸ{word.upper()}É ÿ{word}é\n{lead} {tail}\n"
    ).encode()
    with_numpy = Matcher(denylist.rules("h"), "re")
    assert with_numpy._vector is not None

    def no_numpy(*_args: object) -> TokenScreen:
        raise ImportError("numpy")

    monkeypatch.setattr(engines, "TokenScreen", no_numpy)
    without = Matcher(denylist.rules("h"), "re")
    assert without._vector is None
    found = with_numpy.scan(text)
    assert found == without.scan(text)
    # "lead.tail" is not "lead tail" while separators count; "WORD_x" is another token.
    assert [(m.line, m.col) for m in found] == [(1, 1), (2, 1), (2, 12), (3, 1)]
