"""Engine result (METRICS_SPEC section 5) + :class:`ReportContext` -> PDF/A-3b bytes.

The templates under ``templates/reports/`` receive ready-made strings: every number is
formatted here, once, so a table and the summary sentence about it can never disagree.
"""

from __future__ import annotations

import atexit
import base64
import gc
import hashlib
import io
import json
import os
import threading
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785
from django.conf import settings
from django.template.loader import render_to_string
from weasyprint import CSS, HTML, Attachment
from weasyprint.text.fonts import FontConfiguration

from governance.reports.pdf import charts
from governance.reports.pdf.context import EmbeddedFile, PolicyThreshold, ReportContext
from governance.reports.pdf.fetcher import LocalOnlyURLFetcher
from governance.reports.summary import lineage_problems, readable_reasons

PDF_VARIANT = "pdf/a-3b"
# The cover lists at most this many reasons (then says how many more): it stays one page.
COVER_REASONS = 5
ATTACHMENT_RELATIONSHIP = "Data"

METHOD_NAMES = {
    "ks": "Kolmogorov-Smirnov",
    "chisquare": "chi-square",
    "z": "two-proportion z-test",
    "wasserstein": "Wasserstein (normed)",
    "jensenshannon": "Jensen-Shannon distance",
}
METHOD_SHORT = {
    "ks": "KS",
    "chisquare": "chi-square",
    "z": "z-test",
    "wasserstein": "Wasserstein",
    "jensenshannon": "Jensen-Shannon",
}
P_VALUE_METHODS = {"ks", "chisquare", "z"}
TITLES = {
    "drift": "Data drift report",
    "fairness": "Fairness report",
    "lineage": "Lineage report",
    "regulator_export": "Audit log export",
}
LINEAGE_KINDS = {
    "dataset": "Dataset",
    "model_version": "Model version",
    "request": "Sign-off",
    "deployment": "Deployment",
}

RATES = ("selection_rate", "base_rate", "tpr", "fpr", "fnr", "precision", "accuracy")
FAIRNESS_METRICS = (
    (
        "demographic_parity_difference",
        "Demographic parity difference",
        "largest gap in selection rate between two groups",
    ),
    (
        "demographic_parity_ratio",
        "Demographic parity ratio",
        "lowest selection rate divided by the highest",
    ),
    (
        "equalized_odds_difference",
        "Equalized odds difference",
        "largest gap in true- or false-positive rate between two groups",
    ),
    (
        "equalized_odds_ratio",
        "Equalized odds ratio",
        "worst ratio of true- or false-positive rates between two groups",
    ),
    (
        "equal_opportunity_difference",
        "Equal opportunity difference",
        "largest gap in true-positive rate between two groups",
    ),
    (
        "equal_opportunity_ratio",
        "Equal opportunity ratio",
        "lowest true-positive rate divided by the highest",
    ),
)


def templates_dir() -> Path:
    """The report templates and their stylesheet (also the PDF's base URL)."""
    return Path(settings.BASE_DIR) / "templates" / "reports"


def result_bytes(result: Mapping[str, Any], context: ReportContext) -> bytes:
    """The bytes embedded in the PDF: ``context.result_json`` verbatim when given (it must
    parse to ``result``), otherwise the RFC 8785 canonical JSON of ``result``."""
    if context.result_json is None:
        return rfc8785.dumps(dict(result))
    if json.loads(context.result_json) != result:
        raise ValueError("context.result_json does not serialise the result being rendered")
    return context.result_json


def report_kind(result: Mapping[str, Any]) -> str:
    """``drift``, ``fairness`` or ``lineage``, from the result's shape (section 5; a lineage
    document says its kind)."""
    if result.get("kind") in ("lineage", "regulator_export"):
        return str(result["kind"])
    if "columns" in result:
        return "drift"
    if "groups" in result:
        return "fairness"
    raise ValueError("the result is not a drift, fairness or lineage result (METRICS_SPEC 5)")


def render_html(result: Mapping[str, Any], context: ReportContext) -> str:
    """The report as HTML (what :func:`render_report` prints)."""
    kind = report_kind(result)
    payload = result_bytes(result, context)
    if kind == "drift":
        view = _drift_view(result, context)
    elif kind == "fairness":
        view = _fairness_view(result)
    elif kind == "lineage":
        view = _lineage_view(result)
    else:
        view = _export_view(result)
    verdict_pass = view["verdict_pass"]
    inputs = [
        {"role": i.role, "name": i.name, "sha256": i.sha256, "rows": _int(i.rows)}
        for i in context.inputs
    ] or [
        {
            "role": i.get("role", "input"),
            "name": i.get("file", ""),
            "sha256": i.get("sha256", ""),
            "rows": _int(i.get("rows")),
        }
        for i in result.get("inputs") or []
    ]
    thresholds = list(context.policy.thresholds) or view["engine_thresholds"]
    view.setdefault("cover_reasons", _cover(view["verdict_reasons"]))
    template_context = {
        "kind": kind,
        "title": context.title or TITLES[kind],
        "report_id": context.report_id,
        "subject": context.subject,
        "generated_at": context.generated_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
        "generated_iso": context.generated_at.isoformat(),
        "audit_seq": _int(context.audit_seq),
        "policy": context.policy,
        "thresholds": thresholds,
        "inputs": inputs,
        "result_sha256": hashlib.sha256(payload).hexdigest(),
        "result_size": f"{len(payload):,}",
        "attachment_name": attachment_name(context),
        "verdict_word": view.get("verdict_word") or ("PASS" if verdict_pass else "FAIL"),
        "verdict_class": view.get("verdict_class") or ("pass" if verdict_pass else "fail"),
        "lineage_svg": _data_url(charts.lineage_chart(context.lineage))
        if context.lineage and context.lineage.nodes
        else None,
        "lineage_rows": [
            {"kind": LINEAGE_KINDS[n.kind], "label": n.label, "detail": n.detail}
            for n in (context.lineage.nodes if context.lineage else ())
        ],
        "libraries": result.get("libraries") or {},
        "engine": result.get("engine"),
        **view,
    }
    return render_to_string("reports/report.html", template_context)


def attachment_name(context: ReportContext) -> str:
    return f"warden-report-{context.report_id}.json"


def render_report(result: dict[str, Any], context: ReportContext) -> bytes:
    """Render a drift, fairness or lineage result as a PDF/A-3b document with the result embedded
    as an associated file (``/AF``, ``AFRelationship /Data``, ``application/json``).

    Only local files under the report templates and static directories, and ``data:``
    URLs, can be read while rendering (:class:`LocalOnlyURLFetcher`).
    """
    return html_to_pdf(
        render_html(result, context),
        attachment=result_bytes(result, context),
        attachment_name=attachment_name(context),
        generated_at=context.generated_at,
        embedded=context.embedded,
    )


class _Fonts:
    """This process's one WeasyPrint font configuration, made on first use, and the lock
    that lets one PDF at a time use it (a Pango font map is not safe to share between
    threads; gunicorn's sync workers and the Celery pool make one at a time anyway).

    Each ``FontConfiguration()`` loads the fontconfig configuration and its font set anew,
    and a Pango 1.50 font map does not release its configuration when it is freed: that
    memory (about 0.2 MB) never came back, and one per PDF made a long-lived report worker
    grow without bound. The report stylesheet has no ``@font-face``, so nothing is ever added to the
    shared one; its own caches (strut layouts, font features) are keyed by the handful of
    styles of the stylesheet and stop growing after the first reports."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._config: FontConfiguration | None = None

    def config(self) -> FontConfiguration:
        if self._config is None:
            self._config = FontConfiguration()
        return self._config

    def after_fork_in_child(self) -> None:
        """A forked child makes its own, and must not inherit a lock another thread held."""
        self.lock = threading.Lock()
        self._config = None

    def close(self) -> None:
        """Let the configuration go before the interpreter's shutdown: its font map,
        released by cffi's finalizer while the interpreter was being torn down, crashed the
        process in ``g_object_unref`` (a segmentation fault on exit)."""
        self._config = None
        gc.collect()


_fonts = _Fonts()
os.register_at_fork(after_in_child=_fonts.after_fork_in_child)
atexit.register(_fonts.close)


def html_to_pdf(
    html: str,
    *,
    attachment: bytes,
    attachment_name: str,
    generated_at: datetime,
    embedded: Sequence[EmbeddedFile] = (),
) -> bytes:
    """WeasyPrint with the report stylesheet, the local-only fetcher, PDF/A-3b, the JSON
    attachment and any ``embedded`` files (read as they are, not through the fetcher: the
    caller names them). Raises :class:`ResourceRefused` when the HTML asks for anything
    else."""
    with _fonts.lock:
        return _html_to_pdf(
            html,
            attachment=attachment,
            attachment_name=attachment_name,
            generated_at=generated_at,
            embedded=embedded,
            font_config=_fonts.config(),
        )


def _html_to_pdf(
    html: str,
    *,
    attachment: bytes,
    attachment_name: str,
    generated_at: datetime,
    embedded: Sequence[EmbeddedFile],
    font_config: FontConfiguration,
) -> bytes:
    fetcher = LocalOnlyURLFetcher()
    base = templates_dir()
    document = HTML(string=html, base_url=base.as_uri() + "/", url_fetcher=fetcher)
    stylesheet = CSS(
        filename=str(base / "report.css"), url_fetcher=fetcher, font_config=font_config
    )
    result_file = Attachment(
        file_obj=io.BytesIO(attachment),
        url_fetcher=fetcher,
        name=attachment_name,
        description="Machine-readable result (METRICS_SPEC section 5), JSON",
        created=generated_at,
        modified=generated_at,
        relationship=ATTACHMENT_RELATIONSHIP,
    )
    with ExitStack() as files:
        extra = [
            Attachment(
                file_obj=files.enter_context(Path(item.path).open("rb")),
                url_fetcher=fetcher,
                name=item.name,
                description=item.description,
                created=generated_at,
                modified=generated_at,
                relationship=item.relationship,
            )
            for item in embedded
        ]
        pdf = document.write_pdf(
            stylesheets=[stylesheet],
            font_config=font_config,
            pdf_variant=PDF_VARIANT,
            attachments=[result_file, *extra],
            finisher=_deduplicate_associated_files,
        )
    if pdf is None:  # pragma: no cover - only when a target is given
        raise RuntimeError("WeasyPrint returned no PDF")
    return bytes(pdf)


def _deduplicate_associated_files(_document: Any, pdf: Any) -> None:
    """WeasyPrint 70 lists an embedded file twice in the catalog's ``/AF`` array (once from
    the EmbeddedFiles name tree, once from the file specification); keep each once."""
    associated = pdf.catalog.get("AF")
    if associated is not None:
        unique = list(dict.fromkeys(associated))
        associated.clear()
        associated.extend(unique)


class _Fmt:
    """Number formatting shared by tables and sentences: fixed decimals in tables,
    scientific notation for tiny p-values, ``n/e`` (not estimable) for null."""

    @staticmethod
    def num(value: Any, digits: int = 4) -> str:
        if value is None:
            return "n/e"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, int):
            return f"{value:,}"
        if value != 0 and abs(value) < 10 ** -(digits - 1):
            return f"{value:.2e}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"

    @staticmethod
    def p(value: Any, *, sentence: bool = False) -> str:
        """A p-value; 0.0 is an underflow of the double, so it is shown as a bound."""
        if value == 0:
            return "< 1e-300" if sentence else "<1e-300"
        text = _Fmt.num(value, 3)
        return f"= {text}" if sentence else text

    @staticmethod
    def short(value: Any) -> str:
        """A threshold as written in a policy: 0.05, 0.1, 0.8."""
        return "n/e" if value is None else f"{value:g}"

    @staticmethod
    def pct(value: Any, digits: int = 1) -> str:
        return "n/e" if value is None else f"{value * 100:.{digits}f} %"


fmt = _Fmt()


def _count(number: int, noun: str) -> str:
    """``1 signature``, ``2 signatures``."""
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _int(value: Any) -> str:
    return "" if value is None else f"{int(value):,}"


def _data_url(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _cover(reasons: Sequence[str]) -> list[str]:
    """The reasons a cover prints: the first few, then how many more there are."""
    if len(reasons) <= COVER_REASONS:
        return list(reasons)
    more = len(reasons) - COVER_REASONS + 1
    return [*reasons[: COVER_REASONS - 1], f"\u2026 and {more} more (see the summary)"]


def _rule(method: str | None, threshold: Any) -> str:
    if method is None or threshold is None:
        return ""
    if method == "ks":
        return f"p \u2264 {fmt.short(threshold)}"
    if method in P_VALUE_METHODS:
        return f"p < {fmt.short(threshold)}"
    return f"score \u2265 {fmt.short(threshold)}"


def _drift_view(result: Mapping[str, Any], context: ReportContext) -> dict[str, Any]:
    columns = list(result["columns"])
    rows = []
    for column in columns:
        method = column.get("method")
        evaluable = column.get("status", "ok") == "ok"
        effect = column.get("effect_size") or {}
        rows.append(
            {
                "name": column["name"],
                "type": column.get("type", ""),
                "method": METHOD_SHORT.get(method or "", method or "\u2014"),
                "statistic": fmt.num(column.get("statistic")) if evaluable else "\u2014",
                "p_value": fmt.p(column.get("p_value"))
                if method in P_VALUE_METHODS and evaluable
                else "\u2014",
                "rule": _rule(method, column.get("threshold")),
                "drifted": bool(column.get("drifted")),
                "evaluable": evaluable,
                "psi": fmt.num(column.get("psi")),
                "psi_level": column.get("psi_level") or "",
                "effect": f"{effect['name'].replace('_', ' ')} {fmt.num(effect.get('value'), 3)}"
                if effect.get("name")
                else "",
                "n_reference": _int(column.get("n_reference")),
                "n_current": _int(column.get("n_current")),
                "reason": column.get("reason") or "",
            }
        )
    evaluated = [c for c in columns if c.get("status", "ok") == "ok"]
    drifted = [c for c in evaluated if c.get("drifted")]
    dataset_drift = bool(result["dataset_drift"])
    drift_share = result.get("drift_share", 0.5)

    def severity(column: Mapping[str, Any]) -> float:
        psi = column.get("psi")
        return float(psi) if psi is not None else 0.0

    focus = sorted(drifted or evaluated, key=severity, reverse=True)[:5]
    highlights = []
    for column in focus:
        method = column.get("method") or ""
        measured = (
            f"p {fmt.p(column.get('p_value'), sentence=True)}"
            if method in P_VALUE_METHODS
            else f"{METHOD_NAMES.get(method, method)} {fmt.num(column.get('statistic'), 3)}"
        )
        level = column.get("psi_level")
        psi_text = f"; PSI {fmt.num(column.get('psi'), 3)} ({level} shift)" if level else ""
        highlights.append(
            {
                "name": column["name"],
                "drifted": bool(column.get("drifted")),
                "sentence": (
                    "changed between the reference and the current data"
                    if column.get("drifted")
                    else "did not change beyond the threshold"
                ),
                "evidence": f"{METHOD_NAMES.get(method, method)}: {measured}, "
                f"drift if {_rule(method, column.get('threshold'))}{psi_text}",
            }
        )
    chart_columns = sorted(columns, key=lambda c: (not c.get("drifted"), -severity(c)))
    chart_list = []
    missing_charts = []
    for column in chart_columns:
        distribution = context.distributions.get(column["name"])
        if distribution is None or column.get("status", "ok") != "ok":
            missing_charts.append(column["name"])
            continue
        chart_list.append(
            {
                "name": column["name"],
                "svg": _data_url(
                    charts.drift_column_chart(
                        column["name"], distribution, drifted=bool(column.get("drifted"))
                    )
                ),
            }
        )
    methods_used = sorted({c.get("method") for c in evaluated if c.get("method")})
    thresholds_used = sorted(
        {(c.get("method"), c.get("threshold")) for c in evaluated if c.get("method")},
        key=str,
    )
    engine_thresholds = [
        PolicyThreshold(METHOD_NAMES.get(m, m), f"drifted if {_rule(m, t)}")
        for m, t in thresholds_used
    ] + [
        PolicyThreshold(
            "Dataset drift", f"share of drifted columns \u2265 {fmt.short(drift_share)}"
        )
    ]
    share = result.get("share")
    return {
        "verdict_pass": not dataset_drift,
        "verdict_headline": "Dataset drift detected" if dataset_drift else "No dataset drift",
        "verdict_detail": (
            f"{result['drifted_count']} of {len(evaluated)} evaluated columns drifted "
            f"({fmt.pct(share, 0)}); the dataset drifts when the share reaches "
            f"{fmt.pct(drift_share, 0)}."
        ),
        "verdict_reasons": [],
        "columns": rows,
        "n_columns": len(columns),
        "n_evaluated": len(evaluated),
        "n_drifted": len(drifted),
        "share": fmt.pct(share, 0),
        "drift_share": fmt.pct(drift_share, 0),
        "not_evaluable": [c["name"] for c in columns if c.get("status", "ok") != "ok"],
        "excluded": [f"{e['name']} ({e['reason']})" for e in result.get("excluded") or []],
        "highlights": highlights,
        "charts": chart_list,
        "chart_rows": [chart_list[i : i + 2] for i in range(0, len(chart_list), 2)],
        "missing_charts": missing_charts,
        "methods_used": methods_used,
        "engine_thresholds": engine_thresholds,
        "thresholds_source": result.get("thresholds_source"),
    }


def _group_label(attributes: Mapping[str, Any]) -> str:
    return " \u00b7 ".join(str(value) for value in attributes.values()) or "(all)"


def _fairness_view(result: Mapping[str, Any]) -> dict[str, Any]:
    groups = list(result["groups"])
    four_fifths = {
        json.dumps(entry["attributes"], sort_keys=True): entry
        for entry in result.get("four_fifths") or []
    }
    settings_ = result.get("settings") or {}
    rows = []
    for group in groups:
        ff = four_fifths.get(json.dumps(group["attributes"], sort_keys=True), {})
        rows.append(
            {
                "label": _group_label(group["attributes"]),
                "n": _int(group.get("n")),
                "selection_rate": fmt.pct(group.get("selection_rate")),
                "base_rate": fmt.pct(group.get("base_rate")),
                "tpr": fmt.pct(group.get("tpr")),
                "fpr": fmt.pct(group.get("fpr")),
                "fnr": fmt.pct(group.get("fnr")),
                "precision": fmt.pct(group.get("precision")),
                "accuracy": fmt.pct(group.get("accuracy")),
                "favorable_rate": fmt.pct(ff.get("favorable_rate", group.get("favorable_rate"))),
                "impact_ratio": fmt.num(ff.get("impact_ratio"), 3),
                "impact_ratio_value": ff.get("impact_ratio"),
                "flagged": bool(ff.get("flagged")),
                "unstable": bool(group.get("unstable")),
            }
        )
    overall = result.get("overall") or {}
    metrics = result.get("metrics") or {}
    metric_rows = [
        {"name": name, "value": fmt.num(metrics.get(key), 3), "meaning": meaning}
        for key, name, meaning in FAIRNESS_METRICS
        if key in metrics
    ]
    verdict_pass = result.get("verdict") == "pass"
    flagged = [r for r in rows if r["flagged"] and not r["unstable"]]
    flagged_unstable = [r for r in rows if r["flagged"] and r["unstable"]]
    min_ratio = settings_.get("min_impact_ratio", 0.8)
    max_eod = settings_.get("max_equalized_odds_difference")
    reasons = [
        f"{r['label']}: impact ratio {r['impact_ratio']} < {fmt.short(min_ratio)}" for r in flagged
    ]
    eod_value = metrics.get("equalized_odds_difference")
    if max_eod is not None and eod_value is not None and eod_value > max_eod:
        reasons.append(f"equalized odds difference {fmt.num(eod_value, 3)} > {fmt.short(max_eod)}")
    if not reasons and not verdict_pass:
        reasons = readable_reasons(result.get("verdict_reasons"))
    # The cover names the worst groups and the error-rate gap; the summary lists every group.
    worst = sorted(flagged, key=lambda r: r["impact_ratio_value"])
    shown = worst[: COVER_REASONS - 2] if len(worst) > COVER_REASONS - 1 else worst
    cover_reasons = [
        f"{r['label']}: impact ratio {r['impact_ratio']} < {fmt.short(min_ratio)}" for r in shown
    ]
    if len(shown) < len(worst):
        more = len(worst) - len(shown)
        cover_reasons.append(
            f"\u2026 and {more} more stable group{'s' if more != 1 else ''} below the "
            "four-fifths line (every group is in the summary)"
        )
    cover_reasons += [r for r in reasons if r.startswith("equalized odds")]
    if not flagged:
        cover_reasons = _cover(reasons)
    labels = [r["label"] for r in rows]
    impact_svg = _data_url(
        charts.impact_ratio_chart(
            labels,
            [r["impact_ratio_value"] for r in rows],
            [r["unstable"] for r in rows],
            threshold=min_ratio,
        )
    )
    rates_svg = _data_url(
        charts.group_rates_chart(
            labels,
            {
                "selection rate": [g.get("selection_rate") for g in groups],
                "true-positive rate": [g.get("tpr") for g in groups],
                "false-positive rate": [g.get("fpr") for g in groups],
            },
        )
    )
    sensitive = settings_.get("sensitive") or sorted(
        {key for group in groups for key in group["attributes"]}
    )
    engine_thresholds = [
        PolicyThreshold(
            "Four-fifths rule", f"impact ratio \u2265 {fmt.short(min_ratio)} for every stable group"
        ),
    ]
    if max_eod is not None:
        engine_thresholds.append(
            PolicyThreshold("Equalized odds difference", f"\u2264 {fmt.short(max_eod)}")
        )
    engine_thresholds.append(
        PolicyThreshold("Stable group", f"n \u2265 {settings_.get('min_group_size', 30)}")
    )
    eod = metrics.get("equalized_odds_difference")
    return {
        "verdict_pass": verdict_pass,
        "verdict_headline": "Fairness criteria met"
        if verdict_pass
        else "Fairness criteria not met",
        "verdict_detail": (
            f"{len(flagged)} of {sum(not r['unstable'] for r in rows)} stable groups below the "
            f"four-fifths line; equalized odds difference {fmt.num(eod, 3)}"
            + (f" (limit {fmt.short(max_eod)})." if max_eod is not None else ".")
        ),
        "verdict_reasons": reasons,
        "cover_reasons": cover_reasons,
        "groups": rows,
        "n_groups": len(rows),
        "flagged": flagged,
        "flagged_unstable": flagged_unstable,
        "unstable": [r for r in rows if r["unstable"]],
        "lowest": min(
            (r for r in rows if r["impact_ratio_value"] is not None and not r["unstable"]),
            key=lambda r: r["impact_ratio_value"],
            default=None,
        ),
        "metrics": metric_rows,
        "eod": fmt.num(eod, 3),
        "max_eod": fmt.short(max_eod) if max_eod is not None else None,
        "min_ratio": fmt.short(min_ratio),
        "overall_n": _int(overall.get("n")),
        **{f"overall_{rate}": fmt.pct(overall.get(rate)) for rate in RATES},
        "overall_favorable_rate": fmt.pct(overall.get("favorable_rate")),
        "sensitive": ", ".join(sensitive),
        "label_column": settings_.get("label"),
        "prediction_column": settings_.get("prediction"),
        "favorable_label": settings_.get("favorable_label"),
        "prediction_positive": ", ".join(
            str(v) for v in settings_.get("prediction_positive") or []
        ),
        "min_group_size": settings_.get("min_group_size", 30),
        "impact_svg": impact_svg,
        "rates_svg": rates_svg,
        "engine_thresholds": engine_thresholds,
        "thresholds_source": settings_.get("thresholds_source"),
    }


def _when(value: str | None) -> str:
    """An ISO 8601 instant of a lineage document as the report prints it (UTC)."""
    if not value:
        return "\u2014"
    instant = datetime.fromisoformat(value)
    if instant.tzinfo is not None:
        instant = instant.astimezone(UTC)
    return instant.strftime("%Y-%m-%d %H:%M:%S UTC")


def _seq(value: Any) -> str:
    return "\u2014" if value is None else str(value)


def _lineage_view(result: Mapping[str, Any]) -> dict[str, Any]:
    subject = result["model_version"]
    requests = [
        {
            **request,
            "requested_at": _when(request["requested_at"]),
            "approved_at": _when(request["approved_at"]),
            "expires_at": _when(request["expires_at"]),
            "closed_at": _when(request["closed_at"]),
            "retrospective_due_at": _when(request["retrospective_due_at"]),
            "audit_seq": _seq(request["audit_seq"]),
            "signoffs": [
                {**s, "signed_at": _when(s["signed_at"]), "audit_seq": _seq(s["audit_seq"])}
                for s in request["signoffs"]
            ],
        }
        for request in result["requests"]
    ]
    signatures = sum(len(r["signoffs"]) for r in result["requests"])
    checks = list(result["checks"])
    passed = result["verdict"] == "pass"
    live_now = list(result["live_now"])
    # The verdict judges the record; what the record shows is listed beside it, so that a
    # complete record of a troubled version never reads as a plain pass.
    problems = lineage_problems(dict(result))
    return {
        "verdict_pass": passed,
        "verdict_word": "Record complete" if passed else "Record incomplete",
        "verdict_class": ("warn" if problems else "pass") if passed else "fail",
        "verdict_headline": "Lineage record complete" if passed else "Lineage record incomplete",
        "problems": problems,
        "cover_problems": _cover(problems),
        "verdict_detail": (
            f"{_count(len(result['datasets']), 'dataset version')}, "
            f"{_count(len(result['parents']), 'parent version')}, "
            f"{_count(len(requests), 'deployment request')} with "
            f"{_count(signatures, 'signature')}; live now in "
            f"{', '.join(live_now) if live_now else 'no environment'}."
        ),
        "verdict_reasons": readable_reasons(result["verdict_reasons"]),
        "engine_thresholds": [
            PolicyThreshold(check["name"].replace("_", " ").capitalize(), check["rule"])
            for check in checks
        ],
        "lineage_subject": {
            **subject,
            "created_at": _when(subject["created_at"]),
            "audit_seq": _seq(subject["audit_seq"]),
        },
        "as_of": _when(result["as_of"]),
        "parents": [
            {**p, "created_at": _when(p["created_at"]), "audit_seq": _seq(p["audit_seq"])}
            for p in result["parents"]
        ],
        "datasets": [
            {**d, "rows": _int(d["row_count"]), "audit_seq": _seq(d["audit_seq"])}
            for d in result["datasets"]
        ],
        "requests": requests,
        "n_signatures": signatures,
        "deployments": [
            {**d, "occurred_at": _when(d["occurred_at"]), "audit_seq": _seq(d["audit_seq"])}
            for d in result["deployments"]
        ],
        "live": [
            {**row, "from": _when(row["from"]), "until": _when(row["until"])}
            for row in result["live"]
        ],
        "live_now": live_now,
        "gate": [dict(row) for row in result.get("gate") or []],
        "findings": [
            {
                **f,
                "raised_at": _when(f["raised_at"]),
                "resolved_at": _when(f["resolved_at"]),
                "audit_seq": _seq(f["audit_seq"]),
            }
            for f in result.get("findings", [])
        ],
        "checks": [{**c, "name": c["name"].replace("_", " ").capitalize()} for c in checks],
        "n_pii": sum(1 for d in result["datasets"] if d["pii"]),
    }


def _export_view(result: Mapping[str, Any]) -> dict[str, Any]:
    verification = result["verification"]
    summary = result["summary"]
    manifest = result.get("manifest") or {}
    passed = result["verdict"] == "pass"
    records = summary["records"]
    kind = verification.get("kind") or manifest.get("kind") or "full"
    checkpoints = verification.get("checkpoints") or []
    latest = max(checkpoints, key=lambda c: c["size"]) if checkpoints else None
    if passed:
        headline = "Complete and intact" if kind == "full" else "Every record proven in the log"
    else:
        headline = "Verification failed"
    if kind == "full":
        scope = (
            f"every record of the log from seq 0 to {_int(verification.get('last_seq'))}"
            if records
            else "an empty log"
        )
    else:
        scope = "the records matching the filter (completeness is not proven by a filtered export)"
    filters = manifest.get("filter") or {}
    return {
        "verdict_pass": passed,
        "verdict_headline": headline,
        "verdict_detail": (
            f"{_count(records, 'record')}: {scope}. "
            + (
                f"Signed checkpoint of size {latest['size']:,} by {', '.join(latest['keys'])}."
                if latest
                else "No checkpoint opened with a trusted key."
            )
        ),
        "verdict_reasons": readable_reasons(result["verdict_reasons"]),
        "engine_thresholds": [
            PolicyThreshold("Verifier", "audit.verifier, every check of AUDIT_SPEC section 7"),
            PolicyThreshold("Trusted keys", "the verification keys given, never the bundle's"),
        ],
        "bundle": result["bundle"],
        "bundle_size": f"{result['bundle']['size']:,}",
        "export_kind": kind,
        "origin": verification.get("origin") or manifest.get("origin") or "",
        "statement": manifest.get("statement") or "",
        "filters": [(name, value) for name, value in sorted(filters.items()) if value],
        "exported_at": _when(manifest.get("exported_at")),
        "exported_by": (manifest.get("exported_by") or {}).get("name") or "",
        "first_seq": _seq(verification.get("first_seq")),
        "last_seq": _seq(verification.get("last_seq")),
        "anchored": _int(verification.get("anchored")),
        "unanchored": _int(verification.get("unanchored")),
        "checkpoints": [
            {**c, "size": _int(c["size"]), "keys": ", ".join(c["keys"])} for c in checkpoints
        ],
        "latest": latest,
        "findings": verification.get("findings") or [],
        "n_records": _int(records),
        "first_ts": _when(summary["first_ts"]),
        "last_ts": _when(summary["last_ts"]),
        "actions": [(name, _int(count)) for name, count in summary["actions"]],
        "object_types": [(name, _int(count)) for name, count in summary["object_types"]],
        "actors": [(kind_, name, _int(count)) for kind_, name, count in summary["actors"]],
        "models": [(name, _int(count)) for name, count in summary["models"]],
        "n_signatures": summary["signatures"],
        "signatures": [{**s, "signed_at": _when(s["signed_at"])} for s in result["signatures"]],
        "signatures_omitted": summary["signatures"] - len(result["signatures"]),
        "records_listed": [
            {
                **r,
                "ts": _when(r["ts"]).removesuffix(" UTC"),
                # Long dotted actions break at their dots, not mid-word.
                "action": str(r["action"]).replace(".", ".\u200b"),
            }
            for r in result["records_listed"]
        ],
        "records_omitted": result["records_omitted"],
        "split_at": len(result["records_listed"]) // 2 if result["records_omitted"] else None,
    }
