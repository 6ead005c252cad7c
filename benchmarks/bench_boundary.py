"""Boundary verifier against ripgrep over a tree of real text files with planted leaks.

The tree is a copy of the installed site-packages' text files (>= 300 MB; 40 MB with --quick)
under ``benchmarks/data/boundary/tree-*`` (git-ignored), with 200 random identifiers of the
shapes real customer identifiers have (dotted module paths, e-mail addresses, dashed customer
codes with a UUID, underscored model names) each planted in two files, spelled as written, in
upper case, inside a compound (``test_<id>.py``), as directories, or encoded (base64, percent,
``\\u`` escapes). Reference: ``rg -F -i -f RULES -l TREE`` in the same run. Every matching
feature is on (decoding to the default depth, normalisation, ``--confusables``). Figures:

* plaintext rules (``--denylist``): recall 100%, wall <= 2x ripgrep;
* hashed rules (``--hashed-denylist``, no plaintext anywhere): recall 100%, wall <= 5x ripgrep.

Both are timed end to end as ``cmf boundary verify --all-files`` subprocesses (start-up included).
Each timed run is paired with a ripgrep run just before it (five pairs), and each figure is the
pair whose ratio is the median, so a machine that slows down or speeds up during the benchmark
moves both sides of each ratio alike; every pair's ratio is recorded (``pair_ratios``).
"""

from __future__ import annotations

import base64
import json
import random
import shutil
import subprocess
import sys
import sysconfig
import uuid
from functools import partial
from pathlib import Path

from _common import BenchResult, median_pair, time_call, time_command

NAME = "boundary"
HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "boundary"
TEXT_SUFFIXES = (".py", ".pyi", ".txt", ".md", ".rst", ".json", ".toml", ".cfg", ".html", ".js")
TEXT_SUFFIXES += (".css", ".yaml", ".yml", ".c", ".h", ".cpp", ".ini", ".csv", ".xml", ".svg")
RULES = 200
SEED = 20261123


TREE_VERSION = "shapes-v1"


def _word(rng: random.Random, low: int = 4, high: int = 8) -> str:
    # Random consonant words: never a real word, so every hit is a planted one.
    letters = "bcdfghjklmnpqrstvwxz"
    return "".join(rng.choice(letters) for _ in range(rng.randint(low, high)))


def _identifier(rng: random.Random, number: int) -> str:
    """An identifier of one of the four shapes real customer identifiers have."""
    org = _word(rng)
    shape = number % 4
    if shape == 0:  # a pack's module path
        return f"{org}_priv.{_word(rng)}.{_word(rng)}_v{rng.randint(2, 9)}"
    if shape == 1:  # a customer contact's e-mail address
        return f"{_word(rng)}.{_word(rng)}@{org}-{_word(rng, 3, 5)}.example"
    if shape == 2:  # a dashed customer code with a UUID
        code = f"{org.upper()}-{_word(rng, 2, 3).upper()}-{rng.randint(1000, 9999)}"
        return f"{code}-{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    return f"{org}_{_word(rng)}_{_word(rng)}_model_v{rng.randint(1, 9)}"  # a model name


def _spelling(rng: random.Random, identifier: str) -> str:
    """How a leak of ``identifier`` is written in a planted line."""
    form = rng.choice(["as-is", "as-is", "upper", "compound", "directories", "encoded"])
    if form == "upper":
        return identifier.upper()
    if form == "compound":
        return f"tests/test_{identifier}.py"
    if form == "directories" and "@" not in identifier:
        return identifier.replace(".", "/") + ".py"
    if form == "encoded":
        encoding = rng.choice(["base64", "percent", "escape"])
        if encoding == "base64":
            return base64.b64encode(f'{{"id": "{identifier}"}}'.encode()).decode()
        if encoding == "percent":
            return "q=" + "".join(f"%{byte:02X}" for byte in identifier.encode())
        return "".join(f"\\u{ord(ch):04x}" for ch in identifier)
    return identifier


def _sources() -> list[Path]:
    """Real text to copy: the installed site-packages first, then the stdlib and OS docs."""
    paths = sysconfig.get_paths()
    candidates = [
        paths["purelib"],
        paths["stdlib"],
        "/usr/share",
        "/usr/include",
        "/usr/lib/python3",
    ]
    return [Path(p) for p in dict.fromkeys(candidates) if Path(p).is_dir()]


def _is_text_file(path: Path) -> bool:
    try:
        if path.is_symlink() or not path.is_file() or "benchmarks" in path.parts:
            return False
        size = path.stat().st_size
    except OSError:
        return False
    if path.suffix in TEXT_SUFFIXES:
        return 0 < size <= 8_000_000
    # Other files count when they hold no NUL byte (checked by the caller) and are small.
    return (
        path.suffix not in (".pyc", ".so", ".gz", ".zip", ".whl", ".png") and 0 < size <= 2_000_000
    )


def _build_tree(target_mb: int) -> tuple[Path, Path, Path, dict[str, set[str]]]:
    tree = DATA / f"tree-{target_mb}-{TREE_VERSION}"
    manifest = DATA / f"tree-{target_mb}-{TREE_VERSION}.json"
    rules_file = DATA / f"rules-{target_mb}-{TREE_VERSION}.txt"
    hashed_file = DATA / f"hashed-{target_mb}-{TREE_VERSION}.json"
    if manifest.exists() and tree.is_dir():
        data = json.loads(manifest.read_text())
        planted = {path: set(ids) for path, ids in data["planted"].items()}
        _ensure_hashed_denylist(rules_file, hashed_file)
        return tree, rules_file, hashed_file, planted
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    total = 0
    files: list[Path] = []
    for source in _sources():
        for path in sorted(source.rglob("*")):
            if total >= target_mb * 1_000_000:
                break
            inner = path.relative_to(source).parts
            # The stdlib holds site-packages, copied already; a .gitignore would hide leaks.
            if "site-packages" in inner or path.name == ".gitignore" or not _is_text_file(path):
                continue
            raw = path.read_bytes()
            if b"\0" in raw[:8000]:
                continue
            destination = tree / source.name / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(raw)
            files.append(destination)
            total += len(raw)
    rng = random.Random(SEED)
    identifiers = sorted({_identifier(rng, number) for number in range(RULES)})
    planted: dict[str, set[str]] = {}
    for identifier in identifiers:
        for victim in rng.sample(files, 2):
            shape = rng.choice(["# {} here\n", "x = '{}'\n", '"{}": 1\n', "see {}.\n"])
            spelled = _spelling(rng, identifier)
            with victim.open("ab") as handle:
                handle.write(b"\n" + shape.format(spelled).encode())
            planted.setdefault(victim.relative_to(tree).as_posix(), set()).add(identifier)
    rules_file.write_text("".join(f"{identifier}\n" for identifier in identifiers))
    hashed_file.unlink(missing_ok=True)
    _ensure_hashed_denylist(rules_file, hashed_file)
    manifest.write_text(
        json.dumps({"bytes": total, "planted": {k: sorted(v) for k, v in planted.items()}})
    )
    return tree, rules_file, hashed_file, planted


def _ensure_hashed_denylist(rules_file: Path, hashed_file: Path) -> None:
    """(Re)make the hashed denylist when it is missing or from a format this release refuses."""
    from customer_model_factory.boundary import load_hashed_denylist
    from customer_model_factory.errors import CMFError

    if hashed_file.exists():
        try:
            load_hashed_denylist(hashed_file)
        except CMFError:
            pass
        else:
            return
    subprocess.run(
        [*_cmf(), "boundary", "hash-denylist", str(rules_file), "-o", str(hashed_file)],
        check=True,
        capture_output=True,
    )


def _cmf() -> list[str]:
    cmf = shutil.which("cmf")
    return [cmf] if cmf else [sys.executable, "-m", "customer_model_factory"]


def _verify_argv(tree: Path, *rule_args: str, report: Path) -> list[str]:
    return [
        *_cmf(),
        "boundary",
        "verify",
        "--all-files",
        "--root",
        str(tree),
        "--no-plugins",
        "--no-progress",
        "--max-file-size",
        "64000000",
        "--confusables",
        *rule_args,
        "--format",
        "json",
        "--output",
        str(report),
    ]


def _recall(report: Path, planted: dict[str, set[str]]) -> tuple[float, dict[str, object]]:
    data = json.loads(report.read_text())
    found = {leak["path"] for leak in data["leaks"]}
    expected = set(planted)
    hit = len(expected & found)
    extra = sorted(found - expected)[:5]
    return hit / len(expected), {
        "engine": data["engine"],
        "workers": data["parallel_workers"],
        "files": data["files_scanned"],
        "mb": round(data["bytes_scanned"] / 1e6, 1),
        "unexpected": extra,
    }


def _run_rg(argv: list[str]) -> None:
    # rg exits 0 when it lists a file and 1 when none matches: neither is a failure here.
    subprocess.run(argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _run_verify(argv: list[str]) -> None:
    # Exit 1 is the expected verdict (leaks were planted); anything else is a failure.
    completed = subprocess.run(argv, check=False, capture_output=True)
    if completed.returncode != 1:
        raise RuntimeError(completed.stderr.decode(errors="replace"))


def run(quick: bool = False) -> list[BenchResult]:
    rg = shutil.which("rg")
    if rg is None:
        print("skipped boundary benchmark: ripgrep (rg) is not installed (apt-get install ripgrep)")
        return []
    target_mb = 40 if quick else 310
    repeat = 1 if quick else 5
    tree, rules_file, hashed_file, planted = _build_tree(target_mb)
    rg_argv = [rg, "-F", "-i", "-f", str(rules_file), "-l", str(tree)]
    time_command(rg_argv, 1)  # warm the page cache
    results: list[BenchResult] = []
    for name, rule_args, target in (
        ("plaintext", ("--denylist", str(rules_file)), 2.0),
        ("hashed", ("--hashed-denylist", str(hashed_file)), 5.0),
    ):
        report = DATA / f"report-{name}-{target_mb}.json"
        argv = _verify_argv(tree, *rule_args, report=report)
        _run_verify(argv)  # warm-up, and the report recall is read from
        pairs = [
            (time_call(partial(_run_rg, rg_argv)), time_call(partial(_run_verify, argv)))
            for _ in range(repeat)
        ]
        reference, measured = median_pair(pairs, lambda pair: pair[1] / pair[0])
        recall, extra = _recall(report, planted)
        results.append(
            BenchResult(
                name=f"boundary.{name}",
                description=(
                    f"cmf boundary verify --all-files, {RULES} {name} rules over "
                    f"{extra['mb']} MB ({extra['files']} files), {len(planted)} files with leaks"
                ),
                reference="rg -F -i -f RULES -l",
                reference_s=reference,
                measured_s=measured,
                target_ratio=target,
                checks={
                    "recall == 100%": recall == 1.0,
                    "no unexpected leak": not extra["unexpected"],
                },
                extra=extra
                | {
                    "recall": recall,
                    "pair_ratios": sorted(round(cmf_s / rg_s, 3) for rg_s, cmf_s in pairs),
                },
            )
        )
    return results
