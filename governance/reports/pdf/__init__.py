"""Report PDFs: an engine result (METRICS_SPEC section 5) rendered through Django templates
and WeasyPrint as PDF/A-3b, with the JSON result embedded as an associated file."""

from governance.reports.pdf.context import (
    ColumnDistribution,
    EmbeddedFile,
    InputDigest,
    LineageEdge,
    LineageGraph,
    LineageNode,
    PolicyInfo,
    PolicyThreshold,
    ReportContext,
    ReportSubject,
)
from governance.reports.pdf.distributions import column_distributions
from governance.reports.pdf.fetcher import LocalOnlyURLFetcher, ResourceRefused
from governance.reports.pdf.render import render_html, render_report, result_bytes

__all__ = [
    "ColumnDistribution",
    "EmbeddedFile",
    "InputDigest",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "LocalOnlyURLFetcher",
    "PolicyInfo",
    "PolicyThreshold",
    "ReportContext",
    "ReportSubject",
    "ResourceRefused",
    "column_distributions",
    "render_html",
    "render_report",
    "result_bytes",
]
