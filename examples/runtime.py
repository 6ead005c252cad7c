"""Score requests with a runtime package, as a customer's own service would.

Loads the package (its hash and every model file's digest verified), scores a JSONL file of
requests (trace_id, prompt, response, optional source_refs) and prints one line per decision;
the decisions are also appended to the decision log, as ``cmf score`` does. No network.

    python examples/runtime.py --runtime runtime/ requests.jsonl --decision-log decisions.log
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from customer_model_factory import CMFError, RunContext
from customer_model_factory.stages.runtime import load_runtime, score_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", required=True, type=Path, help="runtime package directory")
    parser.add_argument("requests", type=Path, help="JSONL requests")
    parser.add_argument("--decision-log", type=Path, help="default: the policy's audit log")
    parser.add_argument("--home", type=Path, default=Path(".cmf"), help="factory home")
    args = parser.parse_args(argv)
    context = RunContext.from_environ(home=args.home)
    try:
        runtime = load_runtime(args.runtime, context=context)
        with tempfile.TemporaryDirectory() as scratch:
            decisions = Path(scratch) / "decisions.jsonl"
            outcome = score_file(
                runtime,
                args.requests,
                output=decisions,
                context=context,
                decision_log=args.decision_log,
            )
            lines = decisions.read_text(encoding="utf-8").splitlines()
    except CMFError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    for line in lines:
        record = json.loads(line)
        print(
            f"{record['trace_id']}\t{record['decision']}\t{record['score']:.4f}\t{record['reason']}"
        )
    package = runtime.package
    print(
        f"# {outcome.scored} decisions by runtime {package.runtime_id} "
        f"(package {package.runtime_config.package_version}, {package.runtime_hash}); "
        f"logged to {outcome.decision_log}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
