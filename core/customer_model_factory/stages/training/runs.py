"""The run ledger as ``cmf runs list`` and ``cmf runs show`` present it.

Both judge a ``RUNNING`` run at the context's clock: it is reported ``INTERRUPTED`` when its
process is known dead on this host, or when no heartbeat came within its lease. Reading never
creates a factory home: without a ledger there are no runs.
"""

from __future__ import annotations

from customer_model_factory.context import RunContext
from customer_model_factory.errors import LedgerError
from customer_model_factory.ledger import LEDGER_FILE, RunDetail, RunLedger, RunSummary

__all__ = ["list_training_runs", "show_training_run"]


def list_training_runs(*, context: RunContext, status: str | None = None) -> tuple[RunSummary, ...]:
    """Every run of the factory home, most recently changed first (``status`` filters)."""
    if not (context.home / LEDGER_FILE).is_file():
        return ()
    with RunLedger(context.home) as ledger:
        return ledger.list_runs(now=context.now(), status=status)


def show_training_run(run_id: str, *, context: RunContext) -> RunDetail:
    """Everything about one run (``run_id`` may be a unique prefix of 8+ hex digits).

    :raises LedgerError: no such run (``TRAIN_RUN_UNKNOWN``), or an ambiguous prefix.
    """
    if not (context.home / LEDGER_FILE).is_file():
        raise LedgerError(
            f"no run ledger in the factory home {context.home}", code="TRAIN_RUN_UNKNOWN"
        )
    with RunLedger(context.home) as ledger:
        return ledger.show(run_id, now=context.now())
