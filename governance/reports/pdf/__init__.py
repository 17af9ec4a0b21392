"""Report PDFs: an engine result (METRICS_SPEC section 5) rendered through Django templates
and WeasyPrint as PDF/A-3b, with the JSON result embedded as an associated file.

What a PDF shows besides the result (``context``) is light and imported with the package; the
rendering names load WeasyPrint, matplotlib, numpy and pandas on first access, so that the
modules which only describe a report (its lineage, its thresholds) stay cheap to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_attributes
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

if TYPE_CHECKING:
    from governance.reports.pdf.distributions import column_distributions
    from governance.reports.pdf.fetcher import LocalOnlyURLFetcher, ResourceRefused
    from governance.reports.pdf.render import render_html, render_report, result_bytes

# Name -> the module that defines it, imported when the name is first looked up.
_LAZY = {
    "column_distributions": "distributions",
    "LocalOnlyURLFetcher": "fetcher",
    "ResourceRefused": "fetcher",
    "render_html": "render",
    "render_report": "render",
    "result_bytes": "render",
}

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


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
