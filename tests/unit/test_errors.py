"""The error hierarchy and its exit codes."""

from __future__ import annotations

import pytest

from customer_model_factory import errors
from customer_model_factory.errors import (
    BlockedError,
    CanonicalizationError,
    CMFError,
    ConfigError,
    DataFormatError,
    InputError,
    ManifestIntegrityError,
    PluginError,
    SchemaVersionError,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (CMFError("x"), 3),
        (InputError("x"), 2),
        (ConfigError("x"), 2),
        (DataFormatError("x"), 2),
        (CanonicalizationError("x"), 2),
        (ManifestIntegrityError(path="m.json", hash_field="h", expected="a", actual="b"), 2),
        (SchemaVersionError(path="m.json", found="9", supported=("1",)), 2),
        (PluginError("x", plugin="p"), 2),
        (BlockedError("x"), 1),
    ],
)
def test_every_error_carries_its_exit_code(error, code):
    assert isinstance(error, CMFError)
    assert error.exit_code == code


def test_message_names_file_line_and_field():
    error = DataFormatError("must be a string", path="traces.jsonl", line=12, field="split")
    assert str(error) == "traces.jsonl:12: field 'split': must be a string"
    assert (error.path, error.line, error.field) == ("traces.jsonl", 12, "split")
    assert str(ConfigError("bad", path="w.toml")) == "w.toml: bad"


def test_integrity_error_names_both_hashes():
    error = ManifestIntegrityError(
        path="m.json", hash_field="dataset_hash", expected="sha256:aa", actual="sha256:bb"
    )
    assert "m.json" in str(error) and "sha256:aa" in str(error) and "sha256:bb" in str(error)


def test_plugin_error_names_the_plugin():
    assert str(PluginError("targets API 9", plugin="acme-pack")) == (
        "plugin 'acme-pack': targets API 9"
    )


def test_every_exported_error_is_documented_in_the_module_docstring():
    for name in errors.__all__:
        if name.endswith("Error") and name != "CMFError":
            assert name in errors.__doc__, name
