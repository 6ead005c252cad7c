"""The run ledger's pipeline records: append-only, counters once per step and key, the latest
completion found by key, a status per run."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from customer_model_factory.errors import LedgerError
from customer_model_factory.ledger import PIPELINE_COUNTERS, RunLedger, pipeline_run_id

AT = "2026-05-18T18:45:00Z"
KEY = "sha256:" + "1" * 64


def test_pipeline_ids_depend_on_the_config_and_the_place() -> None:
    one = pipeline_run_id({"a": 1}, "/x")
    assert len(one) == 64 and one == pipeline_run_id({"a": 1}, "/x")
    assert one != pipeline_run_id({"a": 2}, "/x") and one != pipeline_run_id({"a": 1}, "/y")


def test_counters_are_appended_once_per_step_and_key(tmp_path: Path) -> None:
    pid = pipeline_run_id({"a": 1}, str(tmp_path))
    with RunLedger(tmp_path) as ledger:
        ledger.begin_pipeline(pid, config={"a": 1}, at=AT, actor="t")
        ledger.begin_pipeline(pid, config={"a": 1}, at=AT, actor="t")  # idempotent
        ledger.record_pipeline_step(pid, "dataset", "STARTED", step_key=KEY, at=AT, actor="t")
        for state in ("DONE", "REUSED", "REUSED"):
            ledger.record_pipeline_step(
                pid, "dataset", state, step_key=KEY, at=AT, actor="t",
                detail={"outputs": {}}, counters={"traces_validated": 760},
            )  # fmt: skip
        ledger.record_pipeline_step(
            pid, "train", "BLOCKED", step_key=KEY, at=AT, actor="t", counters={"runs_trained": 2}
        )
        status = ledger.pipeline_status(pid)
        assert status is not None
        assert status.counters == {
            **dict.fromkeys(PIPELINE_COUNTERS, 0),
            "traces_validated": 760,
        }
        assert (
            status.steps["dataset"].state == "REUSED" and status.steps["train"].state == "BLOCKED"
        )
        assert status.events == 5
        assert ledger.completed_step("dataset", KEY) is not None
        assert ledger.completed_step("train", KEY) is None  # blocked is never reused
        assert ledger.completed_step("dataset", "sha256:" + "2" * 64) is None
        assert ledger.pipeline_status("f" * 64) is None


def test_pipeline_rows_are_append_only(tmp_path: Path) -> None:
    pid = pipeline_run_id({}, "/")
    with RunLedger(tmp_path) as ledger:
        ledger.begin_pipeline(pid, config={}, at=AT, actor="t")
        ledger.record_pipeline_step(
            pid, "dataset", "DONE", step_key=KEY, at=AT, actor="t", counters={"passes": 1}
        )
    db = sqlite3.connect(tmp_path / "ledger.sqlite")
    try:
        for statement in (
            "UPDATE pipeline_events SET state = 'FAILED'",
            "DELETE FROM pipeline_events",
            "UPDATE pipeline_counters SET amount = 9",
            "DELETE FROM pipeline_runs",
        ):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                db.execute(statement)
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(
                "INSERT INTO pipeline_counters (pipeline_id, step, step_key, name, amount, at)"
                " VALUES (?, 'x', 'k', 'made_up', 1, ?)",
                (pid, AT),
            )
    finally:
        db.close()


def test_bad_pipeline_inputs_are_refused(tmp_path: Path) -> None:
    with RunLedger(tmp_path) as ledger:
        with pytest.raises(LedgerError):
            ledger.begin_pipeline("not-an-id", config={}, at=AT, actor="t")
        pid = pipeline_run_id({}, "/")
        ledger.begin_pipeline(pid, config={}, at=AT, actor="t")
        with pytest.raises(LedgerError):
            ledger.record_pipeline_step(pid, "dataset", "WHATEVER", step_key=KEY, at=AT, actor="t")
        with pytest.raises(LedgerError):
            ledger.record_pipeline_step(pid, "dataset", "DONE", step_key=KEY, at="today", actor="t")


def test_a_ledger_made_before_pipelines_gains_their_tables(tmp_path: Path) -> None:
    with RunLedger(tmp_path) as ledger:
        ledger.list_runs()
    db = sqlite3.connect(tmp_path / "ledger.sqlite")
    for table in ("pipeline_counters", "pipeline_events", "pipeline_runs"):
        db.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        db.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        db.execute(f"DROP TABLE {table}")
    db.commit()
    db.close()
    with RunLedger(tmp_path) as ledger:
        assert ledger.pipeline_status("a" * 64) is None
