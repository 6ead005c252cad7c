"""The ``cmf`` command line: a typer app with one module per command group.

Commands parse arguments, call one library function and render its result; no business logic
lives here. Heavy modules are imported inside the commands so ``cmf --help`` stays fast.

Exit codes: 0 ready or clean; 1 checked and blocked; 2 bad input or usage; 3 internal error.
"""

from __future__ import annotations

import sys

from customer_model_factory.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Run the ``cmf`` command line and exit with its code."""
    sys.exit(app(prog_name="cmf", standalone_mode=True))
