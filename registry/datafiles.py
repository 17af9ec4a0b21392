"""Describing a tabular file for registration: content digest, row count and column types.

Warden records what a dataset is (digest, size, schema), never its contents.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


@dataclass(frozen=True)
class FileDescription:
    """A file's ``sha256:`` digest, its data row count and inferred column types."""

    content_digest: str
    row_count: int
    schema: dict[str, str]


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of the file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def _kind(values: list[str]) -> str:
    present = [v for v in values if v != ""]
    if not present:
        return "string"
    try:
        for value in present:
            int(value)
        return "integer"
    except ValueError:
        pass
    try:
        for value in present:
            float(value)
        return "float"
    except ValueError:
        return "string"


def describe_csv(path: Path, *, sample_rows: int = 2000) -> FileDescription:
    """Digest, row count and column types (inferred from the first ``sample_rows`` rows)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration as exc:
            raise ValueError(f"{path.name}: empty file, no header row") from exc
        if len(set(header)) != len(header):
            raise ValueError(f"{path.name}: duplicate column names in the header")
        columns: list[list[str]] = [[] for _ in header]
        rows = 0
        for row in reader:
            if len(row) != len(header):
                raise ValueError(
                    f"{path.name}: row {rows + 2} has {len(row)} fields, the header {len(header)}"
                )
            if rows < sample_rows:
                for index, value in enumerate(row):
                    columns[index].append(value)
            rows += 1
    schema = {name: _kind(values) for name, values in zip(header, columns, strict=True)}
    return FileDescription(content_digest=file_digest(path), row_count=rows, schema=schema)
