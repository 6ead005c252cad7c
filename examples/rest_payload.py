"""Build the POST /v1/score body for one request from a runtime package (and, with --post, send
it to a running ``cmf serve``).

The body preserves the customer, workspace, tenant, deployment, model artefact, thresholds,
telemetry, audit-log, evidence and callback-policy fields of the runtime package, plus the
request. Without --post nothing leaves the machine: the body is printed as JSON.

    python examples/rest_payload.py --runtime runtime/ --prompt "..." --response "..."
    python examples/rest_payload.py --runtime runtime/ --prompt "..." --response "..." \\
        --post http://127.0.0.1:8080/v1/score
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from customer_model_factory import CMFError
from customer_model_factory.stages.runtime import build_score_payload, load_runtime_package


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", required=True, type=Path, help="runtime package directory")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--response", required=True)
    parser.add_argument("--trace-id", default="example-request-1")
    parser.add_argument("--source-ref", action="append", default=[], help="repeatable")
    parser.add_argument("--post", metavar="URL", help="send the body to this /v1/score URL")
    args = parser.parse_args(argv)
    try:
        package = load_runtime_package(args.runtime)
        body = build_score_payload(
            package,
            trace_id=args.trace_id,
            prompt=args.prompt,
            response=args.response,
            source_refs=args.source_ref,
        )
    except CMFError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    if args.post is None:
        print(json.dumps(body, indent=2, sort_keys=True))
        return 0
    request = urllib.request.Request(
        args.post,
        data=json.dumps(body).encode("utf-8"),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            print(response.read().decode("utf-8"))
            return 0
    except urllib.error.HTTPError as error:
        with error:
            print(error.read().decode("utf-8"), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
