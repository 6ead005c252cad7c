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

For the target, reference and measured runs alternate; the figure is the pair whose ratio is the
median of the pairs (three; one with ``--quick``); every pair's ratio is recorded.
"""

from __future__ import annotations

import random
import resource
import time
import uuid
from dataclasses import dataclass
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
    ]
