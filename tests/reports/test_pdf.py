"""Report PDFs: PDF/A-3b structure, the embedded JSON result, the visible content and the
local-only URL fetcher.

The fixtures are engine results in the METRICS_SPEC section 5 shape: the bike-sharing data,
January against July 2011 (``drift_bike_jan_jul.json``, with the binned distributions the
charts need beside it), and COMPAS by race with "Low" as the favourable outcome
(``fairness_compas_race.json``). The PDFs and 60 dpi page images go to
``$TEST_OUTPUT/reports/`` for people to look at.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import rfc8785

from governance.reports.pdf import (
    ColumnDistribution,
    InputDigest,
    LineageEdge,
    LineageGraph,
    LineageNode,
    LocalOnlyURLFetcher,
    PolicyInfo,
    PolicyThreshold,
    ReportContext,
    ReportSubject,
    ResourceRefused,
    column_distributions,
    render_report,
)
from governance.reports.pdf.render import html_to_pdf
from tests.support import need

pytestmark = pytest.mark.database_free

FIXTURES = Path(__file__).parent / "fixtures"
DIGEST = "sha256:9f2c4e1b7a0d3c5e8f6a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a"
GENERATED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def poppler() -> None:
    """The checks read the PDFs with poppler's tools: skipped without them, failed under CI."""
    need(shutil.which("pdfinfo") is not None, "poppler-utils", "apt-get install poppler-utils")


def output_dir() -> Path:
    import os

    directory = Path(os.environ.get("TEST_OUTPUT") or "test-output") / "reports"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def lineage(model: str) -> LineageGraph:
    return LineageGraph(
        nodes=[
            LineageNode("train", f"{model}-train v3", "dataset", "sha256:4bdd4b76… · 8,645 rows"),
            LineageNode(
                "valid", f"{model}-validation v3", "dataset", "sha256:a7ceb803… · 2,190 rows"
            ),
            LineageNode(
                "test", f"{model}-test v2", "dataset", "sha256:7fc73bf9… · 2,190 rows · PII"
            ),
            LineageNode("parent", f"{model} v6", "model_version", "parent · validated"),
            LineageNode("version", f"{model} v7", "model_version", DIGEST[:23] + "…"),
            LineageNode("dev", "dev", "deployment", "live since 2026-02-10"),
            LineageNode("test-env", "test", "deployment", "live since 2026-02-17"),
            LineageNode("prod", "prod (requested)", "deployment", "pending: validation, risk"),
        ],
        edges=[
            LineageEdge("train", "version", "training"),
            LineageEdge("valid", "version", "validation"),
            LineageEdge("test", "version", "test"),
            LineageEdge("parent", "version", "parent"),
            LineageEdge("version", "dev", "deployed"),
            LineageEdge("version", "test-env", "deployed"),
            LineageEdge("version", "prod", "requested"),
        ],
    )


def drift_context(result_json: bytes | None = None, **overrides: Any) -> ReportContext:
    raw = json.loads((FIXTURES / "drift_bike_jan_jul_distributions.json").read_text())
    values: dict[str, Any] = {
        "report_id": "rpt-2026-0302-drift-0147",
        "subject": ReportSubject("bike-demand", "7", DIGEST, risk_tier="medium"),
        "generated_at": GENERATED,
        "policy": PolicyInfo(
            "prod/medium v4",
            [
                PolicyThreshold("Column drift", "per-method defaults (METRICS_SPEC 1)"),
                PolicyThreshold("Dataset drift", "share of drifted columns ≥ 0.5"),
            ],
        ),
        "inputs": [
            InputDigest(
                "reference",
                "bike-2011-01.csv",
                "4bdd4b766e45ab05aaaab92050e4a4d6c439b8c7de74107c4e1541d1c6e7a78b",
                688,
            ),
            InputDigest(
                "current",
                "bike-2011-07.csv",
                "a7ceb803a46f63cb4c97013f72e303db1d9f185a1c6f6e287bfcf581f6adf913",
                744,
            ),
        ],
        "lineage": lineage("bike-demand"),
        "distributions": {name: ColumnDistribution(**value) for name, value in raw.items()},
        "result_json": result_json,
    }
    values.update(overrides)
    return ReportContext(**values)


def fairness_context(result_json: bytes | None = None) -> ReportContext:
    return ReportContext(
        report_id="rpt-2026-0302-fair-0148",
        subject=ReportSubject("recidivism-risk", "12", DIGEST, risk_tier="high"),
        generated_at=GENERATED,
        policy=PolicyInfo(
            "prod/high v2",
            [
                PolicyThreshold("Four-fifths rule", "impact ratio ≥ 0.8 for every stable group"),
                PolicyThreshold("Equalized odds difference", "≤ 0.1"),
                PolicyThreshold("Stable group", "n ≥ 30, at least 5 positives and 5 negatives"),
            ],
        ),
        inputs=[
            InputDigest(
                "evaluation",
                "compas-scores-two-years.csv",
                "7fc73bf9722339f32be3255ba126d62952a76929ad5a1744fdbd31c3955a6332",
                7214,
            ),
        ],
        lineage=lineage("recidivism-risk"),
        result_json=result_json,
    )


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def publish(pdf: bytes, name: str) -> Path:
    """Write the PDF and its page images (pdftoppm -r 60) to the suite's outputs."""
    directory = output_dir()
    path = directory / f"{name}.pdf"
    path.write_bytes(pdf)
    for old in directory.glob(f"{name}-*.png"):
        old.unlink()
    run("pdftoppm", "-r", "60", "-png", str(path), str(directory / name))
    return path


def page_count(path: Path) -> int:
    return int(re.search(r"^Pages:\s+(\d+)", run("pdfinfo", str(path)), re.M)[1])  # type: ignore[index]


def text_of(path: Path) -> str:
    return re.sub(r"\s+", " ", run("pdftotext", "-layout", str(path), "-"))


def attachment_of(path: Path, tmp_path: Path) -> tuple[str, bytes]:
    listing = run("pdfdetach", "-list", str(path))
    names = re.findall(r"^\d+: (.+)$", listing, re.M)
    assert len(names) == 1, listing
    target = tmp_path / "attached.json"
    run("pdfdetach", "-save", "1", "-o", str(target), str(path))
    return names[0], target.read_bytes()


def pdf_structure(pdf: bytes) -> bytes:
    """The file's bytes plus every Flate stream inflated: WeasyPrint packs dictionaries into
    compressed object streams, so ``/AF`` and ``/OutputIntents`` are only visible inflated."""
    parts = [pdf]
    for match in re.finditer(rb"stream\r?\n", pdf):
        try:
            parts.append(
                zlib.decompressobj().decompress(pdf[match.end() : match.end() + 2_000_000])
            )
        except zlib.error:
            continue
    return b"\n".join(parts)


def xmp_of(path: Path) -> str:
    """The XMP metadata stream, as poppler reads it."""
    return run("pdfinfo", "-meta", str(path))


@pytest.fixture(scope="module")
def drift_pdf() -> tuple[Path, bytes, bytes]:
    raw = (FIXTURES / "drift_bike_jan_jul.json").read_bytes()
    pdf = render_report(json.loads(raw), drift_context(raw))
    return publish(pdf, "drift-bike-jan-jul"), pdf, raw


@pytest.fixture(scope="module")
def fairness_pdf() -> tuple[Path, bytes, bytes]:
    raw = (FIXTURES / "fairness_compas_race.json").read_bytes()
    pdf = render_report(json.loads(raw), fairness_context(raw))
    return publish(pdf, "fairness-compas-race"), pdf, raw


@pytest.mark.parametrize("which", ["drift_pdf", "fairness_pdf"])
def test_report_is_pdf_a_3b_with_embedded_fonts_and_output_intent(
    which: str, request: pytest.FixtureRequest
) -> None:
    path, pdf, _ = request.getfixturevalue(which)
    assert pdf.startswith(b"%PDF-1.7")
    xmp = xmp_of(path)
    assert re.search(r"pdfaid:part(=\"|>)3", xmp), xmp
    assert re.search(r"pdfaid:conformance(=\"|>)B", xmp), xmp
    structure = pdf_structure(pdf)
    assert b"/OutputIntents" in structure and b"/GTS_PDFA1" in structure
    assert b"/DestOutputProfile" in structure
    fonts = run("pdffonts", str(path)).splitlines()[2:]
    assert fonts, "no fonts"
    for line in fonts:
        assert line.split()[-5] == "yes", f"font not embedded: {line}"
        assert "DejaVu" in line


@pytest.mark.parametrize("which", ["drift_pdf", "fairness_pdf"])
def test_json_result_is_attached_byte_identical_as_associated_data(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    path, pdf, raw = request.getfixturevalue(which)
    name, attached = attachment_of(path, tmp_path)
    assert attached == raw
    assert name.endswith(".json")
    structure = pdf_structure(pdf)
    assert re.search(rb"/AFRelationship\s*/Data", structure)
    associated = re.findall(rb"/AF\s*\[([^\]]*)\]", structure)
    assert len(associated) == 1 and len(associated[0].split()) == 3, associated  # one "n 0 R"
    assert re.search(rb"/Subtype\s*/application#2fjson", structure)


def test_drift_pdf_shows_verdict_subject_thresholds_and_methods(
    drift_pdf: tuple[Path, bytes, bytes],
) -> None:
    path, _, raw = drift_pdf
    text = text_of(path)
    assert "FAIL" in text and "Dataset drift detected" in text
    assert "8 of 11 evaluated columns drifted" in text
    assert "bike-demand" in text and DIGEST in text
    assert "prod/medium v4" in text and "share of drifted columns ≥ 0.5" in text
    assert "4bdd4b766e45ab05aaaab92050e4a4d6c439b8c7de74107c4e1541d1c6e7a78b" in text
    for column in ("weathersit", "temp", "windspeed", "registered"):
        assert column in text
    assert "Appendix: methods and thresholds" in text
    for formula in ("ks_2samp", "chi2_contingency", "Wasserstein", "Jensen-Shannon", "PSI ="):
        assert formula in text
    import hashlib

    assert hashlib.sha256(raw).hexdigest() in text
    assert "rpt-2026-0302-drift-0147" in text
    pages = page_count(path)
    assert 6 <= pages <= 10, pages
    assert f"Page {pages} of {pages}" in text


def test_fairness_pdf_shows_verdict_groups_and_four_fifths(
    fairness_pdf: tuple[Path, bytes, bytes],
) -> None:
    path, _, _ = fairness_pdf
    text = text_of(path)
    assert "FAIL" in text and "Fairness criteria not met" in text
    assert "recidivism-risk" in text and "version 12" in text
    assert "African-American" in text and "0.521" in text
    assert "Native American" in text and "unstable" in text
    assert "four-fifths" in text.lower() and "≤ 0.1" in text
    assert "Appendix: methods and thresholds" in text
    for formula in ("TPR = TP / (TP + FN)", "impact ratio_g", "ratio (between groups)"):
        assert formula in text
    assert 5 <= page_count(path) <= 8


def test_passing_drift_report_says_pass(tmp_path: Path) -> None:
    result = json.loads((FIXTURES / "drift_bike_jan_jul.json").read_text())
    for column in result["columns"]:
        column["drifted"] = False
    result.update(drifted_count=0, share=0.0, dataset_drift=False, drifted_columns=[])
    path = tmp_path / "pass.pdf"
    path.write_bytes(render_report(result, drift_context()))
    text = text_of(path)
    assert "PASS" in text and "No dataset drift" in text and "FAIL" not in text


def test_minimal_section_5_results_render(tmp_path: Path) -> None:
    """Only the keys METRICS_SPEC section 5 promises: no settings, inputs or extras."""
    drift = json.loads((FIXTURES / "drift_bike_jan_jul.json").read_text())
    keep = (
        "name",
        "type",
        "method",
        "statistic",
        "p_value",
        "threshold",
        "drifted",
        "psi",
        "n_reference",
        "n_current",
        "status",
    )
    minimal_drift = {
        "columns": [{key: column[key] for key in keep} for column in drift["columns"]],
        **{key: drift[key] for key in ("drifted_count", "share", "dataset_drift")},
    }
    fairness = json.loads((FIXTURES / "fairness_compas_race.json").read_text())
    group_keys = (
        "attributes",
        "n",
        "selection_rate",
        "base_rate",
        "tpr",
        "fpr",
        "fnr",
        "precision",
        "accuracy",
        "unstable",
    )
    minimal_fairness = {
        "overall": fairness["overall"],
        "groups": [{key: group[key] for key in group_keys} for group in fairness["groups"]],
        "metrics": {key: fairness["metrics"][key] for key in list(fairness["metrics"])[:6]},
        "four_fifths": [
            {key: entry[key] for key in ("attributes", "impact_ratio", "flagged")}
            for entry in fairness["four_fifths"]
        ],
        "verdict": "fail",
    }
    context = drift_context(distributions={}, lineage=None, inputs=[])
    for result in (minimal_drift, minimal_fairness):
        pdf = render_report(result, context)
        path = tmp_path / "minimal.pdf"
        path.write_bytes(pdf)
        _, attached = attachment_of(path, tmp_path)
        assert attached == rfc8785.dumps(result)
        assert "FAIL" in text_of(path)


def test_result_json_must_match_the_result() -> None:
    raw = (FIXTURES / "drift_bike_jan_jul.json").read_bytes()
    result = json.loads(raw)
    altered = copy.deepcopy(result)
    altered["dataset_drift"] = False
    with pytest.raises(ValueError, match="does not serialise"):
        render_report(altered, drift_context(raw))


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A real local HTTP server that records every request it receives."""
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", requests
    finally:
        server.shutdown()
        server.server_close()


def test_remote_image_in_a_template_is_refused_and_never_fetched(
    http_server: tuple[str, list[str]],
) -> None:
    base, requests = http_server
    html = f'<html><body><p>evidence</p><img src="{base}/tracker.png"></body></html>'
    with pytest.raises(ResourceRefused, match="must be local files"):
        html_to_pdf(html, attachment=b"{}", attachment_name="r.json", generated_at=GENERATED)
    assert requests == []


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/logo.svg",
        "ftp://example.org/x.css",
        "file:///etc/passwd",
        "file://remote-host/templates/reports/report.css",
    ],
)
def test_fetcher_refuses_anything_but_local_report_files(url: str) -> None:
    with pytest.raises(ResourceRefused):
        LocalOnlyURLFetcher().fetch(url)


def test_fetcher_refuses_escaping_the_templates_directory() -> None:
    fetcher = LocalOnlyURLFetcher()
    root = fetcher.roots[0]
    with pytest.raises(ResourceRefused):
        fetcher.fetch((root / "report.css").as_uri().replace("report.css", "../../manage.py"))
    response = fetcher.fetch((root / "report.css").as_uri())
    assert b"@page" in response.read()
    response.close()
    assert fetcher.fetch("data:text/plain,ok").read() == b"ok"


def test_column_distributions_share_bins_between_sides() -> None:
    reference = pd.DataFrame(
        {"x": [0.0, 1.0, 2.0, float("inf"), None], "c": ["a", "b", "a", None, "b"]}
    )
    current = pd.DataFrame({"x": [2.0, 3.0, 4.0, 5.0, 6.0], "c": ["b", "c", "c", "c", "b"]})
    result = {
        "columns": [
            {"name": "x", "type": "numerical", "status": "ok"},
            {"name": "c", "type": "categorical", "status": "ok"},
        ]
    }
    distributions = column_distributions(reference, current, result)
    x = distributions["x"]
    assert x.edges is not None and len(x.edges) == len(x.reference) + 1
    assert sum(x.reference) == 3 and sum(x.current) == 5
    c = distributions["c"]
    assert c.categories == ["a", "b", "c"]
    assert list(c.reference) == [2, 2, 0] and list(c.current) == [0, 2, 3]
