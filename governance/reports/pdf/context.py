"""What a report PDF shows besides the engine's result: the subject, the inputs, the policy,
the lineage and, for drift charts, the binned distributions of each column.

The engine's result (METRICS_SPEC section 5) holds statistics, not data, so the histograms a
drift chart needs travel here; a column without one is listed without a chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

LineageKind = Literal["dataset", "model_version", "request", "deployment"]


@dataclass(frozen=True)
class ReportSubject:
    """The model version a report is about."""

    model: str
    version: str
    artifact_digest: str
    risk_tier: str | None = None


@dataclass(frozen=True)
class InputDigest:
    """One input file: its role (``reference``, ``current``, ``evaluation``...), name,
    SHA-256 (hex) and row count."""

    role: str
    name: str
    sha256: str
    rows: int | None = None


@dataclass(frozen=True)
class PolicyThreshold:
    """One threshold the verdict is judged against, as the policy states it."""

    name: str
    rule: str


@dataclass(frozen=True)
class PolicyInfo:
    """The sign-off policy version whose thresholds the verdict uses."""

    version: str
    thresholds: Sequence[PolicyThreshold] = ()


@dataclass(frozen=True)
class LineageNode:
    """A box in the lineage graph. ``kind`` decides its layer: datasets, then model
    versions, then deployment requests with their sign-offs, then deployments."""

    id: str
    label: str
    kind: LineageKind
    detail: str = ""


@dataclass(frozen=True)
class LineageEdge:
    """An arrow from ``source`` to ``target`` (node ids), with an optional label
    (``training``, ``parent``, ``deployed``...)."""

    source: str
    target: str
    label: str = ""


@dataclass(frozen=True)
class LineageGraph:
    """Datasets -> model versions -> sign-offs -> deployments."""

    nodes: Sequence[LineageNode]
    edges: Sequence[LineageEdge] = ()


@dataclass(frozen=True)
class ColumnDistribution:
    """Counts of one column on both sides over the same bins: ``edges`` (len + 1 of the
    counts) for a histogram, ``categories`` for a categorical column."""

    reference: Sequence[int]
    current: Sequence[int]
    edges: Sequence[float] | None = None
    categories: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if len(self.reference) != len(self.current):
            raise ValueError("reference and current counts must have the same bins")
        if (self.edges is None) == (self.categories is None):
            raise ValueError("a distribution has either edges or categories")
        if self.edges is not None and len(self.edges) != len(self.reference) + 1:
            raise ValueError("a histogram needs one more edge than counts")
        if self.categories is not None and len(self.categories) != len(self.reference):
            raise ValueError("one count per category")


@dataclass(frozen=True)
class EmbeddedFile:
    """A file embedded in the PDF besides the JSON result (PDF/A-3 associated file), read
    from ``path`` as it is: for example the export bundle a regulator's PDF describes."""

    name: str
    path: str
    description: str
    relationship: str = "Source"


@dataclass(frozen=True)
class ReportContext:
    """Everything the PDF shows that is not in the engine's result.

    ``result_json``, when given, is the exact serialisation of the result to embed (for
    example what ``report --json`` printed); it must parse to the result. Without it the
    result is embedded as RFC 8785 canonical JSON. The footer carries the SHA-256 of the
    embedded bytes either way. ``audit_seq`` is the newest audit record's seq when the report
    was generated (the cover prints it). ``embedded`` are further files to attach.
    """

    report_id: str
    subject: ReportSubject
    generated_at: datetime
    policy: PolicyInfo
    inputs: Sequence[InputDigest] = ()
    lineage: LineageGraph | None = None
    distributions: Mapping[str, ColumnDistribution] = field(default_factory=dict)
    result_json: bytes | None = None
    title: str | None = None
    audit_seq: int | None = None
    embedded: Sequence[EmbeddedFile] = ()
