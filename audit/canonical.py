"""The canonical form of audit records: RFC 8785 (JCS) restricted to Warden's profile.

Within the profile (ASCII object keys; strings, booleans, null, objects, arrays and integers
with |i| <= 2**53 - 1; no floats; NFC strings) ``json.dumps`` with sorted keys and compact
separators gives exactly the RFC 8785 bytes. ``to_profile`` converts domain values into the
profile; ``canonical_bytes`` rejects anything outside it with a message naming the path.

This module uses only the standard library, so the offline verifier can share its rules.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import unicodedata
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class CanonicalFormError(ValueError):
    """A value cannot be written into an audit record (it is outside the canonical profile)."""


def format_timestamp(value: dt.datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC; naive is refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise CanonicalFormError(f"naive datetime {value!r} refused: audit times must be aware")
    return value.astimezone(dt.UTC).strftime(TIMESTAMP_FORMAT)


def float_string(value: float) -> str:
    """A float's shortest round-trip form as a string; NaN and infinities by name."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def pairs(mapping: Mapping[str, Any]) -> list[list[Any]]:
    """A user-keyed map as ``[key, value]`` pairs sorted by key.

    JCS sorts keys by UTF-16 code units and Python by code points, which differ outside the
    BMP, so maps whose keys come from users never become JSON objects in a record.
    """
    return [[str(key), to_profile(mapping[key])] for key in sorted(mapping, key=str)]


def to_profile(value: Any) -> Any:
    """Convert domain data into the canonical profile (floats, decimals, times, bytes...)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            return str(value)
        return value
    if isinstance(value, float):
        return float_string(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise CanonicalFormError(
                    f"object key {key!r} is not an ASCII string; wrap user-keyed maps with pairs()"
                )
            out[key] = to_profile(item)
        return out
    if isinstance(value, list | tuple):
        return [to_profile(item) for item in value]
    raise CanonicalFormError(f"{type(value).__name__} cannot be written into an audit record")


def check_profile(value: Any, path: str = "$") -> None:
    """Raise ``CanonicalFormError`` naming the first place where ``value`` leaves the profile."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalFormError(f"{path}: integer {value} is outside +-(2**53-1)")
        return
    if isinstance(value, float):
        raise CanonicalFormError(f"{path}: floats are not allowed; write {value!r} as a string")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CanonicalFormError(f"{path}: string is not valid Unicode ({exc.reason})") from exc
        if not value.isascii() and not unicodedata.is_normalized("NFC", value):
            raise CanonicalFormError(f"{path}: string is not NFC-normalised")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise CanonicalFormError(f"{path}: object key {key!r} is not an ASCII string")
            check_profile(item, f"{path}.{key}")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_profile(item, f"{path}[{index}]")
        return
    raise CanonicalFormError(f"{path}: {type(value).__name__} is not a JSON value of the profile")


def dumps(value: Any) -> bytes:
    """Serialise a value already inside the profile (no checks): the RFC 8785 bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def canonical_bytes(value: Any) -> bytes:
    """Check that ``value`` is inside the profile and return its canonical UTF-8 bytes."""
    check_profile(value)
    return dumps(value)
