"""Report PDFs: an engine result (METRICS_SPEC section 5) rendered through Django templates
and WeasyPrint as PDF/A-3b, with the JSON result embedded as an associated file.

What a PDF shows besides the result (``context``) is light and imported with the package; the
rendering names load WeasyPrint, matplotlib, numpy and pandas on first access, so that the
modules which only describe a report (its lineage, its thresholds) stay cheap to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
