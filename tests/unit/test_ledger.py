"""The run ledger: deterministic run ids, append-only events, gates, interruption, publish."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.contributions import MetricConstraint
from customer_model_factory.errors import (
    CanonicalizationError,
    DataFormatError,
    LedgerError,
    PublishConflictError,
    PublishError,
    SchemaVersionError,
)
from customer_model_factory.findings import FINDING_CODES
from customer_model_factory.ledger import (
    LEDGER_FILE,
    LEDGER_SCHEMA_VERSION,
    RUN_STATES,
    GateReceipt,
    Publication,
    RunDetail,
    RunEvent,
    RunLedger,
    RunOwner,
    RunState,
    RunSummary,
    TrainRunRequest,
    build_gate_receipt,
    owner_is_alive,
    train_run_id,
)

REPO = Path(__file__).resolve().parents[2]
T0, T1, T2, T3, T4, T5 = (f"2026-03-01T10:00:0{i}Z" for i in range(6))
DIGEST = "sha256:" + "c" * 64
OTHER_DIGEST = "sha256:" + "d" * 64
F1_AT_LEAST_HALF = (MetricConstraint(metric="f1", op=">=", value=0.5),)


def _request(**changes) -> TrainRunRequest:
    fields = {
        "dataset_hash": "sha256:" + "a" * 64,
        "lane": "linear",
        "base_model_id": None,
        "hyperparameters": {"c": 10.0, "word_ngram_range": [1, 2]},
        "objective_profile": "balanced",
        "seed": 0,
    }
    return TrainRunRequest(**(fields | changes))


def _owner(pid: int = 4242, host: str = "build-host", lease: int = 60) -> RunOwner:
    return RunOwner(host=host, pid=pid, process_start="1", lease_seconds=lease)


class _Liveness:
    """A fake process table: owners are alive unless listed as dead."""

    def __init__(self) -> None:
        self.dead: set[str] = set()

    def __call__(self, owner: RunOwner) -> bool | None:
        return owner.key not in self.dead


@pytest.fixture
def liveness() -> _Liveness:
    return _Liveness()


@pytest.fixture
def ledger(tmp_path: Path, liveness: _Liveness):
    with RunLedger(tmp_path / ".cmf", liveness=liveness) as opened:
        yield opened


def _to_eval_ready(ledger: RunLedger, owner: RunOwner | None = None) -> str:
    owner = owner or _owner()
    run = ledger.request(_request(), at=T0, actor="alice")
    ledger.start(run.run_id, at=T1, actor="alice", owner=owner)
    ledger.mark_eval_ready(
        run.run_id, at=T2, actor="alice", owner=owner, outputs={"weights.npz": DIGEST}
    )
    return run.run_id


def _gate(ledger: RunLedger, run_id: str, f1: float | None) -> RunDetail:
    receipt = build_gate_receipt(
        run_id=run_id,
        criteria=F1_AT_LEAST_HALF,
        observed_metrics={"f1": f1},
        emitted_at_utc=T3,
        evidence_refs=("cmf://sha256/" + "e" * 64,),
    )
    return ledger.record_gate(receipt, actor="gatekeeper")


# ---- run identity ----


def test_run_id_is_sha256_of_the_canonical_request():
    request = _request()
    expected = hashlib.sha256(rfc8785.dumps(request.model_dump(mode="json"))).hexdigest()
    assert train_run_id(request) == expected


def test_same_request_same_id_and_any_change_a_new_one():
    base = train_run_id(_request())
    assert train_run_id(_request(hyperparameters={"word_ngram_range": [1, 2], "c": 10})) == base
    assert train_run_id(_request(hyperparameters={"c": 1.0, "word_ngram_range": [1, 2]})) != base
    assert train_run_id(_request(seed=1)) != base
    assert train_run_id(_request(lane="external")) != base
    assert train_run_id(_request(base_model_digest=DIGEST)) != base
    assert train_run_id(_request(objective_profile="high_recall")) != base
    assert train_run_id(_request(dataset_hash="sha256:" + "b" * 64)) != base


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8), st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=5), max_size=6
    )
)
def test_run_id_ignores_key_order(hyperparameters):
    reordered = dict(reversed(list(hyperparameters.items())))
    assert train_run_id(_request(hyperparameters=hyperparameters)) == train_run_id(
        _request(hyperparameters=reordered)
    )


def test_hyperparameters_without_canonical_form_are_refused():
    with pytest.raises(CanonicalizationError, match="nan"):
        _request(hyperparameters={"c": float("nan")})


# ---- lifecycle ----


def test_a_run_goes_from_queued_to_published(ledger):
    run_id = _to_eval_ready(ledger)
    detail = _gate(ledger, run_id, 0.8)
    assert detail.state == "PASS" and detail.receipt is not None
    assert detail.receipt.gate_status == "PASS" and detail.receipt.train_run_id == run_id
    publication = ledger.publish(
        run_id,
        bundle_id="retail-scorer",
        version="1.0.0",
        content_digest=DIGEST,
        at=T4,
        actor="release-bot",
    )
    assert publication == Publication(
        bundle_id="retail-scorer",
        version="1.0.0",
        content_digest=DIGEST,
        train_run_id=run_id,
        at=T4,
        actor="release-bot",
    )
    detail = ledger.show(run_id)
    assert [e.state for e in detail.events] == [
        "QUEUED",
        "RUNNING",
        "EVAL_READY",
        "PASS",
        "PUBLISHED",
    ]
    assert [e.at for e in detail.events] == [T0, T1, T2, T3, T4]
    assert [e.actor for e in detail.events][-1] == "release-bot"
    assert detail.outputs == {"weights.npz": DIGEST}
    assert detail.publications == (publication,)
    assert detail.counters == {
        "bundle_published": 1,
        "eval_pass": 1,
        "train_completed": 1,
        "train_requested": 1,
        "train_started": 1,
    }
    assert isinstance(detail.events[0], RunEvent)
    assert set(RUN_STATES) == set(RunState.__args__)


def test_the_same_request_converges_on_the_same_run(ledger):
    run_id = _to_eval_ready(ledger)
    _gate(ledger, run_id, 0.9)
    again = ledger.request(_request(), at=T5, actor="bob")
    assert again.run_id == run_id
    assert again.state == "PASS" and not again.needs_training
    assert [e.state for e in again.events].count("QUEUED") == 1
    assert again.counters["train_requested"] == 2
    assert again.created_by == "alice"


def test_a_failed_gate_is_final_and_cannot_be_published(ledger):
    run_id = _to_eval_ready(ledger)
    detail = _gate(ledger, run_id, 0.2)
    assert detail.state == "FAIL"
    assert detail.receipt.reasons == ("f1 = 0.2 fails >= 0.5",)
    with pytest.raises(PublishError) as caught:
        ledger.publish(
            run_id, bundle_id="b", version="1", content_digest=DIGEST, at=T4, actor="bot"
        )
    assert caught.value.code == "TRAIN_PUBLISH_NOT_PASSED" and caught.value.exit_code == 1
    assert caught.value.code in FINDING_CODES
    with pytest.raises(LedgerError, match="never trained again"):
        ledger.start(run_id, at=T5, actor="alice", owner=_owner())
    assert ledger.show(run_id).state == "FAIL"


@pytest.mark.parametrize("state", ["QUEUED", "RUNNING", "EVAL_READY"])
def test_publishing_a_run_without_a_pass_receipt_is_refused(ledger, state):
    run = ledger.request(_request(), at=T0, actor="alice")
    if state != "QUEUED":
        ledger.start(run.run_id, at=T1, actor="alice", owner=_owner())
    if state == "EVAL_READY":
        ledger.mark_eval_ready(run.run_id, at=T2, actor="alice", owner=_owner(), outputs={})
    with pytest.raises(PublishError, match="only a PASS run"):
        ledger.publish(
            run.run_id, bundle_id="b", version="1", content_digest=DIGEST, at=T4, actor="bot"
        )
    assert ledger.show(run.run_id).state == state


def test_publish_is_idempotent_and_refuses_other_content(ledger):
    run_id = _to_eval_ready(ledger)
    _gate(ledger, run_id, 0.9)
    first = ledger.publish(
        run_id, bundle_id="b", version="1", content_digest=DIGEST, at=T4, actor="bot"
    )
    again = ledger.publish(
        run_id, bundle_id="b", version="1", content_digest=DIGEST, at=T5, actor="other"
    )
    assert again == first
    with pytest.raises(PublishConflictError) as caught:
        ledger.publish(
            run_id, bundle_id="b", version="1", content_digest=OTHER_DIGEST, at=T5, actor="bot"
        )
    error = caught.value
    assert (error.existing, error.offered) == (DIGEST, OTHER_DIGEST)
    assert error.code == "TRAIN_PUBLISH_CONFLICT" and error.exit_code == 1
    assert "new version" in str(error)
    # Another version of the same run is a new registry entry, not a new state.
    ledger.publish(
        run_id, bundle_id="b", version="2", content_digest=OTHER_DIGEST, at=T5, actor="bot"
    )
    detail = ledger.show(run_id)
    assert [e.state for e in detail.events].count("PUBLISHED") == 1
    assert len(detail.publications) == 2
    assert detail.counters["publish_conflict"] == 1


def test_another_run_cannot_take_a_published_version(ledger):
    run_id = _to_eval_ready(ledger)
    _gate(ledger, run_id, 0.9)
    ledger.publish(run_id, bundle_id="b", version="1", content_digest=DIGEST, at=T4, actor="x")
    other = ledger.request(_request(seed=9), at=T0, actor="alice").run_id
    ledger.start(other, at=T1, actor="alice", owner=_owner())
    ledger.mark_eval_ready(other, at=T2, actor="alice", owner=_owner(), outputs={})
    _gate(ledger, other, 0.9)
    with pytest.raises(PublishConflictError, match=other):
        ledger.publish(other, bundle_id="b", version="1", content_digest=DIGEST, at=T5, actor="x")


@pytest.mark.parametrize(
    ("bundle_id", "version", "digest"),
    [("", "1", DIGEST), ("b", "1 2", DIGEST), ("b/..", "1", DIGEST), ("b", "1", "sha256:xyz")],
)
def test_publish_validates_its_arguments(ledger, bundle_id, version, digest):
    run_id = _to_eval_ready(ledger)
    _gate(ledger, run_id, 0.9)
    with pytest.raises(LedgerError) as caught:
        ledger.publish(
            run_id, bundle_id=bundle_id, version=version, content_digest=digest, at=T4, actor="bot"
        )
    assert caught.value.code == "TRAIN_LEDGER_INVALID_INPUT"


# ---- illegal transitions ----


def test_illegal_transitions_are_refused_and_counted(ledger):
    run = ledger.request(_request(), at=T0, actor="alice")
    receipt = build_gate_receipt(
        run_id=run.run_id,
        criteria=F1_AT_LEAST_HALF,
        observed_metrics={"f1": 1.0},
        emitted_at_utc=T3,
    )
    with pytest.raises(LedgerError, match="needs EVAL_READY") as caught:
        ledger.record_gate(receipt, actor="gatekeeper")
    assert caught.value.code == "TRAIN_RUN_ILLEGAL_TRANSITION"
    assert caught.value.code in FINDING_CODES
    with pytest.raises(LedgerError, match="not RUNNING"):
        ledger.mark_eval_ready(run.run_id, at=T2, actor="a", owner=_owner(), outputs={})
    assert ledger.counters(run.run_id)["illegal_transition"] == 1
    assert ledger.show(run.run_id).state == "QUEUED"


def test_a_second_different_receipt_is_refused_and_the_same_one_is_a_no_op(ledger):
    run_id = _to_eval_ready(ledger)
    _gate(ledger, run_id, 0.9)
    assert _gate(ledger, run_id, 0.9).state == "PASS"  # identical receipt: no new event
    assert len(ledger.show(run_id).events) == 4
    with pytest.raises(LedgerError, match="another gate receipt"):
        _gate(ledger, run_id, 0.1)
    assert ledger.show(run_id).state == "PASS"


def test_a_receipt_whose_hash_was_edited_is_refused(ledger):
    run_id = _to_eval_ready(ledger)
    receipt = build_gate_receipt(
        run_id=run_id,
        criteria=F1_AT_LEAST_HALF,
        observed_metrics={"f1": 0.1},
        emitted_at_utc=T3,
    )
    forged = receipt.model_copy(update={"gate_status": "PASS"})
    with pytest.raises(LedgerError, match="receipt_hash"):
        ledger.record_gate(forged, actor="mallory")
    assert ledger.show(run_id).state == "EVAL_READY"


def test_gate_receipts_fail_on_undefined_or_missing_metrics():
    run_id = "0" * 64
    receipt = build_gate_receipt(
        run_id=run_id,
        criteria=F1_AT_LEAST_HALF,
        observed_metrics={"f1": None},
        emitted_at_utc=T3,
    )
    assert receipt.gate_status == "FAIL" and "undefined" in receipt.reasons[0]
    assert (
        build_gate_receipt(
            run_id=run_id, criteria=F1_AT_LEAST_HALF, observed_metrics={}, emitted_at_utc=T3
        ).gate_status
        == "FAIL"
    )
    empty = build_gate_receipt(run_id=run_id, criteria=(), observed_metrics={}, emitted_at_utc=T3)
    assert empty.gate_status == "FAIL" and empty.reasons == ("the gate has no criteria",)
    assert receipt.receipt_hash == receipt.compute_hash()
    assert isinstance(receipt, GateReceipt)


# ---- interruption ----


def test_a_run_whose_owner_died_is_interrupted_resumable_and_never_passed(ledger, liveness):
    first = _owner(pid=100)
    run = ledger.request(_request(), at=T0, actor="alice")
    ledger.start(run.run_id, at=T1, actor="alice", owner=first)
    assert ledger.show(run.run_id).status == "RUNNING"
    with pytest.raises(LedgerError, match="live owner"):
        ledger.start(run.run_id, at=T2, actor="bob", owner=_owner(pid=200))
    liveness.dead.add(first.key)
    detail = ledger.show(run.run_id)
    assert detail.state == "RUNNING" and detail.status == "INTERRUPTED"
    assert detail.interrupted and detail.needs_training
    assert "no longer running" in detail.interruption_reason
    assert detail.receipt is None
    assert [s.status for s in ledger.list_runs(status="INTERRUPTED")] == ["INTERRUPTED"]
    second = _owner(pid=200)
    resumed = ledger.start(run.run_id, at=T2, actor="bob", owner=second)
    assert resumed.status == "RUNNING" and not resumed.interrupted
    assert "no longer running" in resumed.events[-1].detail["resumed_because"]
    with pytest.raises(LedgerError, match="another owner"):
        ledger.mark_eval_ready(run.run_id, at=T3, actor="alice", owner=first, outputs={})
    done = ledger.mark_eval_ready(run.run_id, at=T3, actor="bob", owner=second, outputs={})
    assert done.state == "EVAL_READY"
    assert done.counters["train_resumed"] == 1 and done.counters["train_started"] == 2


def test_a_run_without_heartbeat_past_its_lease_is_interrupted(ledger):
    owner = _owner(lease=60)
    run = ledger.request(_request(), at="2026-03-01T10:00:00Z", actor="alice")
    ledger.start(run.run_id, at="2026-03-01T10:00:00Z", actor="alice", owner=owner)
    assert not ledger.show(run.run_id, now="2026-03-01T10:00:59Z").interrupted
    ledger.heartbeat(run.run_id, at="2026-03-01T10:00:50.5Z", owner=owner)
    assert not ledger.show(run.run_id, now="2026-03-01T10:01:50Z").interrupted
    late = ledger.show(run.run_id, now="2026-03-01T10:01:51Z")
    assert late.status == "INTERRUPTED" and "lease 60 s" in late.interruption_reason
    # Without `now`, only a known-dead owner interrupts: the lease is not judged.
    assert not ledger.show(run.run_id).interrupted
    with pytest.raises(LedgerError, match="another owner"):
        ledger.heartbeat(run.run_id, at="2026-03-01T10:02:00Z", owner=_owner(pid=1))


def test_a_killed_training_process_leaves_an_interrupted_run(tmp_path):
    home = tmp_path / ".cmf"
    child = textwrap.dedent(
        f"""
        import sys, time
        from customer_model_factory.ledger import RunLedger, RunOwner, TrainRunRequest
        request = TrainRunRequest(dataset_hash="sha256:" + "a" * 64, lane="linear",
                                  objective_profile="balanced", seed=0)
        with RunLedger({str(home)!r}) as ledger:
            run = ledger.request(request, at="{T0}", actor="child")
            ledger.start(run.run_id, at="{T1}", actor="child", owner=RunOwner.current())
        print(run.run_id, flush=True)
        time.sleep(600)
        """
    )
    env = dict(
        os.environ, PYTHONPATH=f"{REPO / 'core'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        run_id = process.stdout.readline().strip()
        with RunLedger(home) as ledger:
            assert ledger.show(run_id).status == "RUNNING"  # the owner is alive
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
    with RunLedger(home) as ledger:
        detail = ledger.show(run_id)
        assert detail.status == "INTERRUPTED" and detail.state == "RUNNING"
        owner = RunOwner.current()
        resumed = ledger.start(run_id, at=T2, actor="retry", owner=owner)
        assert resumed.status == "RUNNING"
    assert owner_is_alive(owner) is True
    assert owner_is_alive(owner.model_copy(update={"host": "elsewhere"})) is None
    assert owner_is_alive(owner.model_copy(update={"process_start": "-1"})) is False


# ---- storage guarantees ----


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET state = 'PASS'",
        "DELETE FROM events",
        "UPDATE runs SET request_json = '{{}}'",
        "DELETE FROM runs",
        "UPDATE gate_receipts SET gate_status = 'PASS'",
        "DELETE FROM gate_receipts",
        "UPDATE publications SET content_digest = 'x'",
        "DELETE FROM publications",
        "DELETE FROM counters",
        "DELETE FROM heartbeats",
        "DELETE FROM transitions",
        "INSERT INTO transitions VALUES ('FAIL', 'PASS')",
        "INSERT INTO events (run_id, state, at, actor, detail_json)"
        " VALUES ('{run_id}', 'RUNNING', 'x', 'y', '{{}}')",
    ],
)
def test_rows_are_append_only_even_for_direct_sql(ledger, statement):
    owner = _owner()
    run = ledger.request(_request(), at=T0, actor="alice")
    ledger.start(run.run_id, at=T1, actor="alice", owner=owner)
    ledger.heartbeat(run.run_id, at=T1, owner=owner)
    ledger.mark_eval_ready(run.run_id, at=T2, actor="alice", owner=owner, outputs={})
    _gate(ledger, run.run_id, 0.9)
    ledger.publish(
        run.run_id, bundle_id="b", version="1", content_digest=DIGEST, at=T4, actor="bot"
    )
    run_id = run.run_id
    before = ledger.show(run_id)
    with sqlite3.connect(ledger.path) as db, pytest.raises(sqlite3.DatabaseError):
        db.execute(statement.format(run_id=run_id))
    after = ledger.show(run_id)
    assert after.events == before.events and after.receipt == before.receipt


def test_the_ledger_is_sqlite_in_wal_mode(ledger):
    ledger.request(_request(), at=T0, actor="alice")
    with sqlite3.connect(ledger.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == LEDGER_SCHEMA_VERSION
    assert ledger.path.name == LEDGER_FILE


def test_two_connections_converge_on_one_run(tmp_path):
    with RunLedger(tmp_path) as one, RunLedger(tmp_path) as two:
        a = one.request(_request(), at=T0, actor="a")
        b = two.request(_request(), at=T1, actor="b")
        assert a.run_id == b.run_id
        assert len(one.show(a.run_id).events) == 1


def test_an_unknown_schema_version_or_a_non_database_is_refused(tmp_path):
    home = tmp_path / "h"
    with RunLedger(home) as ledger:
        ledger.request(_request(), at=T0, actor="a")
    with sqlite3.connect(home / LEDGER_FILE) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaVersionError, match="99"):
        RunLedger(home).show("0" * 64)
    other = tmp_path / "other"
    other.mkdir()
    (other / LEDGER_FILE).write_bytes(b"this is not a database" * 100)
    with pytest.raises(DataFormatError, match="not a readable run ledger"):
        RunLedger(other).list_runs()


# ---- inputs and listing ----


@pytest.mark.parametrize(
    "at",
    ["2026-03-01 10:00:00Z", "2026-03-01T10:00:00+01:00", "2026-03-01T10:00:00", "yesterday", ""],
)
def test_times_must_be_rfc3339_utc(ledger, at):
    with pytest.raises(LedgerError, match="RFC 3339 UTC") as caught:
        ledger.request(_request(), at=at, actor="alice")
    assert caught.value.code == "TRAIN_LEDGER_INVALID_INPUT"


@pytest.mark.parametrize("actor", ["", "   ", "a\nforged line", "x" * 201])
def test_actors_must_be_one_short_line(ledger, actor):
    with pytest.raises(LedgerError, match="actor"):
        ledger.request(_request(), at=T0, actor=actor)


@pytest.mark.parametrize("run_id", ["0" * 64, "../../etc", "ABC", "'; DROP TABLE runs; --"])
def test_unknown_runs_are_typed_errors(ledger, run_id):
    with pytest.raises(LedgerError) as caught:
        ledger.show(run_id)
    assert caught.value.code == "TRAIN_RUN_UNKNOWN"


def test_listing_is_sorted_and_filterable_and_show_takes_a_prefix(ledger):
    first = ledger.request(_request(), at=T0, actor="a").run_id
    second = ledger.request(_request(seed=5), at=T1, actor="a").run_id
    ledger.start(first, at=T2, actor="a", owner=_owner())
    runs = ledger.list_runs()
    assert all(isinstance(run, RunSummary) for run in runs)
    assert [run.run_id for run in runs] == [first, second]  # most recently changed first
    assert [run.run_id for run in ledger.list_runs(status="QUEUED")] == [second]
    assert ledger.show(first[:8]).run_id == first
    payload = ledger.show(first).model_dump_json()
    assert RunDetail.model_validate_json(payload) == ledger.show(first)


def test_an_interrupted_run_reports_an_error_finding(ledger, liveness):
    owner = _owner(pid=7)
    run = ledger.request(_request(), at=T0, actor="alice")
    ledger.start(run.run_id, at=T1, actor="alice", owner=owner)
    assert ledger.show(run.run_id).findings() == ()
    liveness.dead.add(owner.key)
    (finding,) = ledger.show(run.run_id).findings()
    assert finding.code == "TRAIN_RUN_INTERRUPTED" and finding.severity == "error"
    assert run.run_id in finding.message and finding.meaning


@pytest.mark.parametrize("pid", [0, -1])
def test_owner_pids_that_name_process_groups_are_refused(pid):
    with pytest.raises(ValueError, match="pid"):
        RunOwner(host="h", pid=pid, lease_seconds=1)


def test_a_factory_home_that_is_a_file_is_a_located_error(tmp_path):
    home = tmp_path / "home"
    home.write_text("not a directory")
    with pytest.raises(DataFormatError, match="cannot create the factory home"):
        RunLedger(home).list_runs()
