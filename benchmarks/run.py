"""Run the performance benchmarks and write ``benchmarks/results.json``.

Every benchmark reports its figure as a ratio to a reference measured in the same run on the same
machine (``python -c pass``, ``orjson`` parsing, ripgrep, a direct call), so the targets hold on
any machine. Usage::

    python benchmarks/run.py                 # every benchmark
    python benchmarks/run.py startup plugins # some of them (results of the others are kept)
    python benchmarks/run.py --quick         # smaller inputs, for a smoke run
    python benchmarks/run.py --record        # also record the figures in benchmarks/results.json

Results go to ``benchmarks/.results/latest.json`` (ignored by git), so running the benchmarks never
rewrites a tracked file; ``--record`` (never with ``--quick``) also updates the committed
``benchmarks/results.json``, the figures a release is measured against.

Exit code 0 when every benchmark that ran met its target, 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORDED = HERE / "results.json"
LATEST = HERE / ".results" / "latest.json"


def _modules() -> dict[str, str]:
    return {path.stem.removeprefix("bench_"): path.stem for path in sorted(HERE.glob("bench_*.py"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a smoke run")
    parser.add_argument(
        "--record",
        action="store_true",
        help="also write the figures into the tracked benchmarks/results.json",
    )
    args = parser.parse_args(argv)
    if args.record and args.quick:
        parser.error("--record keeps full-size figures only; drop --quick")
    sys.path.insert(0, str(HERE))
    modules = _modules()
    unknown = sorted(set(args.names) - set(modules))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(modules)}")
    selected = args.names or list(modules)
    # --record updates the committed figures with this run's only; otherwise the latest figures
    # of every benchmark are kept together in the untracked file.
    source = RECORDED if args.record or not LATEST.exists() else LATEST
    previous = json.loads(source.read_text()) if source.exists() else {}
    results = dict(previous.get("results", {}))
    ok = True
    for name in selected:
        module = importlib.import_module(modules[name])
        started = time.perf_counter()
        for result in module.run(quick=args.quick):
            record = result.as_dict()
            record["quick"] = args.quick
            results[result.name] = record
            ok = ok and result.passed
            verdict = "PASS" if result.passed else "FAIL"
            target = f"target <= {result.target_ratio:.2f}x"
            if result.informational:
                verdict, target = ("INFO" if result.passed else "FAIL"), "no target"
            print(
                f"{verdict}  {result.name}: {result.measured_s:.3f}s vs {result.reference} "
                f"{result.reference_s:.3f}s = {result.ratio:.2f}x ({target}) "
                f"{result.checks or ''} {result.extra or ''}"
            )
        print(f"      ({name} took {time.perf_counter() - started:.1f}s)")
    payload = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpus": __import__("os").cpu_count(),
        },
        "results": dict(sorted(results.items())),
    }
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    LATEST.parent.mkdir(exist_ok=True)
    LATEST.write_text(text)
    print(f"wrote {LATEST.relative_to(HERE.parent)}")
    if args.record:
        RECORDED.write_text(text)
        print(f"recorded {RECORDED.relative_to(HERE.parent)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
