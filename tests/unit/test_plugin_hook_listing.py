"""``cmf plugins hooks``: every hook's contract, read from the hook specs at run time."""

from __future__ import annotations

import inspect
import json

import pytest
from typer.testing import CliRunner

from customer_model_factory.cli import app
from customer_model_factory.plugin_api import hookspecs
from customer_model_factory.plugin_api.hookspecs import hookspec
from customer_model_factory.plugins import HOOKS, hook_names
from customer_model_factory.plugins import hooks as hooks_module
from customer_model_factory.plugins.hooks import describe_hooks


def test_every_hook_spec_is_described_in_the_order_of_the_spec_module() -> None:
    described = [hook.name for hook in describe_hooks()]
    assert sorted(described) == list(hook_names())
    lines = [inspect.getsourcelines(getattr(hookspecs, name))[1] for name in described]
    assert lines == sorted(lines)


def test_each_description_carries_the_contract() -> None:
    by_name = {hook.name: hook for hook in describe_hooks()}
    validate = by_name["cmf_validate_sector_metadata"]
    assert validate.arguments == ("sector_id", "trace", "metadata")
    assert validate.returns == "list[Finding] | None"
    assert validate.signature.startswith("cmf_validate_sector_metadata(sector_id: str, ")
    assert validate.stage == "dataset"
    assert validate.section == "stage 1: dataset contract"
    assert validate.summary == "Check one trace's sector metadata against the pack's own rules."
    assert validate.version_added == "1.0"
    assert validate.firstresult is False
    assert by_name["cmf_release_checks"].deprecated_arguments == ("context",)
    lanes = by_name["cmf_training_lanes"].summary
    assert ":class:" not in lanes and "``" not in lanes and "TrainingLane" in lanes


def test_the_stage_comes_from_the_contribution_table() -> None:
    stages = {hook.name: hook.stage for hook in describe_hooks()}
    for entry in HOOKS:
        assert stages[entry.hook] == entry.stage


def test_a_spec_added_to_the_module_is_listed_with_its_banner_stage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hook with no table entry yet (another stage being built) is listed under the stage of
    the banner it sits under; firstresult is read from the spec's options."""

    @hookspec(firstresult=True)
    def cmf_release_probe(release: object) -> str | None:
        """Probe a release.

        Called by nobody. Stops at first non-None result.
        """

    # The fake spec is placed as if written last in the module, under its last banner.
    original = hooks_module._spec_functions
    monkeypatch.setattr(
        hooks_module,
        "_spec_functions",
        lambda: [*original(), (10**6, "cmf_release_probe", cmf_release_probe)],
    )
    probe = describe_hooks()[-1]
    assert probe.name == "cmf_release_probe"
    assert probe.firstresult is True
    assert probe.summary == "Probe a release."
    assert probe.stage == "boundary verifier"


def test_without_installed_source_hooks_keep_their_order_and_table_stage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_source(*args: object) -> None:
        raise OSError("could not get source code")

    in_table = {entry.hook for entry in HOOKS}
    expected = [(hook.name, hook.stage) for hook in describe_hooks() if hook.name in in_table]
    monkeypatch.setattr(inspect, "findsource", no_source)
    monkeypatch.setattr(inspect, "getsourcelines", no_source)
    described = describe_hooks()
    assert [(hook.name, hook.stage) for hook in described if hook.name in in_table] == expected
    assert sorted(hook.name for hook in described) == list(hook_names())


def test_cli_lists_hooks_as_text_and_json() -> None:
    runner = CliRunner()
    text = runner.invoke(app, ["plugins", "hooks"])
    assert text.exit_code == 0, text.output
    for name in hook_names():
        assert f"\n{name}  [stage: " in f"\n{text.output}"
    assert "every implementation is called" in text.output
    as_json = runner.invoke(app, ["plugins", "hooks", "--format", "json"])
    assert as_json.exit_code == 0
    payload = json.loads(as_json.output)
    assert [hook["name"] for hook in payload] == [hook.name for hook in describe_hooks()]
    assert set(payload[0]) == {
        "arguments",
        "deprecated_arguments",
        "firstresult",
        "historic",
        "name",
        "returns",
        "section",
        "signature",
        "stage",
        "summary",
        "version_added",
    }
