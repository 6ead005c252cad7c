"""Risk checks: accepted risks judged at generated_at, times compared as UTC instants."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_model_factory.errors import DataFormatError
from customer_model_factory.stages.risk.build import check_risks, load_risks
from customer_model_factory.stages.risk.models import CustomerRiskException

EVIDENCE = "sha256:" + "e" * 64
MONITORING = "sha256:" + "f" * 64
NOW = dt.datetime(2026, 5, 18, 8, 0, tzinfo=dt.UTC)


def risk(**over: Any) -> CustomerRiskException:
    base: dict[str, Any] = {
        "risk_id": "R-1",
        "status": "accepted",
        "severity": "high",
        "owner": "ml-platform",
        "accepted_at": "2026-05-01T00:00:00Z",
        "expires_at": "2026-08-01T00:00:00Z",
        "compensating_controls": ("human review of escalations",),
        "linked_artifact_hashes": {"evidence-pack": EVIDENCE, "monitoring": MONITORING},
        "rationale": "accepted while retraining",
    }
    base.update(over)
    return CustomerRiskException.model_validate(base)


def codes(*risks: CustomerRiskException, now: dt.datetime = NOW) -> list[str]:
    return [
        f.code
        for f in check_risks(
            risks, evidence_hash=EVIDENCE, monitoring_hash=MONITORING, generated_at=now
        )
    ]


def test_a_complete_accepted_risk_passes() -> None:
    assert codes(risk()) == []


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"owner": "  "}, "RISK_OWNER_MISSING"),
        ({"expires_at": ""}, "RISK_EXPIRY_MISSING"),
        ({"accepted_at": ""}, "RISK_ACCEPTED_AT_MISSING"),
        ({"expires_at": "2026-05-18T08:00:00Z"}, "RISK_EXPIRED"),  # at now: expired
        ({"expires_at": "2026-05-18"}, "RISK_TIME_INVALID"),
        ({"compensating_controls": ()}, "RISK_CONTROLS_MISSING"),
        ({"compensating_controls": (" ",)}, "RISK_CONTROLS_MISSING"),
        ({"linked_artifact_hashes": {"monitoring": MONITORING}}, "RISK_LINK_MISSING"),
        (
            {"linked_artifact_hashes": {"evidence-pack": EVIDENCE, "monitoring": "sha256:0"}},
            "RISK_LINK_STALE",
        ),
        ({"accepted_at": "2026-06-01T00:00:00Z"}, "RISK_ACCEPTED_IN_FUTURE"),
    ],
)
def test_each_gap_of_an_accepted_risk_is_named(over: dict[str, Any], code: str) -> None:
    found = check_risks(
        [risk(**over)], evidence_hash=EVIDENCE, monitoring_hash=MONITORING, generated_at=NOW
    )
    assert code in [f.code for f in found]
    named = next(f for f in found if f.code == code)
    assert "'R-1'" in named.message
    assert named.field


def test_offsets_are_compared_as_instants_not_as_text() -> None:
    # As text 10:00+05:00 sorts after 06:00Z; as instants it is 05:00Z, an hour before.
    ok = risk(accepted_at="2026-05-18T10:00:00+05:00", expires_at="2026-05-18T06:00:00Z")
    assert "RISK_EXPIRY_BEFORE_ACCEPTANCE" not in codes(ok, now=NOW - dt.timedelta(hours=3))
    # Expiry 12:00+05:00 is 07:00Z: already past at 08:00Z although "12:00" > "08:00".
    assert "RISK_EXPIRED" in codes(risk(expires_at="2026-05-18T12:00:00+05:00"))
    # Expiry 03:00-06:00 is 09:00Z: still valid at 08:00Z although "03:00" < "08:00".
    assert codes(risk(expires_at="2026-05-18T03:00:00-06:00")) == []
    # Fractional seconds: one microsecond after now is not expired, now itself is.
    assert codes(risk(expires_at="2026-05-18T08:00:00.000001Z")) == []
    assert "RISK_EXPIRED" in codes(risk(expires_at="2026-05-18T08:00:00.000000Z"))
    bad = risk(accepted_at="2026-05-18T06:00:00Z", expires_at="2026-05-18T10:00:00+05:00")
    assert "RISK_EXPIRY_BEFORE_ACCEPTANCE" in codes(bad, now=NOW - dt.timedelta(hours=4))


@given(
    st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.timezones(),
    ),
    st.timedeltas(min_value=dt.timedelta(hours=-48), max_value=dt.timedelta(hours=48)),
)
def test_expiry_is_judged_by_instant_whatever_the_offset(
    expiry: dt.datetime, shift: dt.timedelta
) -> None:
    offset = expiry.utcoffset()
    if offset is None or offset.seconds % 60 or abs(offset) >= dt.timedelta(hours=24):
        return  # RFC 3339 offsets are whole minutes
    now = expiry.astimezone(dt.UTC) + shift
    text = expiry.isoformat()
    accepted = (expiry - dt.timedelta(days=400)).astimezone(dt.UTC).isoformat()
    found = codes(risk(accepted_at=accepted, expires_at=text), now=now)
    assert ("RISK_EXPIRED" in found) == (expiry <= now)


def test_duplicate_risk_ids_and_non_accepted_risks() -> None:
    mitigated = risk(risk_id="R-2", status="mitigated", owner="", expires_at="", accepted_at="")
    assert codes(mitigated) == []
    assert codes(risk(), risk()) == ["RISK_DUPLICATE_ID"]
    assert codes(risk(status="rejected", expires_at="not a time")) == ["RISK_TIME_INVALID"]


def test_risks_file_formats_and_errors(tmp_path: Path) -> None:
    toml = tmp_path / "risks.toml"
    toml.write_text(
        '[[risks]]\nrisk_id = "R-1"\nstatus = "accepted"\nseverity = "high"\nowner = "ops"\n'
        "accepted_at = 2026-05-01T00:00:00+02:00\nexpires_at = 2026-08-01T00:00:00Z\n"
        'compensating_controls = ["review"]\nrationale = "r"\n'
        '[risks.linked_artifact_hashes]\n"evidence-pack" = "sha256:1"\n',
        encoding="utf-8",
    )
    risks, lines, raw = load_risks(toml)
    assert risks[0].accepted_at == "2026-05-01T00:00:00+02:00"
    assert lines == [2]
    assert raw == toml.read_bytes()
    naive = tmp_path / "naive.toml"
    naive.write_text(toml.read_text().replace("+02:00", ""), encoding="utf-8")
    with pytest.raises(DataFormatError, match="offset") as caught:
        load_risks(naive)
    assert caught.value.field == "risks[0].accepted_at"
    bad = tmp_path / "bad.json"
    bad.write_text('[{"risk_id": "R-9", "status": "maybe"}]', encoding="utf-8")
    with pytest.raises(DataFormatError) as caught:
        load_risks(bad)
    assert str(caught.value).startswith(f"{bad}:1: field 'risks[0].")
    broken = tmp_path / "broken.json"
    broken.write_text('[\n{"risk_id": ', encoding="utf-8")
    with pytest.raises(DataFormatError, match="invalid JSON") as caught:
        load_risks(broken)
    assert caught.value.line == 2
    extra = tmp_path / "extra.json"
    extra.write_text('{"risks": [], "other": 1}', encoding="utf-8")
    with pytest.raises(DataFormatError, match="list of risks"):
        load_risks(extra)


def test_instants_at_the_ends_of_the_calendar_do_not_crash() -> None:
    # Instants with no UTC form (before year 1 or after 9999 in UTC) are not times anything can
    # compare: refused as invalid, never a crash here or in the release gate.
    beyond = risk(accepted_at="0001-01-01T00:00:00+01:00", expires_at="9999-12-31T23:59:59-01:00")
    assert codes(beyond).count("RISK_TIME_INVALID") == 2
    far = risk(accepted_at="0001-01-01T01:00:00+01:00", expires_at="9999-12-31T22:59:59-01:00")
    assert codes(far) == []
    old = risk(expires_at="0001-01-01T01:30:00+01:00")
    assert "RISK_EXPIRED" in codes(old)


def test_an_invisible_owner_or_control_is_missing() -> None:
    found = codes(risk(owner="\u200b", compensating_controls=("\u200b\u2060", " ")))
    assert "RISK_OWNER_MISSING" in found and "RISK_CONTROLS_MISSING" in found
