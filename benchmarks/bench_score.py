"""``cmf score``: the reference runtime end to end with the ``linear`` model, in traces per second.

Set-up, once and NOT timed: the synthetic traces of ``bench_training`` (realistic banking
exchanges with e-mail addresses, UUID customer codes and dotted module paths in the text), a
``linear`` model with the default configuration (2**18 hashed word features per field and 2**18
character features; fitted with SGD on 20,000 train traces: the classifier does not change the
scoring cost), stored by digest in a fresh factory home, a runtime package sealed around it and
written with :func:`write_runtime_package` (model files exported and verified), and the requests
file (``trace_id``, ``prompt``, ``response``, ``source_refs``; 100,000 lines, 20,000 with
``--quick``) with ``require_citations`` on.

* ``score.end_to_end`` (target: >= 10,000 traces/s, expressed as a ratio <= 1 to the time the
  target allows): TIMED, :func:`load_runtime` (package hash, model digests, lane load) and
  :func:`score_file` (every line read and validated, scored in batches of 4,096, decided, the
  decision log appended and fsynced, ``-o`` written atomically), as ``cmf score`` calls them;
  the median of three runs (one with ``--quick``), each with a fresh log.
* ``score.model_reference`` (informational): the loaded model's ``score`` called once on the same
  texts (already in memory), right after each timed run; the ratio is what the runtime adds to
  the bare model call (reading, validating, deciding, logging, writing). On a shared machine the
  absolute figure moves with the load; this ratio much less.
* ``score.parse_reference`` (informational): orjson parsing the same requests file line by line,
  the floor any runtime reading JSONL pays.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from _common import BenchResult

NAME = "score"
TARGET_PER_S = 10_000
FULL_ROWS = 100_000
QUICK_ROWS = 20_000
TRAIN_ROWS = 20_000


def _package(root: Path, home: Path) -> Path:
    """A runtime package around a default-configuration linear model; returns its directory."""
    from bench_training import generate

    from customer_model_factory.builtins.linear_lane import (
        LabelledText,
        LinearLaneConfig,
        fit_linear,
    )
    from customer_model_factory.canonical import canonical_json, sha256_bytes
    from customer_model_factory.context import RunContext
    from customer_model_factory.stages.benchmark.run import reference_histograms
    from customer_model_factory.stages.deployment.models import DeploymentPolicy
    from customer_model_factory.stages.runtime.build import write_runtime_package
    from customer_model_factory.stages.runtime.models import (
        CallbackPolicy,
        CostModel,
        CustomerRuntimePackage,
        RuntimeConfig,
    )
    from customer_model_factory.stages.training.models import ModelArtefact
    from customer_model_factory.store import ArtefactStore

    data = generate(TRAIN_ROWS * 5 // 4)
    examples = [
        LabelledText(p, r, bool(u))
        for p, r, u in zip(data.train_prompts, data.train_responses, data.train_labels, strict=True)
    ]
    model = fit_linear(examples, LinearLaneConfig(classifier="sgd"), seed=0)
    files = model.save(root / "saved")
    store = ArtefactStore(home)
    for name in files:
        store.put_file(root / "saved" / name)
    index = store.put_bytes(canonical_json({"files": files, "lane": "linear"}))
    artefact = ModelArtefact(lane="linear", uri=index.uri, digest=index.digest, files=files)
    scores = model.score(data.test_prompts, data.test_responses)
    chars = [len(p) + len(r) for p, r in zip(data.test_prompts, data.test_responses, strict=True)]
    histograms = reference_histograms(scores, chars, "test")
    assert histograms is not None
    fake = sha256_bytes(b"benchmark")
    package = CustomerRuntimePackage.seal(
        customer_id="bench-customer",
        workspace_id="bench-workspace",
        tenant_id="bench-tenant",
        inputs=[{"kind": "model", "hash": artefact.digest, "uri": artefact.uri}],
        runtime_id="bench-runtime",
        deployment_id="bench-deployment",
        deployment_hash=fake,
        evidence_hash=fake,
        runtime_mode="on_prem",
        runtime_config=RuntimeConfig(
            model=artefact,
            model_dir="model",
            environment="staging",
            package_version="bench-1",
            policy=DeploymentPolicy(
                threshold=0.8,
                abstention_threshold=0.6,
                escalation_threshold=0.4,
                require_citations=True,
                audit_log_uri="",
                evidence_pack_uri="",
                rollback_package_uri="",
                retention_days=30,
                telemetry_mode="disabled",
                thresholds_source="operator",
            ),
            callbacks=CallbackPolicy(external_callbacks_allowed=False, callback_endpoints=()),
            cost_model=CostModel(),
            reference_histograms=histograms,
            reference_result_hash=fake,
        ),
    )
    write_runtime_package(package, root / "runtime", context=RunContext(home=home))
    return root / "runtime"


def _requests(path: Path, rows: int) -> None:
    from bench_training import generate

    data = generate(rows * 5 // 4 + 5, seed=7)
    prompts = data.train_prompts + data.test_prompts
    responses = data.train_responses + data.test_responses
    with path.open("wb") as handle:
        for index in range(rows):
            refs = ["kb://policies/retail/" + str(index % 97)] if index % 3 else []
            handle.write(
                orjson.dumps(
                    {
                        "trace_id": f"req-{index:08d}",
                        "prompt": prompts[index],
                        "response": responses[index],
                        "source_refs": refs,
                    }
                )
                + b"\n"
            )


def _parse(path: Path) -> float:
    started = time.perf_counter()
    with path.open("rb") as handle:
        for line in handle:
            orjson.loads(line)
    return time.perf_counter() - started


def run(quick: bool = False) -> list[BenchResult]:
    from customer_model_factory.context import RunContext
    from customer_model_factory.stages.runtime.score import load_runtime, score_file

    rows = QUICK_ROWS if quick else FULL_ROWS
    repeat = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="cmf-bench-score-") as scratch:
        root = Path(scratch)
        home = root / ".cmf"
        runtime_dir = _package(root, home)
        requests = root / "requests.jsonl"
        _requests(requests, rows)
        context = RunContext(home=home)
        parse_s = statistics.median(_parse(requests) for _ in range(3))
        timings: list[float] = []
        model_timings: list[float] = []
        outcome: Any = None
        texts = [orjson.loads(line) for line in requests.read_bytes().splitlines()]
        prompts = [row["prompt"] for row in texts]
        responses = [row["response"] for row in texts]
        for attempt in range(repeat):
            started = time.perf_counter()
            runtime = load_runtime(runtime_dir, context=context)
            outcome = score_file(
                runtime,
                requests,
                output=root / f"decisions-{attempt}.jsonl",
                context=context,
                decision_log=root / f"log-{attempt}.jsonl",
            )
            timings.append(time.perf_counter() - started)
            started = time.perf_counter()
            runtime.scorer.score(prompts, responses)
            model_timings.append(time.perf_counter() - started)
        measured = statistics.median(timings)
        model_s = statistics.median(model_timings)
        assert outcome is not None
        assert outcome.scored == rows
        per_s = rows / measured
        size_mb = requests.stat().st_size / 1e6
    return [
        BenchResult(
            name="score.end_to_end",
            description=f"load_runtime + score_file on {rows} requests ({size_mb:.0f} MB), "
            f"median of {repeat}",
            reference=f"the time {TARGET_PER_S} traces/s allows",
            reference_s=rows / TARGET_PER_S,
            measured_s=measured,
            target_ratio=1.0,
            extra={
                "traces_per_s": round(per_s),
                "model_only_traces_per_s": round(outcome.throughput_traces_per_s or 0),
                "decisions": outcome.decisions,
                "runs_s": [round(t, 3) for t in timings],
            },
        ),
        BenchResult(
            name="score.model_reference",
            description=f"the model's score() alone on the same {rows} texts, median of {repeat}",
            reference="the bare model call",
            reference_s=model_s,
            measured_s=measured,
            target_ratio=1.0,
            informational=True,
            extra={"model_traces_per_s": round(rows / model_s)},
        ),
        BenchResult(
            name="score.parse_reference",
            description=f"orjson parsing the same {rows} requests line by line",
            reference="orjson parse of the requests",
            reference_s=parse_s,
            measured_s=measured,
            target_ratio=1.0,
            informational=True,
            extra={"parse_traces_per_s": round(rows / parse_s)},
        ),
    ]
