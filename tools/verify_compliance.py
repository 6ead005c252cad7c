"""Fail when a public symbol lacks a docstring, a test or an API page, or a finding code is
unregistered or undocumented.

Usage: ``python tools/verify_compliance.py --root .`` — exit 0 compliant, 1 problems (one line
each), 2 bad usage. A thin script over
:func:`customer_model_factory.conformance.compliance_problems`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from customer_model_factory.conformance import compliance_problems


def main(argv: list[str] | None = None) -> int:
    """Run the check on ``--root`` and print each problem."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(), help="repository root (DIR)")
    args = parser.parse_args(argv)
    if not (args.root / "core" / "customer_model_factory").is_dir():
        parser.error(f"{args.root}: no core/customer_model_factory/ here")
    problems = compliance_problems(args.root)
    for problem in problems:
        print(problem)
    print(f"compliance: {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
