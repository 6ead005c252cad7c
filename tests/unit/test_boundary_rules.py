"""Rules of the boundary verifier: normalisation, the hash scheme, denylist files, merging."""

from __future__ import annotations

import hashlib
import json
import secrets
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_model_factory.boundary import (
    HashedDenylist,
    RuleSet,
    hash_identifier,
    load_hashed_denylist,
    make_hashed_denylist,
    normalise_identifier,
    read_plain_denylist,
    rules_from_identifiers,
)
from customer_model_factory.boundary.fingerprints import keyed_fingerprint
from customer_model_factory.boundary.normalise import atom_count
from customer_model_factory.boundary.rules import read_identifier_lines
from customer_model_factory.contributions import ProprietaryIdentifiers
from customer_model_factory.errors import ConfigError, DataFormatError


def _word(n: int = 6) -> str:
    return "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(n))


def test_hash_follows_the_published_scheme_byte_for_byte() -> None:
    identifier, salt = f"  {_word().upper()}-{_word()} ", "pepper-" + secrets.token_hex(4)
    normalised = unicodedata.normalize("NFKC", identifier).casefold().strip()
    expected = hashlib.sha256(salt.encode() + b"\x00" + normalised.encode()).hexdigest()
    assert hash_identifier(identifier, salt) == f"sha256:{expected}"
    flat = "".join(ch for ch in normalised if ch not in " \t-_.")
    expected_flat = hashlib.sha256(salt.encode() + b"\x00" + flat.encode()).hexdigest()
    assert (
        hash_identifier(identifier, salt, separator_insensitive=True) == f"sha256:{expected_flat}"
    )


def test_separator_insensitive_spellings_share_one_hash() -> None:
    a, b = _word(), _word()
    spellings = [
        f"{a}_{b}",
        f"{a}-{b}",
        f"{a}.{b}",
        f"{a.capitalize()}{b.capitalize()}",
        f"{a} {b}",
    ]
    hashes = {hash_identifier(s, "saltsalt", separator_insensitive=True) for s in spellings}
    assert len(hashes) == 1
    assert len({hash_identifier(s, "saltsalt") for s in spellings}) == len(spellings)


def test_normalisation_folds_width_and_case() -> None:
    assert normalise_identifier("ＡＣＭＥ") == "acme"
    assert normalise_identifier(" Straße ") == "strasse"


@given(st.text(min_size=1, max_size=30))
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalise_identifier(text)
    assert normalise_identifier(once) == once or unicodedata.normalize("NFKC", once) != once


def test_atoms_split_at_every_alphanumeric_transition_and_camel_case() -> None:
    assert atom_count("ab-cd.ef@gh") == 4
    assert atom_count("snake_case_id") == 3
    assert atom_count("AcmeBankV2") == 3
    assert atom_count("ACME-7731-5f3e2a1c") == 3
    assert atom_count("\u201cacme\u201d") == 1


def test_normalisation_removes_default_ignorables_and_reads_slashes_as_dots() -> None:
    assert normalise_identifier("ac\u200bme\u00adbank") == "acmebank"
    assert normalise_identifier("acme/priv/scoring_v3") == "acme.priv.scoring_v3"
    assert normalise_identifier("Acme/Priv", separator_insensitive=True) == "acmepriv"
    assert normalise_identifier("\u0430cme") != "acme"
    assert normalise_identifier("\u0430cme", confusables=True) == "acme"


def test_hashed_denylist_holds_no_plaintext_and_no_per_word_hash(tmp_path: Path) -> None:
    from customer_model_factory.boundary import fingerprint_identifier

    one, words = _word(), [_word(), _word()]
    two = " ".join(words)
    denylist = make_hashed_denylist([one, two], "salt-" + secrets.token_hex(4), labels=["x", None])
    text = denylist.model_dump_json()
    assert one not in text
    assert words[0] not in text
    # Nothing is published per word: no hash or fingerprint of a word alone.
    for word in words:
        assert hash_identifier(word, denylist.salt) not in text
        assert str(fingerprint_identifier(word, denylist.salt)) not in text
    assert "leads" not in json.loads(text)
    assert denylist.max_tokens == 3  # two words, plus one for a split spelling
    assert denylist.labels == {hash_identifier(one, denylist.salt): "x"}
    path = tmp_path / "d.json"
    path.write_text(text)
    assert load_hashed_denylist(path) == denylist
    rules = denylist.rules("hashed-denylist:d.json")
    assert {r.rule_id for r in rules} == {"x", hash_identifier(two, denylist.salt)[:19]}
    # A file of an earlier release, with per-word leads, is refused.
    data = json.loads(text) | {"leads": {}}
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="leads"):
        load_hashed_denylist(path)


def test_hashed_denylist_rejects_unsorted_hashes_naming_the_field(tmp_path: Path) -> None:
    good = make_hashed_denylist([_word(), _word()], "saltsalt")
    data = json.loads(good.model_dump_json())
    data["hashes"].reverse()
    path = tmp_path / "d.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"d\.json: field 'hashes': .*sorted"):
        load_hashed_denylist(path)
    path.write_text("{not json")
    with pytest.raises(DataFormatError, match="not JSON"):
        load_hashed_denylist(path)
    data = json.loads(good.model_dump_json()) | {"scheme": "other-v9"}
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="scheme"):
        load_hashed_denylist(path)


def test_make_hashed_denylist_rejects_unmatchable_identifier() -> None:
    for bad in ("-ab", "ab/", "__"):
        with pytest.raises(ConfigError, match="identifier 2 starts or ends"):
            make_hashed_denylist([_word(), bad], "saltsalt")
    assert make_hashed_denylist(["a#b"], "saltsalt").hashes
    with pytest.raises(ConfigError, match="salt"):
        make_hashed_denylist([_word()], "short")
    # Only separators: it would match every underscore of the tree.
    with pytest.raises(ConfigError, match="identifier 2 is empty once separators are ignored"):
        make_hashed_denylist([_word(), "__"], "saltsalt", separator_insensitive=True)


def test_plain_denylist_reads_labels_globs_and_schema_ids(tmp_path: Path) -> None:
    word = _word()
    path = tmp_path / "deny.txt"
    path.write_text(
        f"# private list\n\n{word}  # customer-a\npath: **/private_pack/**\nschema: urn:x:{word}\n"
    )
    rules = read_plain_denylist(path)
    assert (rules[0].kind, rules[0].rule_id) == ("literal", "customer-a")
    assert [r.kind for r in rules] == ["literal", "path_glob", "schema_id"]
    assert all(r.origin == "denylist:deny.txt" for r in rules)
    assert all(word not in r.model_dump_json() for r in rules)
    names, labels = read_identifier_lines(path)
    assert names[0] == word
    assert labels[0] == "customer-a"


def test_plain_denylist_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.txt: denylist not found"):
        read_plain_denylist(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="holds no rule"):
        read_plain_denylist(empty)
    blank = tmp_path / "blank.txt"
    blank.write_text("path:\n")
    with pytest.raises(ConfigError, match=r"blank\.txt:1: empty rule"):
        read_plain_denylist(blank)
    dashes = tmp_path / "dashes.txt"
    dashes.write_text(f"{_word()}\n-_-\n")
    assert len(read_plain_denylist(dashes)) == 2
    with pytest.raises(ConfigError, match=r"dashes\.txt:2: rule is empty once separators"):
        read_plain_denylist(dashes, separator_insensitive=True)


def test_pack_identifiers_become_rules_with_their_origin() -> None:
    salt = "s-" + secrets.token_hex(4)
    word = _word()
    contribution = ProprietaryIdentifiers(
        source="pack-a",
        literals=(word,),
        hashed=(hash_identifier(_word(), salt),),
        salt=salt,
        path_globs=("**/pack_a/**",),
        schema_ids=("urn:pack-a:private",),
    )
    rules = rules_from_identifiers(contribution)
    assert {r.kind for r in rules} == {"literal", "hashed", "path_glob", "schema_id"}
    assert {r.origin for r in rules} == {"pack:pack-a"}
    bad = contribution.model_copy(update={"hash_scheme": "v0"})
    with pytest.raises(ConfigError, match="unknown hash scheme"):
        rules_from_identifiers(bad)


def test_merge_deduplicates_and_keeps_a_stable_order() -> None:
    word = _word()
    a = rules_from_identifiers(ProprietaryIdentifiers(source="b", literals=(word,)))
    b = rules_from_identifiers(ProprietaryIdentifiers(source="a", literals=(word.upper(),)))
    merged = RuleSet.merge([a, b])
    assert len(merged.rules) == 1
    assert merged.rules[0].origin == "pack:a"
    assert merged.summary()["literal"] == 1
    assert RuleSet.merge([b, a]) == merged


def test_hashed_denylist_model_is_frozen() -> None:
    denylist = make_hashed_denylist([_word()], "saltsalt")
    with pytest.raises(ValueError, match="frozen"):
        denylist.salt = "x"  # type: ignore[misc]
    assert isinstance(denylist, HashedDenylist)


def test_fingerprint_is_the_keyed_fingerprint_of_the_normalised_identifier() -> None:
    from customer_model_factory.boundary import fingerprint_identifier

    identifier, salt = "\uff21cme Bank", "saltsalt"
    expected = keyed_fingerprint(b"acme bank", salt)
    assert fingerprint_identifier(identifier, salt) == expected
    assert 0 <= expected < 2**32
    assert fingerprint_identifier(identifier, "othersalt") != expected
    joined = keyed_fingerprint(b"acmebank", salt)
    assert fingerprint_identifier(" \uff21CME-Bank", salt, separator_insensitive=True) == joined
    assert fingerprint_identifier("Ÿé", salt) == keyed_fingerprint("ÿé".encode(), salt)


def test_hashed_denylist_fingerprints_cover_every_hash(tmp_path: Path) -> None:
    denylist = make_hashed_denylist([_word(), f"{_word()} {_word()}"], "saltsalt")
    assert set(denylist.fingerprints) == set(denylist.hashes)
    rules = {rule.hash: rule for rule in denylist.rules("d")}
    for value, fingerprint in denylist.fingerprints.items():
        assert rules[value].fingerprint == fingerprint
    data = json.loads(denylist.model_dump_json())
    partial = dict(data, fingerprints=dict(list(data["fingerprints"].items())[1:]))
    path = tmp_path / "d.json"
    path.write_text(json.dumps(partial))
    with pytest.raises(ConfigError, match="must cover every hash"):
        load_hashed_denylist(path)
    first = next(iter(data["fingerprints"]))
    path.write_text(json.dumps(dict(data, fingerprints={**data["fingerprints"], first: 2**32})))
    with pytest.raises(ConfigError, match="32-bit"):
        load_hashed_denylist(path)
    path.write_text(json.dumps(dict(data, fingerprint_scheme="poly64-v1")))
    with pytest.raises(ConfigError, match="fingerprint_scheme"):
        load_hashed_denylist(path)
    path.write_text(json.dumps(dict(data, fingerprints={})))
    assert load_hashed_denylist(path).rules("d")[0].fingerprint is None
