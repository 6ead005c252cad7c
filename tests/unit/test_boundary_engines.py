"""Matching engines: every engine finds exactly the same matches, with positions."""

from __future__ import annotations

import re
import secrets

import pytest

from customer_model_factory.boundary import ENGINES, Matcher, make_hashed_denylist
from customer_model_factory.boundary.engines import available_engines, resolve_engine
from customer_model_factory.boundary.rules import Rule, _literal_rule


def _word(n: int = 7) -> str:
    return "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(n))


ENGINE_PARAMS = [name for name in ENGINES if name in available_engines()]


def _found(matcher: Matcher, text: str) -> list[tuple[int, int, int, str]]:
    return [(m.rule, m.line, m.col, m.text) for m in matcher.scan(text.encode())]


@pytest.mark.parametrize("engine", ENGINE_PARAMS)
def test_literal_is_case_insensitive_and_whole_word(engine: str) -> None:
    word = _word()
    matcher = Matcher([_literal_rule(word, "t")], engine)
    # Word boundaries are alphanumeric transitions: '_' separates, CamelCase separates.
    text = f"a {word.upper()} b\n{word}x x{word} _{word}\n  ({word}).\ntest_{word}V2 {word}2\n"
    assert _found(matcher, text) == [
        (0, 1, 3, word.upper()),
        (0, 2, 2 * len(word) + 6, word),
        (0, 3, 4, word),
        (0, 4, 6, word),
    ]


@pytest.mark.parametrize("engine", ENGINE_PARAMS)
def test_identifiers_with_dots_dashes_and_at(engine: str) -> None:
    code = f"{_word(3)}-{secrets.randbelow(900) + 100}.{_word(2)}"
    mail = f"{_word()}@{_word()}.example"
    matcher = Matcher([_literal_rule(code, "t"), _literal_rule(mail, "t")], engine)
    text = f'id="{code.upper()}" to: <{mail}>\nnot {code}x nor x{mail}\n'
    found = _found(matcher, text)
    assert [(r, line) for r, line, _c, _t in found] == [(0, 1), (1, 1)]


@pytest.mark.parametrize("engine", ENGINE_PARAMS)
def test_separator_insensitive_spellings_match_one_rule(engine: str) -> None:
    a, b = _word(4), _word(5)
    rule = _literal_rule(f"{a}_{b}", "t", separator_insensitive=True)
    matcher = Matcher([rule], engine)
    spellings = [f"{a}_{b}", f"{a}-{b}", f"{a}.{b}", f"{a.capitalize()}{b.capitalize()}", f"{a}{b}"]
    text = "\n".join(spellings) + f"\n{a}__{b}\n{a}/ {b}\n{a}{b}z\n"
    assert [line for _r, line, _c, _t in _found(matcher, text)] == [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("engine", ENGINE_PARAMS)
def test_non_ascii_text_and_identifiers(engine: str) -> None:
    word = _word()
    rule = _literal_rule(f"ÿ{word}é", "t")
    matcher = Matcher([rule, _literal_rule(word + "q", "t")], engine)
    text = f"é café {word}q\nŸ{word.upper()}É\n"
    found = _found(matcher, text)
    assert (1, 1, 8, f"{word}q") in found
    # The matched text is shown as rules see it: normalised (non-ASCII case-folded).
    assert (0, 2, 1, f"ÿ{word.upper()}é") in found


def _hashed(identifiers: list[str], *, sep: bool = False) -> list[Rule]:
    denylist = make_hashed_denylist(
        identifiers, "salt-" + secrets.token_hex(4), separator_insensitive=sep
    )
    return denylist.rules("h")


def test_hashed_single_token_found_whole_word_only() -> None:
    word = _word()
    matcher = Matcher(_hashed([word]), "re")
    text = f"x = '{word.upper()}'\n{word}s {word}_x\n# {word}\n"
    found = [(line, col) for _r, line, col, _t in _found(matcher, text)]
    assert found == [(1, 6), (2, len(word) + 3), (3, 3)]


def test_hashed_multi_word_identifiers_are_found_whole() -> None:
    a, b, c = _word(), _word(), _word()
    module = f"{a}.{b}.{c}"
    name = f"{b} {c}"
    matcher = Matcher(_hashed([module, name]), "re")
    text = f"import {module}\n{a}.{b} only\nthe {b.upper()} {c} team\n{b}  {c}\nx.{a}.{b}.{c}\n"
    found = [(line, col) for _r, line, col, _t in _found(matcher, text)]
    assert found == [(1, 8), (3, 5), (5, 3)]


def test_hashed_separator_insensitive_matches_every_spelling() -> None:
    a, b = _word(), _word()
    matcher = Matcher(_hashed([f"{a} {b}"], sep=True), "re")
    lines = [f"{a}{b}", f"{a.capitalize()}{b.capitalize()}", f"{a}_{b}", f"{a}-{b}", f"{a} {b}"]
    text = "\n".join(lines) + f"\n{a}\n{b}{a}\n"
    assert [line for _r, line, _c, _t in _found(matcher, text)] == [1, 2, 3, 4, 5]


def test_hashed_windows_are_hashed_once_across_files(monkeypatch) -> None:
    # Without fingerprints every distinct window is hashed: once, whatever the number of files.
    import hashlib
    import types

    from customer_model_factory.boundary import engines

    word = _word()
    denylist = make_hashed_denylist([word], "salt-once", fingerprints=False)
    matcher = Matcher(denylist.rules("h"), "re")
    calls: list[bytes] = []

    def counting_sha256(data: bytes = b"") -> object:
        calls.append(data)
        return hashlib.sha256(data)

    monkeypatch.setattr(engines, "hashlib", types.SimpleNamespace(sha256=counting_sha256))
    text = f"alpha beta {word} gamma\n".encode()
    assert len(matcher.scan(text)) == 1
    first = len(calls)
    assert first >= 4
    assert len(matcher.scan(text)) == 1
    # Only the window that hit is hashed again; the clean ones are remembered.
    assert len(calls) == first + 1


def test_resolve_engine() -> None:
    assert resolve_engine("auto") == available_engines()[0]
    assert resolve_engine("re") == "re"
    assert available_engines()[-1] == "re"


def test_matches_report_character_columns_after_multibyte_text() -> None:
    word = _word()
    for rules in ([_literal_rule(word, "t")], _hashed([word])):
        matcher = Matcher(rules, "re")
        assert [(m.line, m.col) for m in matcher.scan(f"ééé {word}\n".encode())] == [(1, 5)]


@pytest.mark.parametrize("engine", ENGINE_PARAMS)
@pytest.mark.parametrize("limit", [100_000, 2])
def test_batch_scan_equals_file_by_file_scan(engine: str, limit: int, monkeypatch) -> None:
    from customer_model_factory.boundary import engines

    monkeypatch.setattr(engines, "_BATCH_MATCH_LIMIT", limit)
    plain, hashed, sep = _word(), _word(), (_word(4), _word(4))
    rules = [
        _literal_rule(plain, "t"),
        _literal_rule("_".join(sep), "t", separator_insensitive=True),
        *_hashed([hashed, f"{hashed} {plain}x"]),
    ]
    batch = [
        f"a {plain} b\n{plain.upper()}\n".encode(),
        b"nothing here\n",
        f"{hashed}\n{sep[0]}-{sep[1]} {hashed.upper()} {plain}x\n".encode(),
        f"x{plain} {hashed}s\n".encode(),
        b"",
    ]
    expected = [Matcher(rules, engine).scan(data) for data in batch]
    assert Matcher(rules, engine).scan_batch(batch) == expected
    assert [len(found) for found in expected] == [2, 0, 4, 0, 0]


def test_fingerprint_screen_finds_exactly_what_full_hashing_finds() -> None:
    word, lead, tail, sep = _word(), _word(), _word(), (_word(4), _word(4))
    identifiers = [word, f"{lead} {tail}", f"Ÿ{word}É"]
    salt = "salt-" + secrets.token_hex(4)
    texts = [
        f"{word} {word.upper()}s {lead}.{tail}\nthe {lead.upper()} {tail} x\n",
        f"ÿ{word}é and Ÿ{word.upper()}É here\n{lead}\n",
        "nothing at all\n",
    ]
    for separator_insensitive in (False, True):
        screened = make_hashed_denylist(
            identifiers, salt, separator_insensitive=separator_insensitive
        )
        full = make_hashed_denylist(
            identifiers, salt, separator_insensitive=separator_insensitive, fingerprints=False
        )
        assert screened.fingerprints and not full.fingerprints
        with_screen = Matcher(screened.rules("h"), "re")
        without = Matcher(full.rules("h"), "re")
        assert with_screen._groups[0].screen is not None
        assert without._groups[0].screen is None
        found = [with_screen.scan(t.encode()) for t in [*texts, f"{sep[0]}_{sep[1]}\n"]]
        assert found == [without.scan(t.encode()) for t in [*texts, f"{sep[0]}_{sep[1]}\n"]]
        # "lead.tail" is the identifier "lead tail" only when separators are ignored.
        assert [len(f) for f in found[:3]] == [2 + separator_insensitive, 2, 0]


def test_screen_computes_sha256_only_for_tokens_whose_fingerprint_is_listed(monkeypatch) -> None:
    import hashlib
    import types

    from customer_model_factory.boundary import engines

    word = _word()
    calls: list[bytes] = []

    def counting_sha256(data: bytes = b"") -> object:
        calls.append(data)
        return hashlib.sha256(data)

    monkeypatch.setattr(engines, "hashlib", types.SimpleNamespace(sha256=counting_sha256))
    text = (" ".join(_word() for _ in range(200)) + f" {word}\n").encode()
    screened = Matcher(_hashed([word]), "re")
    assert len(screened.scan(text)) == 1
    # Only the one token whose fingerprint is listed reaches sha256 (plus the rule lookup).
    assert 1 <= len(calls) <= 2
    calls.clear()
    full = Matcher(make_hashed_denylist([word], "salt-x1y2z3", fingerprints=False).rules("h"), "re")
    assert len(full.scan(text)) == 1
    assert len(calls) >= 200


def test_one_rule_without_fingerprint_makes_its_group_hash_every_token() -> None:
    with_print, without_print = _word(), _word()
    salt = "salt-" + secrets.token_hex(4)
    rules = make_hashed_denylist([with_print, without_print], salt).rules("h")
    # A pack's hashed identifier under the same salt publishes no fingerprint.
    rules = [
        rule.model_copy(update={"fingerprint": None}) if index == 1 else rule
        for index, rule in enumerate(rules)
    ]
    matcher = Matcher(rules, "re")
    assert matcher._groups[0].screen is None
    found = matcher.scan(f"{with_print} {without_print}\n".encode())
    assert len(found) == 2


@pytest.mark.parametrize("missing", [(), ("hyperscan",), ("hyperscan", "ahocorasick_rs")])
def test_whole_token_occurrences_are_the_same_with_every_library(missing, monkeypatch) -> None:
    import sys

    from customer_model_factory.boundary import engines

    for name in missing:
        monkeypatch.setitem(sys.modules, name, None)  # the import now raises ImportError
    from customer_model_factory.boundary.normalise import is_boundary

    a, b = _word(), _word()
    view = f"{a} x{a} {a}x {b} {a}_{b} {b}\n{a}{b.capitalize()}".encode()
    found = sorted(engines._occurrences(view, [a.encode(), b.encode()]))
    # Reference: every occurrence of either that starts and ends at a word boundary.
    expected = sorted(
        (needle, m.start())
        for needle in (a.encode(), b.encode())
        for m in re.finditer(re.escape(needle), view, re.IGNORECASE)
        if is_boundary(view, m.start()) and is_boundary(view, m.end())
    )
    expected = [(n, o) for n, o in expected if view[o : o + len(n)] == n]
    assert found == expected
    assert len(expected) == 6


def test_a_hyperscan_without_the_literal_compiler_falls_back(monkeypatch) -> None:
    import sys
    import types

    from customer_model_factory.boundary import engines

    class OldDatabase:
        def __init__(self, mode: int) -> None:
            pass

        def compile(self, **kwargs: object) -> None:
            raise TypeError("compile() got an unexpected keyword argument 'literal'")

    old = types.SimpleNamespace(
        Database=OldDatabase, HS_MODE_BLOCK=1, error=type("error", (Exception,), {})
    )
    monkeypatch.setitem(sys.modules, "hyperscan", old)
    assert engines._literal_database([b"abc"]) is None
    word = _word().encode()
    assert list(engines._occurrences(b"x " + word + b" y", [word])) == [(word, 2)]


def test_a_packs_hashed_identifier_meets_every_separator_spelling() -> None:
    from customer_model_factory.boundary import hash_identifier, rules_from_identifiers
    from customer_model_factory.contributions import ProprietaryIdentifiers

    code = f"{_word(4)}_uw_{secrets.randbelow(9000) + 1000}"
    salt = "pack-salt-" + secrets.token_hex(4)
    contribution = ProprietaryIdentifiers(
        source="pack",
        hashed=(hash_identifier(code, salt, separator_insensitive=True),),
        salt=salt,
        separator_insensitive=True,
    )
    matcher = Matcher(rules_from_identifiers(contribution), "re")
    upper_dashes = code.upper().replace("_", "-")
    camel = "".join(part.capitalize() for part in code.split("_"))
    text = f"{upper_dashes}\n{code.replace('_', '.')}\n{camel}\n{code.replace('_', '/')}\nx{code}\n"
    assert [m.line for m in matcher.scan(text.encode())] == [1, 2, 3, 4]
