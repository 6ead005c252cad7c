"""The built-in ``linear`` lane: hashed word and character n-grams and a linear classifier.

A real, small scorer that anyone can retrain bit for bit:

* **Features** (no vocabulary to fit, so nothing but the weights is learned): word n-grams of the
  prompt and, separately, of the response, hashed by scikit-learn's ``HashingVectorizer`` (L2
  normalised), and character n-grams of ``prompt + "\\n" + response``, hashed by
  :func:`char_ngram_features`. Character n-grams are hashed here, vectorised in numpy, rather than
  by ``HashingVectorizer(analyzer="char")``, whose per-n-gram Python loop scores about 5,000
  traces a second; this one keeps batch scoring above 10,000. Each character n-gram (of Unicode
  code points, after lower-casing) is a polynomial hash modulo 2**32, mixed and cut to
  ``char_features_log2`` bits; a trace's character block is its n-gram counts divided by the
  square root of its number of n-grams.
* **Classifier**: scikit-learn ``LogisticRegression`` (lbfgs) or ``SGDClassifier`` (log loss),
  seeded; with the same examples, configuration and seed, training gives the same weights.
* **Files**: ``weights.npz`` (the non-zero coefficients as sorted indices and values, and the
  intercept: plain numpy arrays in a zip with fixed timestamps, so saving the same model twice
  gives the same bytes; loaded with ``allow_pickle=False``) and ``config.json`` (canonical JSON).
  Nothing is pickled.

scikit-learn is the ``train`` extra: it is imported inside the functions that need it.
"""

from __future__ import annotations

import io
import math
import os
import stat
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple, Self

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from customer_model_factory.canonical import canonical_json, sha256_bytes
from customer_model_factory.errors import ArtefactError, ArtefactIntegrityError, InputError
from customer_model_factory.io import atomic_write_bytes

__all__ = [
    "CONFIG_FILE",
    "LANE_FORMAT",
    "WEIGHTS_FILE",
    "LabelledText",
    "LinearLaneConfig",
    "LinearModel",
    "char_ngram_features",
    "examples_from_traces",
    "fit_linear",
]

LANE_FORMAT: Final = "cmf-linear-lane/1"
WEIGHTS_FILE: Final = "weights.npz"
CONFIG_FILE: Final = "config.json"
_ARRAYS: Final = ("coef_index", "coef_value", "intercept")
_BATCH: Final = 8192
_ZIP_TIME: Final = (1980, 1, 1, 0, 0, 0)
_BASE: Final = 0x01000193  # the FNV-1 32-bit prime, as the polynomial base
_MIX32: Final = np.uint32(0x85EBCA6B)  # murmur3's finaliser constants
_MIX32B: Final = np.uint32(0xC2B2AE35)
_GOLDEN: Final = 0x9E3779B9


class LabelledText(NamedTuple):
    """One training example: the exchange and whether it is unsafe."""

    prompt: str
    response: str
    is_unsafe: bool


class LinearLaneConfig(BaseModel):
    """Hyperparameters of the ``linear`` lane (every field has a default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    word_ngram_range: tuple[int, int] = Field(
        default=(1, 2), description="Smallest and largest word n-gram."
    )
    char_ngram_range: tuple[int, int] = Field(
        default=(3, 5), description="Smallest and largest character n-gram; (0, 0) turns off."
    )
    word_features_log2: int = Field(
        default=18, ge=8, le=24, description="log2 of the hashed word features per field."
    )
    char_features_log2: int = Field(
        default=18, ge=8, le=24, description="log2 of the hashed character features."
    )
    lowercase: bool = Field(default=True, description="Lower-case text before hashing.")
    classifier: Literal["logistic", "sgd"] = Field(
        default="logistic", description="logistic: LogisticRegression (lbfgs); sgd: SGD log loss."
    )
    c: float = Field(default=10.0, gt=0, allow_inf_nan=False, description="Inverse L2 (logistic).")
    sgd_alpha: float = Field(default=1e-6, gt=0, allow_inf_nan=False, description="L2 (sgd).")
    max_iter: int = Field(default=1000, ge=1, le=100_000, description="Iteration limit.")
    tol: float = Field(default=1e-4, gt=0, allow_inf_nan=False, description="Stopping tolerance.")
    class_weight: Literal["balanced"] | None = Field(
        default="balanced", description="balanced: weight classes inversely to their frequency."
    )

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        low, high = self.word_ngram_range
        if not 1 <= low <= high <= 5:
            raise ValueError("word_ngram_range must satisfy 1 <= low <= high <= 5")
        low, high = self.char_ngram_range
        if (low, high) != (0, 0) and not 1 <= low <= high <= 8:
            raise ValueError("char_ngram_range must be (0, 0) or satisfy 1 <= low <= high <= 8")
        return self

    @property
    def uses_chars(self) -> bool:
        """Whether character n-grams are on."""
        return self.char_ngram_range != (0, 0)

    @property
    def n_features(self) -> int:
        """Width of the feature vector: prompt words, response words, characters."""
        chars = 1 << self.char_features_log2 if self.uses_chars else 0
        return 2 * (1 << self.word_features_log2) + chars


def examples_from_traces(
    traces: Iterable[Mapping[str, Any]],
    *,
    unsafe_labels: Iterable[str] = ("unsafe",),
    split: str = "train",
) -> list[LabelledText]:
    """Return the examples of one split (``train`` unless told) from trace objects.

    Traces of other splits are left out, so a lane fed through this helper never sees test data.

    :raises InputError: a trace of the split lacks a string ``prompt``, ``response`` or ``label``.
    """
    unsafe = frozenset(unsafe_labels)
    examples = []
    for number, trace in enumerate(traces, start=1):
        if trace.get("split") != split:
            continue
        prompt, response, label = trace.get("prompt"), trace.get("response"), trace.get("label")
        if not (isinstance(prompt, str) and isinstance(response, str) and isinstance(label, str)):
            raise InputError(
                f"trace {number} of split {split!r} needs string prompt, response and label"
            )
        examples.append(LabelledText(prompt, response, label in unsafe))
    return examples


# ---- features ----


class _CharWindows(NamedTuple):
    """The hashed character n-grams of one size, for every start position of the joined texts."""

    index: np.ndarray  # hashed feature of the n-gram starting at each position
    doc: np.ndarray  # the text each start position belongs to
    crossing: np.ndarray  # start positions whose n-gram runs into the next text (to drop)


def _char_windows(
    texts: Sequence[str], low: int, high: int, bits: int
) -> tuple[Iterator[_CharWindows], np.ndarray]:
    """Hash every character n-gram of ``texts``; return the windows and the n-gram count per text.

    The texts are joined and hashed with whole-array operations (a 32-bit polynomial hash of the
    code points, then a multiply-xorshift mix whose top ``bits`` bits are the feature), so the
    cost per n-gram is a handful of machine operations and no Python.
    """
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    windows = np.zeros(len(texts), dtype=np.int64)
    for size in range(low, high + 1):
        windows += np.maximum(lengths - size + 1, 0)

    def generate() -> Iterator[_CharWindows]:
        joined = "".join(texts).encode("utf-32-le", "surrogatepass")
        codes = np.frombuffer(joined, dtype="<u4")
        doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        ends = np.cumsum(lengths)
        running = np.zeros(len(codes), dtype=np.uint32)
        shift = np.uint32(32 - bits)
        for size in range(1, high + 1):
            count = len(codes) - size + 1
            if count <= 0:
                return
            running = running[:count]
            running += codes[size - 1 : size - 1 + count] * np.uint32(pow(_BASE, size - 1, 1 << 32))
            if size < low:
                continue
            mixed = running ^ np.uint32((size * _GOLDEN) & 0xFFFFFFFF)
            mixed *= _MIX32
            mixed ^= mixed >> np.uint32(15)
            mixed *= _MIX32B
            crossing = (ends[:, None] - np.arange(1, size)).ravel()
            crossing = crossing[(crossing >= 0) & (crossing < count)]
            yield _CharWindows((mixed >> shift).astype(np.intp), doc[:count], crossing)

    return generate(), windows


def char_ngram_features(texts: Sequence[str], config: LinearLaneConfig) -> Any:
    """Return the character block of the features as a CSR matrix (documents x 2**bits).

    Cell ``(d, j)``: how many character n-grams of text ``d`` hash to ``j``, divided by the square
    root of the number of n-grams of ``d``. ``texts`` are used as given (lower-case them first when
    the configuration says so).
    """
    from scipy import sparse  # noqa: PLC0415 - scipy comes with scikit-learn (the train extra)

    low, high = config.char_ngram_range
    width = 1 << config.char_features_log2
    generated, windows = _char_windows(texts, low, high, config.char_features_log2)
    scale = 1.0 / np.sqrt(np.maximum(windows, 1))
    rows, columns = [], []
    for item in generated:
        keep = np.ones(len(item.index), dtype=bool)
        keep[item.crossing] = False
        rows.append(item.doc[keep])
        columns.append(item.index[keep])
    docs = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    indices = np.concatenate(columns) if columns else np.zeros(0, dtype=np.intp)
    # COO to CSR sums the duplicates: each cell is a count times the text's scale.
    return sparse.coo_matrix(
        (scale[docs], (docs, indices)), shape=(len(texts), width), dtype=np.float64
    ).tocsr()


def _char_logits(texts: Sequence[str], config: LinearLaneConfig, coef: np.ndarray) -> np.ndarray:
    """``char_ngram_features(texts) @ coef``, computed without building the matrix."""
    low, high = config.char_ngram_range
    generated, windows = _char_windows(texts, low, high, config.char_features_log2)
    sums = np.zeros(len(texts), dtype=np.float64)
    for item in generated:
        weights = coef[item.index]
        weights[item.crossing] = 0.0
        sums += np.bincount(item.doc, weights=weights, minlength=len(texts))
    return sums / np.sqrt(np.maximum(windows, 1))


def _word_vectorizer(config: LinearLaneConfig) -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer  # noqa: PLC0415

    return HashingVectorizer(
        analyzer="word",
        ngram_range=config.word_ngram_range,
        n_features=1 << config.word_features_log2,
        alternate_sign=False,
        norm="l2",
        lowercase=config.lowercase,
        dtype=np.float64,
    )


def _chars_text(prompts: Sequence[str], responses: Sequence[str], lower: bool) -> list[str]:
    if lower:
        return [f"{p}\n{r}".lower() for p, r in zip(prompts, responses, strict=True)]
    return [f"{p}\n{r}" for p, r in zip(prompts, responses, strict=True)]


def _feature_matrix(
    prompts: Sequence[str], responses: Sequence[str], config: LinearLaneConfig
) -> Any:
    """The full feature matrix, built a batch of rows at a time to bound intermediate memory."""
    from scipy import sparse  # noqa: PLC0415

    vectorizer = _word_vectorizer(config)
    chunks = []
    for start in range(0, len(prompts), _BATCH):
        batch_prompts = list(prompts[start : start + _BATCH])
        batch_responses = list(responses[start : start + _BATCH])
        blocks = [vectorizer.transform(batch_prompts), vectorizer.transform(batch_responses)]
        if config.uses_chars:
            texts = _chars_text(batch_prompts, batch_responses, config.lowercase)
            blocks.append(char_ngram_features(texts, config))
        chunks.append(sparse.hstack(blocks, format="csr", dtype=np.float64))
    if not chunks:
        return sparse.csr_matrix((0, config.n_features), dtype=np.float64)
    return sparse.vstack(chunks, format="csr", dtype=np.float64)


# ---- the model ----


class LinearModel:
    """A fitted ``linear`` lane scorer: P(unsafe) of prompt/response pairs.

    :param config: the hyperparameters it was trained with.
    :param coef: the dense coefficient vector (length :attr:`LinearLaneConfig.n_features`).
    :param intercept: the intercept.
    :param seed: the seed it was trained with (recorded in ``config.json``).
    """

    def __init__(
        self, config: LinearLaneConfig, coef: np.ndarray, intercept: float, *, seed: int
    ) -> None:
        coef = np.array(coef, dtype=np.float64)  # a copy: the caller's array stays writeable
        if coef.shape != (config.n_features,):
            raise ValueError(f"coef has shape {coef.shape}, expected ({config.n_features},)")
        if not (np.isfinite(coef).all() and math.isfinite(intercept)):
            raise ValueError("coefficients and intercept must be finite")
        coef.flags.writeable = False
        self.config = config
        self.coef = coef
        self.intercept = float(intercept)
        self.seed = seed
        self._vectorizer: Any = None

    def _logits(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        config = self.config
        if self._vectorizer is None:
            self._vectorizer = _word_vectorizer(config)
        width = 1 << config.word_features_log2
        logits = self._vectorizer.transform(prompts) @ self.coef[:width]
        logits += self._vectorizer.transform(responses) @ self.coef[width : 2 * width]
        if config.uses_chars:
            texts = _chars_text(prompts, responses, config.lowercase)
            logits += _char_logits(texts, config, self.coef[2 * width :])
        return logits + self.intercept

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Return P(unsafe) for each prompt/response pair (float64 array), in batches.

        :raises ValueError: ``prompts`` and ``responses`` differ in length.
        """
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        out = np.empty(len(prompts), dtype=np.float64)
        for start in range(0, len(prompts), _BATCH):
            stop = start + _BATCH
            logits = self._logits(list(prompts[start:stop]), list(responses[start:stop]))
            with np.errstate(over="ignore"):
                out[start:stop] = 1.0 / (1.0 + np.exp(-logits))
        return out

    # ---- files ----

    def weights_bytes(self) -> bytes:
        """Return the exact bytes of ``weights.npz`` (deterministic)."""
        nonzero = np.flatnonzero(self.coef)
        arrays = {
            "coef_index": nonzero.astype("<i8"),
            "coef_value": self.coef[nonzero].astype("<f8"),
            "intercept": np.array([self.intercept], dtype="<f8"),
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            for name in _ARRAYS:
                member = io.BytesIO()
                np.lib.format.write_array(
                    member, np.ascontiguousarray(arrays[name]), allow_pickle=False
                )
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
                info.create_system = 3
                info.external_attr = 0o644 << 16
                archive.writestr(info, member.getvalue())
        return buffer.getvalue()

    def config_bytes(self) -> bytes:
        """Return the exact bytes of ``config.json`` (canonical JSON)."""
        return canonical_json(
            {
                "format": LANE_FORMAT,
                "config": self.config.model_dump(mode="json"),
                "n_features": self.config.n_features,
                "positive_class": "unsafe",
                "seed": self.seed,
            }
        )

    def save(self, directory: str | Path) -> dict[str, str]:
        """Write ``weights.npz`` and ``config.json`` atomically; return file name -> sha256."""
        target = Path(directory)
        files = {CONFIG_FILE: self.config_bytes(), WEIGHTS_FILE: self.weights_bytes()}
        for name, data in files.items():
            atomic_write_bytes(target / name, data)
        return {name: sha256_bytes(data) for name, data in sorted(files.items())}

    @classmethod
    def load(cls, directory: str | Path, *, digests: Mapping[str, str] | None = None) -> Self:
        """Rebuild a scorer from ``weights.npz`` and ``config.json``, never unpickling.

        :param digests: file name -> ``sha256:<hex>``; when given it must name both files, and
            each file's bytes must match.
        :raises ArtefactIntegrityError: a file's bytes differ from its digest.
        :raises ArtefactError: a missing or irregular file, or content that is not this lane's
            format (``TRAIN_WEIGHTS_INVALID``).
        """
        source = Path(directory)
        if digests is not None and set(digests) != {CONFIG_FILE, WEIGHTS_FILE}:
            raise ArtefactError(
                f"digests must name exactly {CONFIG_FILE} and {WEIGHTS_FILE}",
                code="TRAIN_WEIGHTS_INVALID",
                path=source,
            )
        raw = {name: _read_regular(source / name) for name in (CONFIG_FILE, WEIGHTS_FILE)}
        if digests is not None:
            for name, data in raw.items():
                actual = sha256_bytes(data)
                if actual != digests[name]:
                    raise ArtefactIntegrityError(
                        digest=digests[name], actual=actual, path=source / name
                    )
        config, seed = _parse_config(raw[CONFIG_FILE], source / CONFIG_FILE)
        coef, intercept = _parse_weights(raw[WEIGHTS_FILE], config, source / WEIGHTS_FILE)
        return cls(config, coef, intercept, seed=seed)


def _invalid(message: str, path: Path) -> ArtefactError:
    return ArtefactError(message, code="TRAIN_WEIGHTS_INVALID", path=path)


def _read_regular(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ArtefactError("file not found", code="TRAIN_WEIGHTS_INVALID", path=path) from None
    except OSError as error:
        raise _invalid(f"cannot read: {error.strerror}", path) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _invalid("not a regular file", path)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _parse_config(data: bytes, path: Path) -> tuple[LinearLaneConfig, int]:
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise _invalid("not valid JSON", path) from None
    if not isinstance(payload, dict) or payload.get("format") != LANE_FORMAT:
        raise _invalid(f"not a {LANE_FORMAT} config (field 'format')", path)
    try:
        config = LinearLaneConfig.model_validate(payload.get("config"))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "config"
        raise _invalid(f"field 'config.{where}': {first['msg']}", path) from None
    seed = payload.get("seed")
    if type(seed) is not int or seed < 0:
        raise _invalid("field 'seed' must be a non-negative integer", path)
    if payload.get("n_features") != config.n_features:
        raise _invalid("field 'n_features' does not match the config", path)
    return config, seed


def _parse_weights(data: bytes, config: LinearLaneConfig, path: Path) -> tuple[np.ndarray, float]:
    limits = {
        "coef_index": (np.dtype("<i8"), config.n_features),
        "coef_value": (np.dtype("<f8"), config.n_features),
        "intercept": (np.dtype("<f8"), 1),
    }
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = sorted(archive.namelist())
            if names != sorted(f"{name}.npy" for name in _ARRAYS):
                raise _invalid(f"holds {names[:5]}, expected {', '.join(_ARRAYS)}", path)
            for name, (dtype, largest) in limits.items():
                with archive.open(f"{name}.npy") as member:
                    version = np.lib.format.read_magic(member)
                    if version != (1, 0):
                        raise _invalid(f"{name}: unsupported npy version {version}", path)
                    shape, fortran, found = np.lib.format.read_array_header_1_0(member)
                # Check the header before reading, so a forged shape allocates nothing.
                if found != dtype or fortran or len(shape) != 1 or shape[0] > largest:
                    raise _invalid(f"{name}: expected at most {largest} values of {dtype}", path)
                with archive.open(f"{name}.npy") as member:
                    arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        if isinstance(error, ArtefactError):
            raise
        raise _invalid(f"not a readable weights archive ({error})", path) from None
    index, value, intercept = arrays["coef_index"], arrays["coef_value"], arrays["intercept"]
    if intercept.shape != (1,) or len(index) != len(value):
        raise _invalid("coef_index and coef_value differ in length, or intercept is not one", path)
    if len(index) and (
        index[0] < 0 or index[-1] >= config.n_features or np.any(np.diff(index) <= 0)
    ):
        raise _invalid("coef_index must be strictly increasing and inside the features", path)
    if not (np.isfinite(value).all() and np.isfinite(intercept).all()):
        raise _invalid("weights must be finite numbers", path)
    coef = np.zeros(config.n_features, dtype=np.float64)
    coef[index] = value
    return coef, float(intercept[0])


def fit_linear(
    examples: Sequence[LabelledText], config: LinearLaneConfig, seed: int
) -> LinearModel:
    """Train the ``linear`` lane on ``examples`` (pass the ``train`` split only).

    :raises InputError: fewer than two examples, or only one class among them.
    """
    if len(examples) < 2 or len({example.is_unsafe for example in examples}) < 2:
        raise InputError("training needs both unsafe and safe examples")
    if type(seed) is not int or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    prompts = [example.prompt for example in examples]
    responses = [example.response for example in examples]
    labels = np.fromiter((e.is_unsafe for e in examples), dtype=np.int64, count=len(examples))
    features = _feature_matrix(prompts, responses, config)
    classifier = _classifier(config, seed)
    from sklearn.exceptions import ConvergenceWarning  # noqa: PLC0415

    with warnings.catch_warnings():
        # An iteration limit reached is a property of the run, not an error: the weights are
        # what the limit allowed, and the same every time.
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(features, labels)
    coef = np.ascontiguousarray(classifier.coef_[0], dtype=np.float64)
    coef[coef == 0.0] = 0.0  # one zero: -0.0 and 0.0 must save alike
    return LinearModel(config, coef, float(classifier.intercept_[0]), seed=seed)


def _classifier(config: LinearLaneConfig, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression, SGDClassifier  # noqa: PLC0415

    if config.classifier == "logistic":
        return LogisticRegression(
            C=config.c,
            solver="lbfgs",
            max_iter=config.max_iter,
            tol=config.tol,
            class_weight=config.class_weight,
            random_state=seed,
        )
    return SGDClassifier(
        loss="log_loss",
        alpha=config.sgd_alpha,
        max_iter=config.max_iter,
        tol=config.tol,
        class_weight=config.class_weight,
        random_state=seed,
        n_jobs=None,
    )
