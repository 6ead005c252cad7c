"""cmf report: a self-contained HTML page rendered from a verified release-gate chain."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from customer_model_factory.cli import app

from ..stage_release_support import (
    ReleaseChain,
    build_release_chain,
    example_pack_domains,
    write_all_domain_records,
)

runner = CliRunner()


class _Assets(HTMLParser):
    """Every tag, and every attribute that could load something."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.loads: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in {"src", "href", "xlink:href", "data"} and value:
                self.loads.append(value)


def _gate(tmp_path: Path) -> tuple[ReleaseChain, Path]:
    chain = build_release_chain(tmp_path / "chain", environment="production")
    write_all_domain_records(tmp_path / "records", "production", extra=example_pack_domains())
    gate = tmp_path / "out" / "release_gate.json"
    result = runner.invoke(
        app,
        [
            "--home", str(chain.root / ".cmf"),
            "release", "assemble",
            "--release-id", "release-customer-20260518",
            "--generated-at", "2026-05-18T18:45:00Z",
            "--enterprise-readiness", str(chain.readiness),
            "--runtime-package", str(chain.path("runtime-package")),
            "--evidence-pack", str(chain.path("evidence-pack")),
            "--monitoring-manifest", str(chain.path("monitoring")),
            "--risk-register", str(chain.path("risk-register")),
            "--domain-evidence", str(tmp_path / "records"),
            "-o", str(gate),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return chain, gate


def test_the_report_is_self_contained_and_shows_the_verified_chain(tmp_path: Path) -> None:
    chain, gate = _gate(tmp_path)
    page = tmp_path / "report.html"
    result = runner.invoke(
        app, ["--home", str(chain.root / ".cmf"), "report", str(gate), "-o", str(page)]
    )
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    parser = _Assets()
    parser.feed(html)
    assert "script" not in parser.tags and parser.loads == []
    assert "PROMOTION ALLOWED" in html and "CHAIN VERIFIED" in html
    release_hash = json.loads(gate.read_text())["release_hash"]
    assert release_hash in html
    for manifest in chain.manifests.values():  # every hash of the chain, recomputed, is shown
        assert manifest.content_digest in html
    # The sealed chain's raw results are not in the store: the page says so instead of drawing.
    assert "Not everything could be shown" in html and "curves are not shown" in result.output


def test_a_broken_link_is_shown_and_exits_1(tmp_path: Path) -> None:
    chain, gate = _gate(tmp_path)
    chain.path("training-manifest").unlink()
    page = tmp_path / "report.html"
    result = runner.invoke(
        app, ["--home", str(chain.root / ".cmf"), "report", str(gate), "-o", str(page)]
    )
    assert result.exit_code == 1, result.output
    assert "CHAIN BROKEN" in page.read_text(encoding="utf-8")


def test_a_tampered_gate_is_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    _chain, gate = _gate(tmp_path)
    gate.write_text(
        gate.read_text().replace('"promotion_allowed": true', '"promotion_allowed": false')
    )
    page = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(gate), "-o", str(page)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not page.exists()


def test_the_report_never_overwrites_a_manifest_of_the_chain(tmp_path: Path) -> None:
    chain, gate = _gate(tmp_path)
    target = chain.path("monitoring")
    before = target.read_bytes()
    result = runner.invoke(
        app, ["--home", str(chain.root / ".cmf"), "report", str(gate), "-o", str(target)]
    )
    assert (
        result.exit_code == 2 and "not an evidence report; refusing to overwrite" in result.output
    )
    assert target.read_bytes() == before


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_the_report_renders_in_a_headless_browser(tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip("no headless Chromium or Chrome installed: the rendering check needs one")
    chain, gate = _gate(tmp_path)
    page = tmp_path / "report.html"
    runner.invoke(app, ["--home", str(chain.root / ".cmf"), "report", str(gate), "-o", str(page)])
    dom = subprocess.run(
        [browser, "--headless", "--disable-gpu", "--no-sandbox", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "PROMOTION ALLOWED" in dom and re.search(r"<table", dom)


def test_a_report_is_rewritten_in_place_but_no_other_file_is_overwritten(tmp_path: Path) -> None:
    chain, gate = _gate(tmp_path)
    page = tmp_path / "report.html"
    home = ["--home", str(chain.root / ".cmf")]
    assert runner.invoke(app, [*home, "report", str(gate), "-o", str(page)]).exit_code == 0
    assert runner.invoke(app, [*home, "report", str(gate), "-o", str(page)]).exit_code == 0
    unrelated = tmp_path / "traces.jsonl"
    unrelated.write_text('{"trace_id": "t"}\n')
    result = runner.invoke(app, [*home, "report", str(gate), "-o", str(unrelated)])
    assert result.exit_code == 2 and unrelated.read_text() == '{"trace_id": "t"}\n'
