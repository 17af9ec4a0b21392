"""The bundle format (``docs/audit-bundle.md``): its members, its filter, its manifest's
statement, and the zip writer that hashes every member for the manifest. Reads nothing."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from audit.canonical import format_timestamp
from core.errors import InvalidInput

FORMAT = "warden-audit-bundle/1"
MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
INCLUSION = "proofs/inclusion.jsonl"
CONSISTENCY = "proofs/consistency.jsonl"
FULL = "full"
PARTIAL = "partial"


@dataclass(frozen=True)
class ExportFilter:
    """Which records a bundle holds: those whose ``scope.model`` is ``model``, at or after
    ``since`` and before ``until`` (aware datetimes); no filter at all is a full export."""

    model: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @property
    def is_partial(self) -> bool:
        return self.model is not None or self.since is not None or self.until is not None

    @property
    def kind(self) -> str:
        return PARTIAL if self.is_partial else FULL

    def as_dict(self) -> dict[str, str | None]:
        """The manifest's ``filter``: times as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC)."""
        return {
            "model": self.model,
            "since": format_timestamp(self.since) if self.since else None,
            "until": format_timestamp(self.until) if self.until else None,
        }

    def describe(self) -> str:
        """In words, for statements and labels: ``model 'x', at or after ..., before ...``."""
        parts = []
        if self.model is not None:
            parts.append(f"model {self.model!r}")
        if self.since is not None:
            parts.append(f"at or after {format_timestamp(self.since)}")
        if self.until is not None:
            parts.append(f"before {format_timestamp(self.until)}")
        return ", ".join(parts) or "no filter"


def export_filter(
    *,
    model: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> ExportFilter:
    """A checked filter: ``InvalidInput`` for a blank model, a naive time, or
    ``since >= until``."""
    if model is not None and not model.strip():
        raise InvalidInput("model must not be blank", fields={"model": ["must not be blank"]})
    for name, value in (("since", since), ("until", until)):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise InvalidInput(
                f"{name} has no time zone: give it with Z or an offset such as +02:00",
                fields={name: ["must include a time zone"]},
            )
    if since is not None and until is not None and since >= until:
        raise InvalidInput(
            "since must be earlier than until (since is inclusive, until exclusive)",
            fields={"until": ["must be later than since"]},
        )
    return ExportFilter(model=model, since=since, until=until)


@dataclass(frozen=True)
class Bundle:
    """A bundle ``bundle_write`` wrote: where, what it holds, and its SHA-256 and size."""

    path: Path
    selection: ExportFilter
    checkpoint_size: int
    checkpoint_root: str
    prior_size: int | None
    records: int
    first_seq: int | None
    last_seq: int | None
    sha256: str
    size_bytes: int
    manifest: Mapping[str, Any] = field(repr=False)

    @property
    def kind(self) -> str:
        return self.selection.kind


class _Member:
    """A zip member being written: every byte also goes into its SHA-256."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self._stream.write(data)


ZipTime = tuple[int, int, int, int, int, int]


class BundleWriter:
    """Deflated members, one at a time, and the SHA-256 of each for the manifest."""

    def __init__(self, archive: zipfile.ZipFile, date_time: ZipTime) -> None:
        self.archive = archive
        self.date_time = date_time
        self.files: dict[str, str] = {}

    @contextlib.contextmanager
    def member(self, name: str, *, large: bool = False) -> Iterator[_Member]:
        info = zipfile.ZipInfo(name, date_time=self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        # The size of a streamed member is unknown in advance: Zip64 in case it passes 2 GiB.
        with self.archive.open(info, "w", force_zip64=large) as stream:
            member = _Member(stream)
            yield member
        self.files[name] = member.digest.hexdigest()

    def put(self, name: str, data: bytes) -> None:
        with self.member(name) as member:
            member.write(data)


def json_line(value: Mapping[str, Any]) -> bytes:
    """One line of a ``.jsonl`` member: compact ASCII JSON and a LF."""
    return json.dumps(value, separators=(",", ":")).encode("ascii") + b"\n"


def statement(selection: ExportFilter, size: int, records: int) -> str:
    """The manifest's ``statement``: what the bundle holds, and for a partial one, what it
    does not prove."""
    if not selection.is_partial:
        return f"Every record of the log up to the signed checkpoint of size {size}."
    caveat = (
        "This is not a completeness proof: records matching the filter may be missing from "
        "this bundle. Only a full export shows that no record is missing."
    )
    if records == 0:
        return (
            f"No record of the log up to the signed checkpoint of size {size} matched the "
            f"filter ({selection.describe()}) when this bundle was written. {caveat}"
        )
    return (
        f"The records of the log up to the signed checkpoint of size {size} that matched the "
        f"filter ({selection.describe()}). Each record is proven to be in the log by an "
        f"inclusion proof against that signed checkpoint. {caveat}"
    )
