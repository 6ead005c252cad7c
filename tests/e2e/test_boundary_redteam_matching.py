"""Red team: identifiers hidden by encoding, Unicode tricks and spelling, in real git repositories.

Each case plants an identifier (generated per run, never committed) in a real repository and
runs ``cmf boundary verify`` the way CI does, with a plaintext denylist and with a hashed one:
the exit code, the finding (path, line, the decoding that revealed it) and the absence of the
identifier from every output (text, JSON and SARIF, stdout, stderr and report files) are
asserted. A generated corpus then shows plaintext and hashed rules give identical findings.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from customer_model_factory.boundary import Scope, VerifyOptions, gather_rules, verify
from customer_model_factory.cli import app

runner = CliRunner()


def _word(n: int = 7) -> str:
    return "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(n))


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _repo(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.name", "Red Team")
    _git(repo, "config", "user.email", "red@example.invalid")
    for relative, content in {"README.md": "# public\n", **files}.items():
        path = repo / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "public tree")
    return repo


def _secrets_of(identifier: str) -> list[str]:
    """Texts that must appear in no output: the identifier in its usual spellings and each of
    its generated words (runs of five or more consonants, never there by chance)."""
    words = re.findall(r"[bcdfghjklmnpqrstvwxz]{5,}", identifier.lower())
    spellings = {identifier, identifier.lower(), identifier.upper(), *words}
    return sorted(spellings | {w.upper() for w in words})


@dataclass
class Run:
    exit_code: int
    outputs: dict[str, str]  # format -> everything it printed or wrote

    def json_leaks(self) -> list[dict[str, object]]:
        return json.loads(self.outputs["json-report"] or self.outputs["json"])["leaks"]


def _rules_args(tmp_path: Path, identifiers: list[str], mode: str, *flags: str) -> list[str]:
    listing = tmp_path / f"private-{mode}.txt"
    listing.write_text(
        "".join(f"{identifier}  # rule-{n}\n" for n, identifier in enumerate(identifiers)),
        encoding="utf-8",
    )
    sep = ["--separator-insensitive"] if "--separator-insensitive" in flags else []
    if mode == "plaintext":
        return ["--denylist", str(listing), *sep]
    hashed = tmp_path / f"hashed-{secrets.token_hex(3)}.json"
    made = runner.invoke(app, ["boundary", "hash-denylist", str(listing), "-o", str(hashed), *sep])
    assert made.exit_code == 0, made.output
    text = hashed.read_text()
    for identifier in identifiers:
        for secret in _secrets_of(identifier):
            assert secret not in text
    return ["--hashed-denylist", str(hashed)]


def _verify(repo: Path, tmp_path: Path, rule_args: list[str], *flags: str) -> Run:
    """Run the verifier three times: text to the terminal, JSON and SARIF to report files."""
    extra = [flag for flag in flags if flag != "--separator-insensitive"]
    base = ["boundary", "verify", "--root", str(repo), "--no-plugins", "--no-progress"]
    outputs: dict[str, str] = {}
    codes = set()
    for fmt in ("text", "json", "sarif"):
        report = tmp_path / f"report-{secrets.token_hex(3)}.{fmt}"
        to_file = [] if fmt == "text" else ["-o", str(report)]
        result = runner.invoke(app, [*base, *rule_args, *extra, "--format", fmt, *to_file])
        codes.add(result.exit_code)
        outputs[fmt] = result.output
        outputs[f"{fmt}-report"] = report.read_text() if report.exists() else ""
    assert len(codes) == 1, codes
    return Run(codes.pop(), outputs)


def _verify_json(repo: Path, rule_args: list[str], *flags: str) -> Run:
    """One run, the JSON report on stdout (the cases that check findings more than formats)."""
    extra = [flag for flag in flags if flag != "--separator-insensitive"]
    base = ["boundary", "verify", "--root", str(repo), "--no-plugins", "--no-progress"]
    result = runner.invoke(app, [*base, *rule_args, *extra, "--format", "json"])
    return Run(result.exit_code, {"json": result.output, "json-report": ""})


def _assert_nothing_leaks(run: Run, identifiers: list[str]) -> None:
    for identifier in identifiers:
        for secret in _secrets_of(identifier):
            for name, output in run.outputs.items():
                assert secret not in output, f"{name} output shows identifier text"


MODES = ["plaintext", "hashed"]


# ---- class 3: encoded forms ----


def _percent(text: str) -> str:
    """Every byte percent-encoded (urllib.parse.quote keeps letters, digits and '_.-')."""
    return "".join(f"%{byte:02X}" for byte in text.encode())


def _json_escapes(text: str) -> str:
    return "".join(f"\\u{ord(ch):04x}" for ch in text)


def _python_escapes(text: str) -> str:
    return "".join(f"\\x{ord(ch):02x}" for ch in text)


def _entities(text: str) -> str:
    return "".join(f"&#{ord(ch)};" if n % 2 else f"&#x{ord(ch):x};" for n, ch in enumerate(text))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


ENCODINGS: list[tuple[str, str, Callable[[str], str]]] = [
    ("percent", "q.txt", lambda i: f"see https://x.example/api?customer={_percent(i)}&x=1\n"),
    ("json-escape", "d.json", lambda i: f'{{"name": "{_json_escapes(i)}"}}\n'),
    ("json-escape", "s.py", lambda i: f'NAME = "{_python_escapes(i)}"\n'),
    ("html-entity", "p.html", lambda i: f"<p>customer {_entities(i)}</p>\n"),
    ("base64", "t.yaml", lambda i: f'token: "{_b64(json.dumps({"customer": i}))}"\n'),
    ("base64", "jwt.txt", lambda i: f"Bearer x.{_b64url(json.dumps({'sub': i}))}.y\n"),
    ("base64>percent", "n.txt", lambda i: f"blob={_b64('ref=' + _percent(i))}\n"),
    ("percent>base64", "m.txt", lambda i: f"u={_percent(_b64('id: ' + i))}\n"),
    (
        "html-entity>json-escape",
        "h.html",
        lambda i: f"<i>{_json_escapes(i).replace(chr(92), '&#92;')}</i>\n",
    ),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("decoding", "name", "encode"), ENCODINGS)
def test_encoded_identifiers_are_found_naming_the_decoding(
    tmp_path: Path, mode: str, decoding: str, name: str, encode: Callable[[str], str]
) -> None:
    identifier = f"{_word()}_priv.{_word()}.model_v3"
    repo = _repo(tmp_path, {f"src/{name}": f"# header\nplain line\n{encode(identifier)}"})
    run = _verify(repo, tmp_path, _rules_args(tmp_path, [identifier], mode))
    assert run.exit_code == 1, run.outputs["text"]
    leaks = run.json_leaks()
    assert [(leak["path"], leak["line"], leak["decoding"]) for leak in leaks] == [
        (f"src/{name}", 3, decoding)
    ]
    assert f"revealed by {decoding} decoding" in run.outputs["text"]
    _assert_nothing_leaks(run, [identifier])


@pytest.mark.parametrize("mode", MODES)
def test_decode_depth_is_bounded_and_can_be_switched_off(tmp_path: Path, mode: str) -> None:
    identifier = f"{_word()}-{_word(3).upper()}-4417"
    nested = _b64("a=" + _percent(_b64("x " + identifier)))  # three encodings deep
    repo = _repo(tmp_path, {"deep.txt": f"{nested}\n", "flat.txt": f"{_b64(identifier)}\n"})
    rules = _rules_args(tmp_path, [identifier], mode)
    deep = _verify(repo, tmp_path, rules)
    assert deep.exit_code == 1
    assert {(leak["path"], leak["decoding"]) for leak in deep.json_leaks()} == {
        ("deep.txt", "base64>percent>base64"),
        ("flat.txt", "base64"),
    }
    shallow = _verify(repo, tmp_path, rules, "--max-decode-depth", "2")
    assert {leak["path"] for leak in shallow.json_leaks()} == {"flat.txt"}
    off = _verify(repo, tmp_path, rules, "--max-decode-depth", "0")
    assert off.exit_code == 0, off.outputs["text"]
    _assert_nothing_leaks(deep, [identifier])


def test_encoded_identifier_in_a_file_name_is_redacted_whole(tmp_path: Path) -> None:
    identifier = f"{_word()}_{_word()}"
    name = f"docs/{_percent(identifier)}.md"
    repo = _repo(tmp_path, {name: "nothing here\n"})
    for mode in MODES:
        run = _verify(repo, tmp_path, _rules_args(tmp_path, [identifier], mode))
        assert run.exit_code == 1
        paths = {leak["path"] for leak in run.json_leaks()}
        assert paths == {"[redacted]"}
        _assert_nothing_leaks(run, [identifier])
        assert _percent(identifier)[:12] not in run.outputs["text"]


# ---- class 4: one normalisation for both modes ----

NORMALISATION_CASES: list[tuple[str, Callable[[str, str], str], bool]] = [
    # (name, spell(first, second) -> text, found strictly)
    ("fullwidth", lambda a, b: f"x = '{a.upper()}_{b}'".translate(_FULLWIDTH), True),
    ("zero-width space", lambda a, b: f"{a[:3]}\u200b{a[3:]}_{b}", True),
    ("soft hyphen", lambda a, b: f"{a}\u00ad_{b}", True),
    ("word joiner and BOM", lambda a, b: f"{a}\u2060_\ufeff{b}", True),
    ("curly quotes", lambda a, b: f"\u201c{a}_{b}\u201d", True),
    ("test_ compound", lambda a, b: f"see tests/test_{a}_{b}.py", True),
    ("V2 compound", lambda a, b: f"{a}_{b}V2 and {a}_{b}2", True),
    ("CamelCase", lambda a, b: f"{a.capitalize()}{b.capitalize()}Client", False),
    ("dashes upper", lambda a, b: f"{a.upper()}-{b.upper()}", False),
    ("dots", lambda a, b: f"{a}.{b}", False),
    ("line break", lambda a, b: f"{a} -\n  {b}", False),
]
_FULLWIDTH = {code: code + 0xFEE0 for code in range(0x21, 0x7F)}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("separator_insensitive", [False, True])
@pytest.mark.parametrize(("case", "spell", "strict"), NORMALISATION_CASES)
def test_spellings_are_found_alike_in_both_modes(  # noqa: PLR0917
    tmp_path: Path,
    mode: str,
    separator_insensitive: bool,
    case: str,
    spell: Callable[[str, str], str],
    strict: bool,
) -> None:
    first, second = _word(), _word(5)
    identifier = f"{first}_{second}"
    repo = _repo(tmp_path, {"src/app.py": f"import os\n{spell(first, second)}\n"})
    flags = ("--separator-insensitive",) if separator_insensitive else ()
    run = _verify_json(repo, _rules_args(tmp_path, [identifier], mode, *flags), *flags)
    expected = strict or separator_insensitive
    assert run.exit_code == (1 if expected else 0), (case, run.outputs["text"])
    if expected:
        assert {(leak["path"], leak["line"]) for leak in run.json_leaks()} == {("src/app.py", 2)}
    _assert_nothing_leaks(run, [identifier])


@pytest.mark.parametrize("mode", MODES)
def test_every_spelling_at_once_leaks_nothing_in_any_format(tmp_path: Path, mode: str) -> None:
    first, second = _word(), _word(5)
    identifier = f"{first}_{second}"
    files = {
        f"s{n}.txt": f"{spell(first, second)}\n"
        for n, (_c, spell, _s) in enumerate(NORMALISATION_CASES)
    }
    files[f"tests/test_{first}_{second}.py"] = "x = 1\n"
    repo = _repo(tmp_path, files)
    flags = ("--separator-insensitive",)
    run = _verify(repo, tmp_path, _rules_args(tmp_path, [identifier], mode, *flags), *flags)
    assert run.exit_code == 1
    paths = {leak["path"] for leak in run.json_leaks()}
    assert paths == {
        *(f"s{n}.txt" for n in range(len(NORMALISATION_CASES))),
        "tests/test_[redacted].py",
    }
    _assert_nothing_leaks(run, [identifier])


@pytest.mark.parametrize("mode", MODES)
def test_sharp_s_and_ss_are_one_identifier(tmp_path: Path, mode: str) -> None:
    stem = _word(5)
    identifier = f"{stem.capitalize()}gro\u00dfbank"
    repo = _repo(
        tmp_path, {"a.txt": f"{stem}GROSSBANK\n", "b.txt": f"{stem}grossbank\n", "c.txt": "x\n"}
    )
    run = _verify(repo, tmp_path, _rules_args(tmp_path, [identifier], mode))
    assert run.exit_code == 1
    assert {leak["path"] for leak in run.json_leaks()} == {"a.txt", "b.txt"}
    _assert_nothing_leaks(run, [identifier, f"{stem}grossbank"])


@pytest.mark.parametrize("mode", MODES)
def test_module_path_written_as_directories_is_found(tmp_path: Path, mode: str) -> None:
    org, name = _word(), _word()
    module = f"{org}.priv.{name}_v3"
    repo = _repo(
        tmp_path,
        {f"src/{org}/priv/{name}_v3.py": "x = 1\n", "notes.md": f"moved to {org}/priv/{name}_v3\n"},
    )
    run = _verify(repo, tmp_path, _rules_args(tmp_path, [module], mode))
    assert run.exit_code == 1
    found = {(leak["path"], leak["line"]) for leak in run.json_leaks()}
    assert ("notes.md", 1) in found
    assert any(path.startswith("src/") and line is None for path, line in found)
    _assert_nothing_leaks(run, [module])


@pytest.mark.parametrize("mode", MODES)
def test_pack_style_hashed_spellings_with_separators(tmp_path: Path, mode: str) -> None:
    code = f"{_word(4)}_uw_{secrets.randbelow(9000) + 1000}"
    spellings = [code.upper().replace("_", "-"), code.replace("_", "."), code.replace("_", " ")]
    repo = _repo(tmp_path, {f"f{n}.txt": f"{s}\n" for n, s in enumerate(spellings)})
    flags = ("--separator-insensitive",)
    run = _verify(repo, tmp_path, _rules_args(tmp_path, [code], mode, *flags), *flags)
    assert run.exit_code == 1
    assert {leak["path"] for leak in run.json_leaks()} == {"f0.txt", "f1.txt", "f2.txt"}
    _assert_nothing_leaks(run, [code])


@pytest.mark.parametrize("mode", MODES)
def test_confusables_are_folded_only_when_asked(tmp_path: Path, mode: str) -> None:
    word = "acme" + _word(5)
    homoglyph = word.replace("a", "\u0430").replace("e", "\u0435")  # Cyrillic a and ie
    repo = _repo(tmp_path, {"c.md": f"client: {homoglyph}\n"})
    rules = _rules_args(tmp_path, [word], mode)
    assert _verify(repo, tmp_path, rules).exit_code == 0
    folded = _verify(repo, tmp_path, rules, "--confusables")
    assert folded.exit_code == 1
    assert [(leak["path"], leak["line"]) for leak in folded.json_leaks()] == [("c.md", 1)]
    _assert_nothing_leaks(folded, [word])


def test_word_boundaries_do_not_match_inside_a_longer_word(tmp_path: Path) -> None:
    word = _word()
    repo = _repo(tmp_path, {"a.txt": f"{word}s {word}ed x{word} {word[:-1]}\n"})
    for mode in MODES:
        run = _verify(repo, tmp_path, _rules_args(tmp_path, [word], mode))
        assert run.exit_code == 0, run.outputs["text"]


# ---- class 6: a published hashed denylist ----


def test_hash_denylist_warns_on_guessable_identifiers_naming_the_line(tmp_path: Path) -> None:
    strong = f"{_word()}_priv.{_word()}.{_word()}_v3"
    listing = tmp_path / "ids.txt"
    listing.write_text(f"# private\nthe\n\n{strong}  # fine\nbank\n", encoding="utf-8")
    out = tmp_path / "deny.json"
    result = runner.invoke(app, ["boundary", "hash-denylist", str(listing), "-o", str(out)])
    assert result.exit_code == 0
    assert f"{listing}:2: warning: identifier is guessable" in result.output
    assert f"{listing}:5: warning: identifier is guessable" in result.output
    assert f"{listing}:4:" not in result.output
    assert "dictionary word" in result.output
    assert strong not in result.output
    published = json.loads(out.read_text())
    assert "leads" not in published
    assert published["fingerprint_scheme"] == "polymix64-v1"
    assert len(published["fingerprints"]) == len(published["hashes"]) == 3


def test_pinned_denylist_digest_notices_an_edited_file(tmp_path: Path) -> None:
    identifier = f"{_word()}-{_word()}"
    repo = _repo(tmp_path, {"x.txt": f"{identifier}\n"})
    rules = _rules_args(tmp_path, [identifier], "hashed")
    denylist = Path(rules[1])
    digest = "sha256:" + hashlib.sha256(denylist.read_bytes()).hexdigest()
    pinned = _verify(repo, tmp_path, [*rules, "--denylist-digest", digest.upper()])
    assert pinned.exit_code == 1
    data = json.loads(denylist.read_text())
    data["hashes"] = data["hashes"][1:]  # someone drops the rule that matched
    data["fingerprints"] = {}
    denylist.write_text(json.dumps(data))
    edited = _verify(repo, tmp_path, [*rules, "--denylist-digest", digest])
    assert edited.exit_code == 2
    assert "was edited or replaced" in edited.outputs["text"]
    bad = _verify(repo, tmp_path, [*rules, "--denylist-digest", "sha256:xyz"])
    assert bad.exit_code == 2
    # A pinned digest that no file read has (the default file was deleted) is refused too.
    missing = _verify(repo, tmp_path, ["--denylist-digest", digest])
    assert missing.exit_code == 2
    _assert_nothing_leaks(edited, [identifier])


# ---- plaintext and hashed rules agree on a generated corpus ----


def _shapes(rng: random.Random) -> list[str]:
    def word(low: int = 4, high: int = 8) -> str:
        return "".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(rng.randint(low, high)))

    return [
        f"{word()}_priv.{word()}.{word()}_v{rng.randint(2, 9)}",
        f"{word()}.{word()}@{word()}-{word(3, 4)}.example",
        f"{word().upper()}-{word(2, 3).upper()}-{rng.randint(1000, 9999)}-"
        f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-"
        f"a{rng.getrandbits(12):03x}-{rng.getrandbits(48):012x}",
        f"{word()}_{word()}_model_v{rng.randint(1, 9)}",
        f"{word()}gro\u00dfbank",
    ]


def _spell(rng: random.Random, identifier: str) -> str:
    forms = [
        identifier,
        identifier.upper(),
        f"tests/test_{identifier}.py",
        f"{identifier}V2",
        f"\u201c{identifier}\u201d",
        identifier[:2] + "\u200b" + identifier[2:],
        identifier.replace(".", "/"),
        identifier.replace("_", "-"),
        identifier.replace("_", " ").replace(".", " ").title().replace(" ", ""),
        _b64(f'{{"id": "{identifier}"}}'),
        _percent(identifier),
        _json_escapes(identifier),
        _entities(identifier),
        identifier[:-1],  # a near miss: no finding in either mode
        f"{identifier}x",
    ]
    return rng.choice(forms)


@pytest.mark.parametrize("separator_insensitive", [False, True])
def test_plaintext_and_hashed_modes_give_the_same_findings(
    tmp_path: Path, separator_insensitive: bool
) -> None:
    rng = random.Random(secrets.randbits(32))
    identifiers = [identifier for _ in range(3) for identifier in _shapes(rng)]
    root = tmp_path / "corpus"
    for number in range(60):
        lines = [f"line {n} of {rng.random():.6f}" for n in range(rng.randint(1, 6))]
        for _ in range(rng.randint(0, 3)):
            lines.insert(rng.randrange(len(lines) + 1), _spell(rng, rng.choice(identifiers)))
        path = root / f"d{number % 7}" / f"f{number}.{rng.choice(['py', 'md', 'json', 'txt'])}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    listing = tmp_path / "ids.txt"
    listing.write_text("".join(f"{i}  # rule-{n}\n" for n, i in enumerate(identifiers)))
    hashed = tmp_path / "ids.json"
    sep = ["--separator-insensitive"] if separator_insensitive else []
    made = runner.invoke(app, ["boundary", "hash-denylist", str(listing), "-o", str(hashed), *sep])
    assert made.exit_code == 0, made.output
    options = VerifyOptions(root=root, scope=Scope("all_files"), jobs=1, confusables=True)

    def findings(**sources: object) -> set[tuple[object, ...]]:
        rules = gather_rules(root, separator_insensitive=separator_insensitive, **sources)
        report = verify(rules, options)
        return {
            (leak.code, leak.path, leak.line, leak.col, leak.rule_id, leak.decoding)
            for leak in report.leaks
        }

    plain = findings(denylists=[listing], hashed_denylists=[])
    by_hash = findings(hashed_denylists=[hashed])
    assert plain == by_hash
    assert len(plain) >= 20  # the corpus did plant findings
    assert {decoding for *_, decoding in plain} >= {None, "base64"}
