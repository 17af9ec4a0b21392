"""Describing a tabular file for registration: content digest, row count and column types.

Warden records what a dataset is (digest, size, schema), never its contents. The file is read
by the shared reader (:func:`datafiles.summarise`), which hashes and parses it in one pass.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import datafiles

CHUNK = 1 << 20


@dataclass(frozen=True)
class FileDescription:
    """A file's ``sha256:`` digest, its data row count and inferred column types."""

    content_digest: str
    row_count: int
    schema: dict[str, str]


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of the file's bytes (when only the digest is wanted)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def describe_file(path: Path, *, sample_rows: int = 2000) -> FileDescription:
    """Digest, row count and column types of a CSV or Parquet file: a CSV column is
    ``integer``, ``float`` or ``string`` as its first ``sample_rows`` rows read, a Parquet
    column as its type says. Raises ``ValueError`` (``datafiles.DataFileError``) naming the
    file for an empty file, a duplicated column name, a row of the wrong width or a file
    that is not UTF-8 text."""
    summary = datafiles.summarise(path, label=path.name, sample_rows=sample_rows)
    return FileDescription(
        content_digest=f"sha256:{summary.sha256}", row_count=summary.rows, schema=summary.schema
    )


describe_csv = describe_file
