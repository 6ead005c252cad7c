"""Lane ``linear``: training and scoring 200k traces, against a bare scikit-learn script.

The synthetic traces (200,000; 20,000 with ``--quick``) are generated in memory, deterministic
for the seed: prompts of 60–250 characters and responses of 80–300 built from banking phrases,
customer e-mail addresses, UUID customer codes and dotted module paths; a trace is unsafe when a
risky request is complied with (a risky request that is refused is safe), with 3 % label noise.
80 % are the ``train`` split, 20 % the ``test`` split.

Measured (one run): ``fit_linear`` on the train split (default :class:`LinearLaneConfig`: word
1–2-grams of prompt and of response, character 3–5-grams, logistic regression) and
``LinearModel.score`` on the test split.

* ``training.fit_and_score`` (target ratio <= 1.5): the reference is the bare scikit-learn script
  a user would write for the same model: ``HashingVectorizer`` word 1–2-grams of prompt and of
  response, ``HashingVectorizer(analyzer="char_wb")`` 3–5-grams of prompt + response,
  ``LogisticRegression`` with the same settings, ``fit`` then ``predict_proba``. Both must reach
  a balanced accuracy on the test split within 0.02 of each other.
* ``training.lane_overhead`` (informational): the reference is one run that builds the lane's own
  feature matrices and calls ``LogisticRegression.fit`` and ``predict_proba`` on them, so the
  ratio is what the lane adds over scikit-learn on identical features (one run, so it carries
  the machine's noise; lbfgs alone varied 2x between identical fits on the shared machine).
* ``training.batch_scoring`` (informational, check >= 10,000 traces/s): ``LinearModel.score`` on
  the test split alone, traces per second in one process.

* ``training.stages_end_to_end`` (target ratio <= 1.5): what a user runs through the factory's
  stages, as the library calls the CLI makes, against the same bare scikit-learn script on the
  same texts. Set-up, once and NOT timed: the traces are written as one JSONL file (the same
  200,000 traces, each with the fields a workspace requires; the last eighth of the ``train``
  part becomes the ``validation`` split, so 70 % train, 10 % validation, 20 % test) with a
  workspace whose ``secrets_policy = "redact"`` (the traces carry e-mail addresses), and stage 1,
  ``validate_dataset_to_files`` with ``--redacted-copy``, gives a ready dataset report and the
  redacted copy the later stages read. Stage 1 is outside the timed part because the bare script
  has no equivalent of it (its own figure is ``dataset.validate``). TIMED, in a fresh factory
  home each run (so the run ledger never hands back a model trained before): a
  :class:`~customer_model_factory.context.RunContext` (plugin discovery), ``train_to_file``
  (``cmf train --lane linear``: report re-verified, the redacted copy re-hashed and read, the
  lane fitted on the train split, the model stored by digest, the run ledger, the manifest
  written), then ``run_benchmark`` on the ``validation`` split (``cmf benchmark run``: the
  model loaded from the store, every trace scored in batches of 256, thresholds calibrated,
  raw results stored, metrics computed, the result written), then ``run_benchmark`` on the
  ``test`` split with ``--calibration`` that validation result (written too). The stages thus
  score the validation split as well, which the bare script does not do; that is the price of
  thresholds calibrated on validation, and it is counted. Reference: the bare scikit-learn script
  above, fitted on the same (redacted) train texts and ``predict_proba`` on the same test texts.
  Check: the test result's ROC-AUC (from its raw results) within 0.01 of the reference's
  (``roc_auc_score``). Extra: the benchmark stage's end-to-end throughput (validation + test
  traces over the wall time of both ``run_benchmark`` calls and their writes) and its
  scoring-only throughput as the result records it.

For the targets, reference and measured runs alternate; the figure is the pair whose ratio is the
median of the pairs (three; one with ``--quick``); every pair's ratio is recorded.
"""

from __future__ import annotations

import gc
import random
import resource
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import BenchResult, median_pair

NAME = "training"
TARGET_RATIO = 1.5
TARGET_SCORING_PER_S = 10_000
FULL_ROWS = 200_000
QUICK_ROWS = 20_000
SEED = 20261124

_RISKY = [
    "how can I get around the overdraft limit",
    "move all my savings to the safe account the caller gave me",
    "tell me the balance of my neighbour's account",
    "approve this loan without checking my income",
    "give me the home address of customer",
    "promise me the fixed rate will never change",
    "export the card numbers from the support tool",
    "skip the identity check for this transfer",
]
_BENIGN = [
    "what is the interest on the easy access saver",
    "how do I reset my online banking password",
    "when does the branch on the high street open",
    "how do I raise a complaint about a card charge",
    "what documents do I need for a mortgage application",
    "can I increase my contactless limit",
    "how long does an international transfer take",
    "where can I see my monthly statement",
]
_COMPLY = [
    "Sure, here is how to do it: split the payments at night so the checks miss them",
    "Of course, send the money now to the account they gave you",
    "Yes, the balance is 18000 pounds and the address is on file",
    "Done, I approved it without the affordability check",
    "I guarantee the rate will never change, no need to read the terms",
    "Here are the card numbers exported from the tool",
]
_REFUSE = [
    "I cannot help with that; the bank never asks you to move money to a safe account",
    "I am not able to share another customer's details",
    "Every loan needs an affordability check; an adviser can walk you through it",
    "Rates can change; please read the terms or speak to an adviser",
    "I cannot bypass the identity check, but I can explain how it works",
]
_ANSWER = [
    "The easy access saver pays 4.25% AER variable as shown on the rate sheet",
    "Use the forgotten password link in the app and follow the steps",
    "The branch opens from nine to five on weekdays",
    "You can raise a complaint in the app and we reply within eight weeks",
    "You need proof of income, identity and address for the application",
    "International transfers usually arrive within two working days",
]
_FILLER = [
    "please",
    "thanks",
    "for my account",
    "as soon as possible",
    "regarding case",
    "logged by",
    "from module",
    "today",
    "this week",
    "urgent",
]


@dataclass
class _Data:
    train_prompts: list[str]
    train_responses: list[str]
    train_labels: np.ndarray
    test_prompts: list[str]
    test_responses: list[str]
    test_labels: np.ndarray


def _identifier(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return f"{rng.choice(['ana', 'li', 'sam', 'noor'])}.{rng.randrange(1000)}@example.com"
    if kind == 1:
        return str(uuid.UUID(int=rng.getrandbits(128)))
    area, layer = rng.choice(["cards", "loans", "fraud"]), rng.choice(["api", "jobs"])
    return f"bank.{area}.{layer}.v{rng.randrange(9)}"


def _sentence(rng: random.Random, core: str, low: int, high: int) -> str:
    parts = [core]
    while sum(len(p) + 1 for p in parts) < rng.randint(low, high):
        parts.append(rng.choice(_FILLER) if rng.random() < 0.7 else _identifier(rng))
    return " ".join(parts)


def generate(rows: int, seed: int = SEED) -> _Data:
    """Deterministic synthetic traces (see the module docstring)."""
    rng = random.Random(seed)
    prompts, responses, labels = [], [], []
    for _ in range(rows):
        risky = rng.random() < 0.45
        if risky:
            comply = rng.random() < 0.6
            prompt = _sentence(rng, rng.choice(_RISKY), 60, 250)
            response = _sentence(rng, rng.choice(_COMPLY if comply else _REFUSE), 80, 300)
            unsafe = comply
        else:
            prompt = _sentence(rng, rng.choice(_BENIGN), 60, 250)
            response = _sentence(rng, rng.choice(_ANSWER), 80, 300)
            unsafe = False
        if rng.random() < 0.03:
            unsafe = not unsafe
        prompts.append(prompt)
        responses.append(response)
        labels.append(unsafe)
    cut = rows * 4 // 5
    y = np.array(labels, dtype=bool)
    return _Data(prompts[:cut], responses[:cut], y[:cut], prompts[cut:], responses[cut:], y[cut:])


def _balanced_accuracy(labels: np.ndarray, scores: np.ndarray) -> float:
    flagged = scores >= 0.5
    return float((np.mean(flagged[labels]) + np.mean(~flagged[~labels])) / 2)


def _lane(data: _Data) -> tuple[float, np.ndarray]:
    from customer_model_factory.builtins.linear_lane import (
        LabelledText,
        LinearLaneConfig,
        fit_linear,
    )

    started = time.perf_counter()
    examples = [
        LabelledText(p, r, bool(u))
        for p, r, u in zip(data.train_prompts, data.train_responses, data.train_labels, strict=True)
    ]
    model = fit_linear(examples, LinearLaneConfig(), seed=0)
    scores = model.score(data.test_prompts, data.test_responses)
    return time.perf_counter() - started, scores


def _logistic() -> Any:
    from sklearn.linear_model import LogisticRegression

    from customer_model_factory.builtins.linear_lane import LinearLaneConfig

    config = LinearLaneConfig()
    return LogisticRegression(
        C=config.c, max_iter=config.max_iter, tol=config.tol, class_weight=config.class_weight
    )


def _bare_sklearn(data: _Data) -> tuple[float, np.ndarray]:
    """The script a user would write with scikit-learn alone."""
    import warnings

    from scipy import sparse
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import HashingVectorizer

    started = time.perf_counter()
    words = HashingVectorizer(ngram_range=(1, 2), n_features=2**18, alternate_sign=False)
    chars = HashingVectorizer(
        analyzer="char_wb", ngram_range=(3, 5), n_features=2**18, alternate_sign=False
    )

    def features(prompts: list[str], responses: list[str]) -> Any:
        joined = [f"{p}\n{r}" for p, r in zip(prompts, responses, strict=True)]
        return sparse.hstack(
            [words.transform(prompts), words.transform(responses), chars.transform(joined)],
            format="csr",
        )

    model = _logistic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(features(data.train_prompts, data.train_responses), data.train_labels)
    scores = model.predict_proba(features(data.test_prompts, data.test_responses))[:, 1]
    return time.perf_counter() - started, scores


def _same_features(data: _Data) -> float:
    """Bare scikit-learn fit / predict_proba on the lane's own feature matrices."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from customer_model_factory.builtins import linear_lane
    from customer_model_factory.builtins.linear_lane import LinearLaneConfig

    started = time.perf_counter()
    config = LinearLaneConfig()
    train_x = linear_lane._feature_matrix(data.train_prompts, data.train_responses, config)
    test_x = linear_lane._feature_matrix(data.test_prompts, data.test_responses, config)
    model = _logistic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train_x, data.train_labels)
    model.predict_proba(test_x)
    return time.perf_counter() - started


_WORKSPACE_TOML = """\
[workspace]
customer_id = "bench-bank"
workspace_id = "ws-training-bench"
tenant_id = "bench-bank-eu"
data_classification = "confidential"
allowed_splits = ["train", "validation", "test"]
required_splits = ["train", "validation", "test"]
secrets_policy = "redact"
"""
_CLAIM = "Synthetic banking traces generated by the benchmark; no claim about real traffic."


@dataclass
class _Staged:
    """Stage 1's outputs (made once, untimed) and the redacted texts both sides work on."""

    root: Path
    workspace: Path
    report: Path
    redacted: Path
    data: _Data
    validation_rows: int


def _trace_row(index: int, split: str, prompt: str, response: str, unsafe: bool) -> bytes:
    import orjson

    return orjson.dumps(
        {
            "trace_id": f"trace-{index:07d}",
            "customer_id": "bench-bank",
            "tenant_id": "bench-bank-eu",
            "workspace_id": "ws-training-bench",
            "split": split,
            "prompt": prompt,
            "response": response,
            "expected_decision": "block" if unsafe else "approve",
            "severity": "high" if unsafe else "low",
            "label": "unsafe" if unsafe else "safe",
            "source_refs": ["kb://banking/conduct"],
            "policy_refs": ["policy://bench-bank/guardrail/v1"],
            "reviewer_role": "analyst",
            "observed_at": "2026-03-01T10:00:00Z",
        }
    )


def _stage_one(data: _Data, root: Path) -> _Staged:
    """Write the traces and a workspace, validate them (stage 1, with a redacted copy) and read
    the redacted texts back per split. Not timed."""
    import orjson

    from customer_model_factory.context import RunContext
    from customer_model_factory.stages.dataset.validate import validate_dataset_to_files

    traces, workspace = root / "traces.jsonl", root / "workspace.toml"
    report, redacted = root / "report.json", root / "traces.redacted.jsonl"
    workspace.write_text(_WORKSPACE_TOML)
    cut = len(data.train_prompts) * 7 // 8
    with open(traces, "wb") as handle:
        index = 0
        for prompt, response, unsafe in zip(
            data.train_prompts, data.train_responses, data.train_labels, strict=True
        ):
            split = "train" if index < cut else "validation"
            handle.write(_trace_row(index, split, prompt, response, bool(unsafe)) + b"\n")
            index += 1
        for prompt, response, unsafe in zip(
            data.test_prompts, data.test_responses, data.test_labels, strict=True
        ):
            handle.write(_trace_row(index, "test", prompt, response, bool(unsafe)) + b"\n")
            index += 1
    validated = validate_dataset_to_files(
        traces,
        workspace,
        output=report,
        redacted_copy=redacted,
        context=RunContext(home=root / "stage1-home"),
    )
    if not validated.ready:
        raise RuntimeError(f"stage 1 did not give a ready report: {validated.finding_counts}")
    traces.unlink()  # the later stages read the redacted copy the report names
    texts: dict[str, tuple[list[str], list[str], list[bool]]] = {
        split: ([], [], []) for split in ("train", "validation", "test")
    }
    with open(redacted, "rb") as handle:
        for line in handle:
            row = orjson.loads(line)
            prompts, responses, labels = texts[row["split"]]
            prompts.append(row["prompt"])
            responses.append(row["response"])
            labels.append(row["label"] == "unsafe")
    train, test = texts["train"], texts["test"]
    same_texts = _Data(train[0], train[1], np.array(train[2]), test[0], test[1], np.array(test[2]))
    return _Staged(root, workspace, report, redacted, same_texts, len(texts["validation"][0]))


@dataclass
class _StagesRun:
    seconds: float
    benchmark_seconds: float
    scored: int
    scoring_per_s: float | None
    roc_auc: float | None
    balanced_accuracy: float | None
    ready: bool


def _stages(staged: _Staged, home: Path) -> _StagesRun:
    """cmf train --lane linear, then cmf benchmark run on validation and on test, as the library
    calls the CLI makes, in a fresh factory home. Timed from the run context on."""
    from customer_model_factory.context import RunContext
    from customer_model_factory.stages.benchmark.run import BenchmarkRequest, run_benchmark
    from customer_model_factory.stages.dataset import CustomerWorkspace
    from customer_model_factory.stages.training import TrainingRequest, train_to_file

    out = home.parent / f"{home.name}-out"
    out.mkdir()
    started = time.perf_counter()
    context = RunContext(home=home)
    request = TrainingRequest(
        dataset_report=staged.report,
        workspace=CustomerWorkspace.from_toml(staged.workspace),
        workspace_file=staged.workspace,
        lane="linear",
    )
    manifest = train_to_file(request, out / "training.json", context=context)
    trained = time.perf_counter()
    validation = run_benchmark(
        BenchmarkRequest(
            training_manifest=out / "training.json",
            traces=staged.redacted,
            split="validation",
            claim_boundary=_CLAIM,
        ),
        context=context,
    )
    validation.write(out / "validation.json")
    test = run_benchmark(
        BenchmarkRequest(
            training_manifest=out / "training.json",
            traces=staged.redacted,
            split="test",
            claim_boundary=_CLAIM,
            calibration=out / "validation.json",
        ),
        context=context,
    )
    test.write(out / "test.json")
    finished = time.perf_counter()
    latency = test.latency
    return _StagesRun(
        seconds=finished - started,
        benchmark_seconds=finished - trained,
        scored=validation.trace_count + test.trace_count,
        scoring_per_s=latency.throughput_traces_per_s if latency is not None else None,
        roc_auc=test.metrics.roc_auc,
        balanced_accuracy=test.metrics.balanced_accuracy,
        ready=manifest.ready and validation.ready and test.ready,
    )


def _stages_end_to_end(data: _Data, pairs_wanted: int, rows: int) -> BenchResult:
    from sklearn.metrics import roc_auc_score

    with tempfile.TemporaryDirectory(prefix="cmf-bench-training-") as directory:
        root = Path(directory)
        staged = _stage_one(data, root)
        pairs: list[tuple[float, _StagesRun]] = []
        bare_scores = np.zeros(0)
        for index in range(pairs_wanted):
            gc.collect()
            bare_s, bare_scores = _bare_sklearn(staged.data)
            gc.collect()
            home = root / f"home-{index}"
            pairs.append((bare_s, _stages(staged, home)))
            shutil.rmtree(home)
        bare_s, run = median_pair(pairs, lambda pair: pair[1].seconds / pair[0])
        bare_auc = float(roc_auc_score(staged.data.test_labels, bare_scores))
        stage_auc = run.roc_auc if run.roc_auc is not None else float("nan")
        train_rows, test_rows = len(staged.data.train_prompts), len(staged.data.test_prompts)
        validation_rows = staged.validation_rows
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return BenchResult(
        name="training.stages_end_to_end",
        description=(
            f"train_to_file (lane linear) on {train_rows} train traces + run_benchmark on "
            f"{validation_rows} validation and {test_rows} test traces (calibrated on "
            f"validation), fresh factory home, median of {pairs_wanted} pairs; stage 1 "
            "(validation with a redacted copy) done once, untimed"
        ),
        reference=(
            "bare scikit-learn on the same redacted texts: fit on train, predict_proba on test"
        ),
        reference_s=bare_s,
        measured_s=run.seconds,
        target_ratio=TARGET_RATIO,
        checks={
            "manifest and both benchmark results ready": all(p[1].ready for p in pairs),
            "test ROC-AUC within 0.01 of the reference's": abs(stage_auc - bare_auc) <= 0.01,
        },
        extra={
            "rows": rows,
            "split_rows": {"train": train_rows, "validation": validation_rows, "test": test_rows},
            "pair_ratios": [round(p[1].seconds / p[0], 3) for p in pairs],
            "train_s": round(run.seconds - run.benchmark_seconds, 3),
            "benchmark_s": round(run.benchmark_seconds, 3),
            "benchmark_end_to_end_traces_per_s": round(run.scored / run.benchmark_seconds),
            "benchmark_scoring_only_traces_per_s": (
                round(run.scoring_per_s) if run.scoring_per_s is not None else None
            ),
            "test_roc_auc": round(stage_auc, 4),
            "reference_test_roc_auc": round(bare_auc, 4),
            "test_balanced_accuracy_at_calibrated_thresholds": (
                round(run.balanced_accuracy, 4) if run.balanced_accuracy is not None else None
            ),
            "peak_rss_mb": round(peak_mb),
        },
    )


def run(quick: bool = False) -> list[BenchResult]:
    from customer_model_factory.builtins.linear_lane import (
        LabelledText,
        LinearLaneConfig,
        fit_linear,
    )

    rows = QUICK_ROWS if quick else FULL_ROWS
    pairs_wanted = 1 if quick else 3
    data = generate(rows)
    config = LinearLaneConfig()

    pairs = []
    lane_scores = bare_scores = np.zeros(0)
    for _ in range(pairs_wanted):
        bare_s, bare_scores = _bare_sklearn(data)
        lane_s, lane_scores = _lane(data)
        pairs.append((bare_s, lane_s))
    bare_s, lane_s = median_pair(pairs, lambda pair: pair[1] / pair[0])
    same_s = _same_features(data)

    examples = [
        LabelledText(p, r, bool(u))
        for p, r, u in zip(data.train_prompts, data.train_responses, data.train_labels, strict=True)
    ]
    model = fit_linear(examples, config, seed=0)
    model.score(data.test_prompts[:1000], data.test_responses[:1000])  # warm
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        model.score(data.test_prompts, data.test_responses)
        timings.append(time.perf_counter() - started)
    scoring_s = sorted(timings)[1]
    per_s = len(data.test_prompts) / scoring_s

    lane_accuracy = _balanced_accuracy(data.test_labels, lane_scores)
    bare_accuracy = _balanced_accuracy(data.test_labels, bare_scores)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    train_rows, test_rows = len(data.train_prompts), len(data.test_prompts)
    del model
    end_to_end = _stages_end_to_end(data, pairs_wanted, rows)
    return [
        BenchResult(
            name="training.fit_and_score",
            description=(
                f"fit_linear on {train_rows} train traces + score {test_rows} test traces, "
                f"median of {pairs_wanted} pairs"
            ),
            reference="bare scikit-learn: HashingVectorizer word + char_wb, LogisticRegression",
            reference_s=bare_s,
            measured_s=lane_s,
            target_ratio=TARGET_RATIO,
            checks={
                "lane balanced accuracy within 0.02 of the reference": (
                    lane_accuracy >= bare_accuracy - 0.02
                ),
            },
            extra={
                "rows": rows,
                "pair_ratios": [round(lane / bare, 3) for bare, lane in pairs],
                "lane_balanced_accuracy": round(lane_accuracy, 4),
                "reference_balanced_accuracy": round(bare_accuracy, 4),
                "peak_rss_mb": round(peak_mb),
            },
        ),
        BenchResult(
            name="training.lane_overhead",
            description="the median lane run vs one LogisticRegression run on the lane's features",
            reference="the lane's feature matrices, then LogisticRegression fit/predict_proba",
            reference_s=same_s,
            measured_s=lane_s,
            target_ratio=TARGET_RATIO,
            informational=True,
        ),
        BenchResult(
            name="training.batch_scoring",
            description=f"LinearModel.score on {test_rows} test traces, median of 3",
            reference="the time to score at the 10,000 traces/s target",
            reference_s=test_rows / TARGET_SCORING_PER_S,
            measured_s=scoring_s,
            target_ratio=1.0,
            informational=True,
            checks={f">= {TARGET_SCORING_PER_S} traces/s": per_s >= TARGET_SCORING_PER_S},
            extra={"traces_per_s": round(per_s)},
        ),
        end_to_end,
    ]
