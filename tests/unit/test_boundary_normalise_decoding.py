"""One normalisation, decoded encodings and the guessability estimate of the boundary verifier."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.boundary import decoding, normalise
from customer_model_factory.boundary.decoding import decoded_layers, marker_hits
from customer_model_factory.boundary.guessability import guessability_warnings, identifier_bits
from customer_model_factory.boundary.normalise import fold_text, identifier_key, view_bytes

TEXT = st.text(
    alphabet=st.sampled_from(
        [
            *"aZ9_-./ \n\t%&#;\\=+",
            *("\u00e9", "\u00df", "\u200b", "\u00ad", "\u201c", "\uff21", "\u0430", "\u0301"),
            *("\ufeff", "\u3164", "\u2014", "\U0001f600", "\u0130"),
        ]
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(TEXT, st.booleans())
def test_view_keeps_every_line_and_folds_chunks_as_the_whole_text(text: str, confusables: bool):
    data = text.encode()
    view = view_bytes(data, confusables=confusables)
    assert view.count(b"\n") == data.count(b"\n")
    assert view == fold_text(text, confusables=confusables).encode()


def test_view_chunks_are_cut_after_a_line_feed(monkeypatch) -> None:
    monkeypatch.setattr(normalise, "_CHUNK", 3)
    text = "ab\u00e9\ncd\n\u200bef\u0301\n" * 5
    assert view_bytes(text.encode()) == fold_text(text).encode()


def test_identifier_key_matches_the_view_of_its_spellings() -> None:
    assert identifier_key("Gro\u00dfbank") == "grossbank"
    assert identifier_key("\u201cACME\u201d") == "acme"
    assert identifier_key("cafe\u200b\u0301") == identifier_key("caf\u00e9")
    assert identifier_key("a\u3164b") == "ab"
    assert identifier_key("\u0430cme", confusables=True) == "acme"
    assert identifier_key("ACME-UW-7731", separator_insensitive=True) == "acmeuw7731"
    assert identifier_key("acme/uw\n7731", separator_insensitive=True) == "acmeuw7731"


def _word(n: int = 7) -> str:
    return "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(n))


def test_decoded_layers_keep_line_numbers_and_name_the_chain() -> None:
    word = _word()
    inner = "".join(f"%{b:02X}" for b in word.encode())
    data = f"one\ntwo {base64.b64encode(inner.encode()).decode()}\nthree\n".encode()
    layers = dict(decoded_layers(data))
    assert layers["base64"].split(b"\n")[1] == inner.encode()
    assert layers["base64>percent"].split(b"\n")[1] == word.encode()
    assert layers["base64>percent"].count(b"\n") == data.count(b"\n")
    assert decoded_layers(data, 1) == [("base64", layers["base64"])]
    assert decoded_layers(data, 0) == []


def test_latin1_letters_written_as_escapes_are_decoded() -> None:
    for data in (b"Gro\\u00dfbank\n", b"Gro\\xdfbank\n", b"Gro%C3%9Fbank\n", b"Gro&szlig;bank\n"):
        hits = marker_hits([data])
        for found in (None, hits[0] if hits else None):
            layers = decoded_layers(data, 1, hits=found)
            assert [layer for _label, layer in layers] == ["Gro\u00dfbank\n".encode()], data


def test_the_number_of_layers_is_bounded(monkeypatch) -> None:
    word = _word()
    data = base64.b64encode(base64.b64encode(base64.b64encode(word.encode() * 3))) + b"\n"
    assert [label for label, _ in decoded_layers(data, 8)] == [
        "base64",
        "base64>base64",
        "base64>base64>base64",
    ]
    monkeypatch.setattr(decoding, "MAX_LAYERS", 2)
    assert len(decoded_layers(data, 8)) == 2


def test_decoders_leave_what_spells_nothing_alone() -> None:
    # Control-character escapes, markup entities, %0A, identifiers and paths: no layer.
    data = (
        b'x = "\\x00\\x1b\\n" &amp; &lt;b&gt; a%0Ab\n'
        b"StreamReaderProtocol DEFAULT_REPOSITORY core/customer_model_factory/boundary\n"
        b"5f3e2a1c9b8d7e6f5a4b3c2d1e0f9a8b\n"
    )
    assert decoded_layers(data) == []
    assert marker_hits([data]) in ([{}], None)


BUFFERS = st.lists(
    st.one_of(
        st.binary(max_size=60),
        st.text(max_size=30).map(
            lambda t: f"q={''.join(f'%{b:02X}' for b in t.encode())}&j=\\u0061{t}".encode()
        ),
        st.text(min_size=12, max_size=40).map(
            lambda t: b"tok: " + base64.b64encode(t.encode()) + b"\nnext"
        ),
        st.text(max_size=20).map(lambda t: "".join(f"&#{ord(c)};" for c in t).encode()),
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(BUFFERS)
def test_hyperscan_markers_find_what_the_python_markers_find(buffers: list[bytes]) -> None:
    hits = marker_hits(buffers)
    if hits is None:
        pytest.skip("hyperscan is not importable here")
    for data, found in zip(buffers, hits, strict=True):
        assert decoded_layers(data, 2, hits=found) == decoded_layers(data, 2)


def test_marker_database_is_compiled_once() -> None:
    first = decoding.marker_database()
    assert decoding.marker_database() is first


def test_guessability_estimates_and_warnings(tmp_path: Path) -> None:
    assert identifier_bits("the")[0] < 20
    assert identifier_bits("bank")[1] == ["short (4 characters)", "1 dictionary word(s)"]
    assert identifier_bits("12345678")[1] == ["digits only"]
    strong = f"{_word()}_priv.{_word()}.{_word()}_v3"
    assert identifier_bits(strong)[0] > 60
    listing = tmp_path / "ids.txt"
    listing.write_text(f"# header\n\nthe  # label\n{strong}\nscore\n", encoding="utf-8")
    warnings = guessability_warnings(listing, ["the", strong, "score"])
    assert [w.split(": warning")[0] for w in warnings] == [f"{listing}:3", f"{listing}:5"]
    assert all("the" not in w.split("warning")[1].split("(")[0] for w in warnings)
    assert not any("score" in w for w in warnings)
    assert guessability_warnings(listing, ["the"], lines=[42])[0].startswith(f"{listing}:42:")
