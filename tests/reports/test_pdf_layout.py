"""What the report PDFs look like, as far as a test can tell: the fairness cover is one page
however many groups fail, reasons name groups as text, drift charts label their categories and
their share axis, lineage boxes hold their text and edge labels do not collide, and a lineage
verdict names what it judges, with the version's problems beside it.

The PDFs and their pages (pdftoppm, 70 dpi) go to ``$TEST_OUTPUT/reports/`` for people to
look at.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pandas as pd
import pytest
from django.utils import timezone

from core.accounts.callers import Caller
from governance.approvals import services as approvals
from governance.reports.engine import FairnessOptions, compute_fairness
from governance.reports.pdf import (
    ColumnDistribution,
    LineageEdge,
    LineageGraph,
    LineageNode,
    charts,
    render_report,
)
from governance.reports.summary import lineage_problems, readable_reason, result_summary
from registry.services import DatasetRef
from tests import factories
from tests.approvals.conftest import PASSWORD
from tests.conftest import client_for
from tests.reports.conftest import COMPAS, COMPAS_FIELDS, upload
from tests.reports.test_lineage import gated_deploy, lineage_report
from tests.reports.test_pdf import FIXTURES, fairness_context, lineage, output_dir
from tests.support import need

DICT_TEXT = re.compile(r"\{'")


@pytest.fixture(autouse=True)
def poppler() -> None:
    need(shutil.which("pdftotext") is not None, "poppler-utils", "apt-get install poppler-utils")


def pages_of(pdf: bytes, name: str) -> list[str]:
    """The text of each page (pdftotext per page), after writing the PDF and its images."""
    path = output_dir() / f"{name}.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "70", "-png", str(path), str(output_dir() / name)],
                   check=True)  # fmt: skip
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    count = int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M)[1])  # type: ignore[index]
    return [
        re.sub(
            r"\s+",
            " ",
            subprocess.run(
                ["pdftotext", "-layout", "-f", str(n), "-l", str(n), str(path), "-"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout,
        )
        for n in range(1, count + 1)
    ]


def body_of(page: str) -> str:
    """A page's text without its running header (report id, model and version)."""
    return page.split("version 12", 1)[-1].strip()


def fairness_by(*sensitive: str) -> dict[str, Any]:
    frame = pd.read_csv(COMPAS)
    options = FairnessOptions(
        label="two_year_recid", prediction="score_text", sensitive=sensitive,
        prediction_positive=["Medium", "High"], favorable_label="Low",
    )  # fmt: skip
    return json.loads(json.dumps(compute_fairness(frame, options).to_dict()))


@pytest.mark.database_free
@pytest.mark.parametrize("sensitive", [("race",), ("race", "sex", "age_cat")])
def test_the_fairness_cover_is_one_page_however_many_groups_fail(sensitive):
    result = fairness_by(*sensitive)
    flagged = [f for f in result["four_fifths"] if f["flagged"] and not f["unstable"]]
    assert result["verdict"] == "fail" and flagged
    pages = pages_of(
        render_report(result, fairness_context()), "layout-fairness-" + "-".join(sensitive)
    )
    cover, second = pages[0], pages[1]
    # Everything of the cover is on page 1, down to its last line; page 2 is the summary.
    last = ("The machine-readable result is embedded", "printed in every page footer")
    for line in ("Fairness criteria not met", "Subject", "Thresholds applied", *last):
        assert line.lower() in cover.lower(), line
    assert body_of(second).startswith("Summary"), second[:200]
    assert "machine-readable result is embedded" not in second
    if len(flagged) > 4:
        assert f"and {len(flagged) - 3} more stable groups below the four-fifths line" in cover
    # Every flagged group is still listed on the summary pages.
    summary = " ".join(pages[1:3])
    for entry in flagged:
        assert " · ".join(entry["attributes"].values()) in summary


@pytest.mark.database_free
def test_verdict_reasons_name_groups_as_text_not_python_dictionaries():
    result = fairness_by("race", "sex")
    reasons = result["verdict_reasons"]
    assert any(r.endswith("for race = African-American, sex = Female") for r in reasons), reasons
    assert not any(DICT_TEXT.search(r) for r in reasons)
    summary = result_summary({**result, "kind": "fairness"})
    assert not any(DICT_TEXT.search(r) for r in summary["verdict_reasons"])
    # A result stored before reasons were written as text reads the same.
    old = "impact ratio 0.5210 < 0.8 for {'race': 'African-American', 'sex': 'Male'}"
    assert readable_reason(old) == (
        "impact ratio 0.5210 < 0.8 for race = African-American, sex = Male"
    )
    stored = json.loads((FIXTURES / "fairness_compas_race.json").read_text())
    assert any(DICT_TEXT.search(r) for r in stored["verdict_reasons"])  # the old text
    assert result_summary({**stored, "kind": "fairness"})["verdict_reasons"][0] == (
        "impact ratio 0.5210 < 0.8 for race = African-American"
    )
    # The PDF prints none either, even where it falls back on the engine's own reasons.
    stored["four_fifths"] = [{**f, "flagged": False} for f in stored["four_fifths"]]
    stored["metrics"]["equalized_odds_difference"] = None
    pages = pages_of(render_report(stored, fairness_context()), "layout-fairness-reasons")
    assert "for race = African-American" in pages[0]
    assert not any(DICT_TEXT.search(page) for page in pages)


def svg_texts(svg: str) -> list[str]:
    """The strings of a chart: matplotlib writes each text's characters as a comment before
    its glyphs (text is drawn as paths)."""
    return re.findall(r"<!-- (.*?) -->", svg)


@pytest.mark.database_free
def test_a_categorical_drift_chart_labels_its_categories_and_its_share_axis():
    names = [f"district-{n}" for n in ("north-east", "north-west", "south", "central",
             "harbour", "airport", "old-town", "university", "industrial-park", "riverside",
             "hills", "market", "station", "lakeside")]  # fmt: skip
    reference = [30, 2, 1, 4, 3, 5, 2, 1, 6, 3, 2, 1, 4, 2]
    current = [25, 3, 2, 4, 2, 6, 1, 2, 5, 4, 3, 1, 3, 1]
    svg = charts.drift_column_chart(
        "district",
        ColumnDistribution(reference=reference, current=current, categories=names),
        drifted=True,
    )
    texts = svg_texts(svg)
    ticks = texts[: texts.index("district")]
    categories = [t for t in ticks if not t.endswith("%")]
    axis = [t for t in ticks if t.endswith("%")]
    # At most ten bars: the nine most frequent categories and the rest as one.
    assert len(categories) == charts.MAX_CATEGORIES
    assert categories[-1] == "other (5)"
    assert "distric…h-east" in categories and "distric…h-west" in categories
    assert len(set(categories)) == len(categories)  # shortened in the middle, still apart
    assert all(len(c) <= charts.CATEGORY_LABEL for c in categories)
    # Labels too long for their slot are turned (rotate(-35) in the SVG).
    assert "rotate(-35)" in svg
    assert axis[0] == "0%" and len(set(axis)) == len(axis) >= 3


@pytest.mark.database_free
@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ([5] * 100, ["0.0%", "0.5%", "1.0%"]),  # each bin about 1 %: one decimal, not "0% 0% 1%"
        ([1, 1, 1, 600], ["0%", "50%", "100%"]),
        ([40, 30, 20, 10], ["0%", "20%", "40%"]),
    ],
)
def test_share_axis_ticks_are_round_and_distinct(reference, expected):
    n = len(reference)
    svg = charts.drift_column_chart(
        "x",
        ColumnDistribution(reference=reference, current=reference, edges=list(range(n + 1))),
        drifted=False,
    )
    axis = [t for t in svg_texts(svg) if t.endswith("%")]
    assert axis == expected


def long_graph() -> LineageGraph:
    base = lineage("recidivism-risk-assessment-2026")
    return LineageGraph(
        nodes=[
            *base.nodes,
            LineageNode("rq:12", "#12 to prod", "request", "break-glass · 1 signature"),
            LineageNode("rq:13", "#13 to test", "request", "approved · 2 signatures"),
        ],
        edges=[
            *base.edges,
            LineageEdge("version", "rq:12", "requested"),
            LineageEdge("version", "rq:13", "requested"),
            LineageEdge("rq:12", "prod", "deployed"),
            LineageEdge("rq:13", "test-env", "deployed"),
        ],
    )


@pytest.mark.database_free
def test_lineage_boxes_hold_their_text_and_edge_labels_do_not_collide():
    layout = charts.lineage_layout(long_graph())
    for box in layout.boxes.values():
        assert 1 <= len(box.lines) <= 2
        widest = max(
            [charts.text_width(line, 7.0, bold=True) for line in box.lines]
            + [charts.text_width(box.detail, 5.8)]
        )
        assert widest <= box.w - 2 * 5.0 + 0.01, (box.lines, box.detail, box.w)
        assert box.x >= 0 and box.x + box.w <= layout.width
        assert box.y >= 0 and box.y + box.h <= layout.height
    # The three datasets keep what tells them apart (their own name and version).
    names = {" ".join(layout.boxes[n].lines) for n in ("train", "valid", "test")}
    assert len(names) == 3 and all(name.endswith(("v3", "v2")) for name in names), names
    boxes = list(layout.boxes.values())
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    labels = [label.box for label in layout.labels]
    assert len(labels) == len(long_graph().edges)
    for i, label in enumerate(labels):
        assert not any(label.overlaps(other) for other in labels[i + 1 :]), layout.labels[i]
        assert not any(label.overlaps(box) for box in boxes), layout.labels[i]


@pytest.mark.django_db
def test_a_complete_lineage_record_of_a_troubled_version_names_its_problems(
    people, ci, model, version, post
):
    """A high-risk version with a complete record: its fairness report fails, it reaches prod
    by break-glass, and a validator's high finding is open. The report says "Record complete"
    and lists every problem beside it; it never reads as a plain PASS."""
    alice = people.alice
    troubled = factories.model_version(
        alice, model, source_commit="4be1c0ffee",
        datasets=[DatasetRef("bike-january", 1, "training"), DatasetRef("compas", 1, "validation")],
    )  # fmt: skip
    response = post(alice, **{**COMPAS_FIELDS, "version": 2}, evaluation=upload(COMPAS))
    assert response.status_code == 202
    fairness = client_for(alice).get(f"/api/v1/reports/{response.json()['id']}").json()
    assert fairness["verdict"] == "fail"
    request = approvals.deployment_emergency(
        caller=Caller(user=people.rita), version=troubled, environment="prod",
        reason="outage of the previous model", password=PASSWORD,
    )  # fmt: skip
    gated_deploy(ci, troubled, "prod", timezone.now())
    finding = approvals.finding_open(
        caller=Caller(user=people.victor), version=troubled, severity="high",
        title="Error rates differ by race", owner=alice,
    )  # fmt: skip
    body, result = lineage_report(post, people.rita, troubled)
    assert body["verdict"] == "pass"  # the record is complete
    problems = lineage_problems(result)
    assert len(problems) == 4, problems
    assert problems[0].startswith(f"Deployed to prod by break-glass (request #{request.pk})")
    assert "retrospective review not signed (due " in problems[0]
    assert (
        problems[1].startswith("Fairness evidence failing") and "(required in prod)" in problems[1]
    )
    assert problems[2].startswith("Drift evidence missing")
    assert problems[3].startswith(f"Open high finding #{finding.pk}: Error rates differ by race")
    assert problems[3].endswith("it blocks the gate")

    response = client_for(people.rita).get(f"/api/v1/reports/{body['id']}/pdf")
    assert response.status_code == 200
    pages = pages_of(b"".join(response), "layout-lineage-break-glass")
    cover, summary = pages[0], pages[1]
    assert "Record complete" in cover and "PASS" not in cover
    assert "Deployment and evidence problems: 4" in cover
    for problem in problems:
        assert problem[:70] in cover, problem
    assert "Record" in summary and "PASS" not in summary  # the key figure wraps its two words
    assert "4 deployment and evidence problems beside it" in summary
    for problem in problems:
        assert problem[:70] in summary, problem


@pytest.mark.database_free
def test_group_charts_of_many_groups_fit_a_page_and_keep_whole_names():
    races = ("African-American", "Asian", "Caucasian", "Hispanic", "Native American", "Other")
    ages = ("25 - 45", "Greater than 45", "Less than 25")
    labels = [f"{r} · {s} · {a}" for r in races for s in ("Female", "Male") for a in ages]
    ratios = [0.3 + 0.02 * i for i in range(len(labels))]
    for svg in (
        charts.impact_ratio_chart(labels, ratios, [False] * len(labels)),
        charts.group_rates_chart(labels, {"selection rate": ratios, "true-positive rate": ratios}),
    ):
        height = float(re.search(r'<svg[^>]* height="([\d.]+)pt"', svg)[1])  # type: ignore[index]
        assert height <= 9 * 72  # an A4 page holds about 9.5 in below its heading
        assert set(labels) <= set(svg_texts(svg))
