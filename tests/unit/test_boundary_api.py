"""``verify_boundary``: one call takes a request and a plugin manager and returns the report."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from customer_model_factory import hookimpl
from customer_model_factory.boundary import BoundaryRequest, hash_denylist_file, verify_boundary
from customer_model_factory.contributions import ProprietaryIdentifiers
from customer_model_factory.errors import ConfigError, InputError
from customer_model_factory.testing import registered


def _word() -> str:
    return "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(10))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "README.md").write_text("# public\n")
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    return root


class _Pack:
    CMF_PLUGIN_API = 1

    def __init__(self, literal: str) -> None:
        self.literal = literal

    @hookimpl
    def cmf_proprietary_identifiers(self) -> list[ProprietaryIdentifiers]:
        return [ProprietaryIdentifiers(source="test-pack", literals=(self.literal,))]


def test_the_plugin_manager_passed_in_contributes_the_rules(repo: Path) -> None:
    secret = _word()
    (repo / "a.txt").write_text(f"{secret}\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    with registered(_Pack(secret)) as manager:
        report = verify_boundary(BoundaryRequest(root=repo), plugin_manager=manager)
    assert report.exit_code == 1
    [leak] = report.leaks
    assert (leak.path, leak.rule_id, leak.origin) == (
        "a.txt",
        "test-pack#literal-1",
        "pack:test-pack",
    )
    with pytest.raises(ConfigError, match="no boundary rule"):
        verify_boundary(BoundaryRequest(root=repo), plugin_manager=None)


def test_the_request_is_frozen_and_validated(repo: Path) -> None:
    request = BoundaryRequest(root=repo, path_globs=("*.secret",))
    with pytest.raises(ValidationError):
        request.root = Path("/")  # type: ignore[misc]
    with pytest.raises(ValidationError):
        BoundaryRequest(scope="everything")  # type: ignore[arg-type]
    assert verify_boundary(request, plugin_manager=None).exit_code == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"scope": "since"}, "needs a revision"),
        ({"scope": "commit_msg"}, "needs a message file"),
        ({"scope": "push"}, "needs refs"),
        ({"scope": "push", "push_refs": ("no-such-ref",)}, "'no-such-ref' could not be resolved"),
    ],
)
def test_incomplete_scopes_are_input_errors(repo: Path, fields: dict, message: str) -> None:
    request = BoundaryRequest(root=repo, path_globs=("*.secret",), **fields)
    with pytest.raises(InputError, match=message):
        verify_boundary(request, plugin_manager=None)


def test_hash_denylist_file_refuses_an_empty_salt(tmp_path: Path) -> None:
    identifiers = tmp_path / "ids.txt"
    identifiers.write_text(f"{_word()}\n")
    with pytest.raises(ConfigError, match="--salt is empty"):
        hash_denylist_file(identifiers, salt="")
    assert len(hash_denylist_file(identifiers).salt) == 32
