"""Fail when the docs, examples, schemas and CLI names of a tree drift apart.

Usage: ``python tools/verify_docs_freeze.py --root .`` — exit 0 aligned, 1 drift (one line per
problem), 2 bad usage. A thin script over
:func:`customer_model_factory.conformance.docs_freeze_problems`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from customer_model_factory.conformance import docs_freeze_problems


def main(argv: list[str] | None = None) -> int:
    """Run the check on ``--root`` and print each problem."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(), help="repository root (DIR)")
    args = parser.parse_args(argv)
    if not (args.root / "docs").is_dir():
        parser.error(f"{args.root}: no docs/ directory here")
    problems = docs_freeze_problems(args.root)
    for problem in problems:
        print(problem)
    print(f"docs freeze: {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
