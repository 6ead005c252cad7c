"""The output guard of the stage commands and the escaping of values in text output."""

from __future__ import annotations

import os

import pytest

from customer_model_factory.cli._paths import printable, refuse_overwrite
from customer_model_factory.errors import InputError


def test_an_output_naming_an_input_through_a_link_is_refused(tmp_path):
    source = tmp_path / "result.json"
    source.write_text("{}")
    os.link(source, tmp_path / "hard.json")
    (tmp_path / "soft.json").symlink_to(source)
    for name in ("result.json", "hard.json", "soft.json"):
        with pytest.raises(InputError, match="is also an input"):
            refuse_overwrite({"--output": tmp_path / name}, [source])
    with pytest.raises(InputError, match="name the same file"):
        refuse_overwrite({"--output": tmp_path / "a", "--receipt": tmp_path / "a"}, [source])
    refuse_overwrite({"--output": tmp_path / "new.json", "--receipt": None}, [source, None])


def test_printable_escapes_line_breaks_and_terminal_sequences():
    forged = "rb-1\nerror FORGED\x1b[2J\u2028x"
    assert printable(forged) == "rb-1\\nerror FORGED\\x1b[2J\\u2028x"
    assert printable("plain text, ünïcode") == "plain text, ünïcode"
