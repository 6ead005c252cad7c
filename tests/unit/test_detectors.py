"""Secret and personal-data detection: checksums, placeholders, prefilter engines, no echo.

Every secret-looking value is assembled from pieces here, so no scanner mistakes this file for a
leak and no live credential is ever committed.
"""

from __future__ import annotations

import pytest

from customer_model_factory.detectors import (
    DETECTORS,
    DetectorSet,
    default_detector_set,
    iban_is_valid,
    iter_text_fields,
    luhn_is_valid,
    placeholder,
    redact_text,
)

AWS_KEY = "AK" + "IA" + "TESTONLY" + "7QX2PL3M"
GITHUB_TOKEN = "gh" + "p_" + "a1B2c3D4e5F6g7H8i9J0" + "k1L2m3N4o5P6q7R8s9T0"
SLACK_TOKEN = "xo" + "xb-" + "1234567890-abcdefghijKLMN"
STRIPE_KEY = "sk" + "_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
API_TOKEN = "sk" + "-proj-" + "Ab12Cd34Ef56Gh78Ij90Kl12Mn"
GOOGLE_KEY = "AI" + "za" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"
PRIVATE_KEY = "-----BEGIN " + "RSA PRIVATE" + " KEY-----\nMIIEow..."
JWT = "ey" + "JhbGciOiJIUzI1NiJ9" + ".ey" + "JzdWIiOiIxMjM0NTY3ODkwIn0" + ".dozjgNryP4J3jVmNHl0w5N"
PASSWORD_URL = "postgres://admin:" + "hunter2secret" + "@db.internal:5432/app"
AWS_SECRET = "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY12"
EMAIL = "jane.doe" + "@" + "example.org"
PHONE = "+44 20 7946 " + "0958"
CARD = "4111 1111 " + "1111 1111"  # the public Visa test number: passes Luhn
BAD_CARD = "4111 1111 " + "1111 1112"  # fails Luhn
IBAN = "GB82 WEST " + "1234 5698 7654 32"  # the ISO 13616 example: passes mod-97
BAD_IBAN = "GB83 WEST " + "1234 5698 7654 32"

CASES = [
    ("aws_access_key", AWS_KEY),
    ("aws_secret_key", AWS_SECRET),
    ("github_token", GITHUB_TOKEN),
    ("slack_token", SLACK_TOKEN),
    ("stripe_key", STRIPE_KEY),
    ("api_token", API_TOKEN),
    ("google_api_key", GOOGLE_KEY),
    ("private_key", PRIVATE_KEY),
    ("jwt", JWT),
    ("password_in_url", PASSWORD_URL),
    ("email", EMAIL),
    ("phone_number", PHONE),
    ("credit_card", CARD),
    ("iban", IBAN),
]


def test_every_detector_has_a_case():
    assert {kind for kind, _ in CASES} == {detector.kind for detector in DETECTORS}


@pytest.mark.parametrize(("kind", "value"), CASES)
@pytest.mark.parametrize("engine", ["hyperscan", "re"])
def test_each_detector_finds_its_kind_and_the_prefilter_flags_it(kind, value, engine):
    detectors = DetectorSet(engine=engine)
    text = f"please look at this: {value} thanks"
    found = detectors.scan_text(text)
    assert [d.kind for d in found] == [kind]
    assert detectors.candidate_ends(text.encode()), "the prefilter must flag every precise match"


@pytest.mark.parametrize("engine", ["hyperscan", "re"])
def test_ordinary_text_has_no_candidate(engine):
    text = b'{"prompt":"how do I reset my card limit?","observed_at":"2024-01-10T10:00:00Z"}'
    assert DetectorSet(engine=engine).candidate_ends(text) == []


def test_luhn_and_iban_checksums():
    assert luhn_is_valid("4111111111111111")
    assert not luhn_is_valid("4111111111111112")
    assert not luhn_is_valid("41111x1111111111")
    assert iban_is_valid(IBAN)
    assert not iban_is_valid(BAD_IBAN)
    assert not iban_is_valid("GB82")


def test_numbers_failing_their_checksum_are_not_reported():
    detectors = default_detector_set()
    assert detectors.scan_text(f"card {BAD_CARD} here") == []
    assert detectors.scan_text(f"iban {BAD_IBAN} here") == []
    # 13+ digits that pass Luhn but carry no issuer prefix (an order number) are not cards.
    assert detectors.scan_text("order 0000000000000000 shipped") == []


def test_redaction_uses_typed_placeholders_and_never_keeps_the_value():
    detectors = default_detector_set()
    text = f"key {AWS_KEY} mail {EMAIL} card {CARD}."
    redacted = redact_text(text, detectors.scan_text(text))
    assert redacted == (
        f"key {placeholder('aws_access_key')} mail {placeholder('email')} "
        f"card {placeholder('credit_card')}."
    )
    for secret in (AWS_KEY, EMAIL, CARD):
        assert secret not in redacted


def test_detections_carry_no_text():
    detection = default_detector_set().scan_text(f"x {AWS_KEY}")[0]
    assert AWS_KEY not in repr(detection)
    assert (detection.kind, detection.category) == ("aws_access_key", "secret")


def test_overlapping_matches_are_reported_once():
    found = default_detector_set().scan_text(PASSWORD_URL)
    assert [d.kind for d in found] == ["password_in_url"]


def test_iter_text_fields_walks_nested_values_and_keys():
    row = {"prompt": "a", "metadata": {"notes": ["b", {"deep": "c"}]}, "n": 1}
    assert list(iter_text_fields(row)) == [
        ("prompt#key", "prompt"),
        ("prompt", "a"),
        ("metadata#key", "metadata"),
        ("metadata.notes#key", "notes"),
        ("metadata.notes[0]", "b"),
        ("metadata.notes[1].deep#key", "deep"),
        ("metadata.notes[1].deep", "c"),
        ("n#key", "n"),
    ]


def test_unknown_engine_request_fails_only_when_hyperscan_is_missing(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_hyperscan(name, *args, **kwargs):
        if name == "hyperscan":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_hyperscan)
    assert DetectorSet().engine == "re"
    with pytest.raises(RuntimeError, match="hyperscan"):
        DetectorSet(engine="hyperscan")


def test_scan_text_can_run_only_the_detectors_whose_prefilter_fired():
    detectors = DetectorSet()
    text = f"key {AWS_KEY} mail {EMAIL}"
    kinds = [detector.kind for detector in detectors.detectors]
    everything = {d.kind for d in detectors.scan_text(text)}
    assert everything == {"aws_access_key", "email"}
    only_email = detectors.scan_text(text, only={kinds.index("email")})
    assert [d.kind for d in only_email] == ["email"]
    assert detectors.scan_text(text, only=set()) == []


def test_text_shorter_than_every_selected_detector_can_match_is_skipped():
    detectors = DetectorSet()
    kinds = [detector.kind for detector in detectors.detectors]
    email = frozenset({kinds.index("email")})
    aws = frozenset({kinds.index("aws_access_key")})
    # The shortest e-mail address the pattern accepts is found; an AWS key needs 20 characters.
    assert [d.kind for d in detectors.scan_text("a@b.co", only=email)] == ["email"]
    assert detectors.scan_text(AWS_KEY[:19], only=aws) == []
    assert [d.kind for d in detectors.scan_text(AWS_KEY, only=aws)] == ["aws_access_key"]
    assert detectors.scan_text("", only=None) == []


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda detector: detector.kind)
def test_every_prefilter_matches_wherever_its_precise_pattern_does(detector):
    """A prefilter may be looser than its pattern, never stricter: a miss would hide a leak."""
    import re

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    flags = re.IGNORECASE if detector.caseless else 0
    prefilter = re.compile(detector.prefilter_pattern, flags)

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.from_regex(re.compile(detector.pattern, flags), fullmatch=True))
    def check(text: str) -> None:
        assert prefilter.search(text), text

    check()
