"""JSON values as the API accepts them, checked once, at the edge.

Every value a request brings in, and every free-form JSON field (``FreeFormJSONField``),
passes ``clean_json`` before a service sees it. A clean value is one that every database and
the audit log store alike:

- numbers are finite (``1e400`` overflows to infinity and is refused); ``-0.0`` becomes
  ``0.0`` and a float of 1e16 or more becomes the integer its shortest form writes, because
  PostgreSQL's ``jsonb`` keeps neither a negative zero nor an exponent, and a row read back
  must equal its audit record;
- strings and object keys are valid Unicode (no lone surrogate), hold no NUL character
  (PostgreSQL refuses it in text and ``jsonb``) and are NFC-normalised, as the audit record's
  canonical form is; two keys of one object equal after normalisation are refused;
- nesting is bounded, and a free-form field is bounded in nodes and encoded bytes.

The limits are settings (``WARDEN_JSON_MAX_DEPTH``, ``WARDEN_JSON_MAX_NODES``,
``WARDEN_JSON_MAX_BYTES`` for a free-form field; ``WARDEN_JSON_MAX_BODY_DEPTH`` for a whole
request body), read on every use.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from rest_framework import serializers

DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_NODES = 10_000
DEFAULT_MAX_BYTES = 256 * 1024
DEFAULT_MAX_BODY_DEPTH = 64
# From here on Python writes floats with an exponent, which jsonb expands into an integer.
LARGEST_EXPONENT_FREE_FLOAT = 1e16

Path = tuple[str | int, ...]


class JSONValueError(ValueError):
    """A value outside what the API accepts; ``path`` leads to it from the checked root."""

    def __init__(self, message: str, path: Path = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def describe(self, root: str = "") -> str:
        """The message, prefixed with where the value sits below ``root``."""
        where = root + "".join(_step(part) for part in self.path)
        return f"{where}: {self.message}" if where else self.message


@dataclass(frozen=True)
class Unparsed:
    """A number literal the parser could not turn into a finite value (``1e400``,
    ``Infinity``, an integer beyond Python's digit limit); refused when the body is cleaned,
    so the refusal names the field it sits in."""

    text: str


@dataclass(frozen=True)
class Limits:
    depth: int
    nodes: int | None = None


class ObjectPairs(list[tuple[str, Any]]):
    """A JSON object as the parser read it: its pairs in order, duplicates kept, so that
    ``clean_json`` can refuse a key given twice instead of keeping the last silently."""


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def field_limits() -> Limits:
    """The bounds of one free-form field (depth and nodes)."""
    return Limits(
        depth=_setting("WARDEN_JSON_MAX_DEPTH", DEFAULT_MAX_DEPTH),
        nodes=_setting("WARDEN_JSON_MAX_NODES", DEFAULT_MAX_NODES),
    )


def body_limits() -> Limits:
    """The bounds of a whole request body (depth only; its size is Django's upload limit)."""
    return Limits(depth=_setting("WARDEN_JSON_MAX_BODY_DEPTH", DEFAULT_MAX_BODY_DEPTH))


def _step(part: str | int) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    # ASCII-escaped and shortened: the key may be the very string that was refused.
    text = part if len(part) <= 40 else part[:40] + "..."
    return "[" + json.dumps(text) + "]"


def clean_text(text: str) -> str:
    """``text`` NFC-normalised; ``JSONValueError`` if it holds a lone surrogate or a NUL."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise JSONValueError("text holds a lone surrogate (it is not valid Unicode)") from exc
        text = unicodedata.normalize("NFC", text)
    if "\x00" in text:
        raise JSONValueError("text holds a NUL character")
    return text


def clean_number(value: int | float) -> int | float:
    """A finite number in the form every database gives back unchanged."""
    if isinstance(value, int):  # bool included
        return value
    if not math.isfinite(value):
        raise JSONValueError("number is not finite")
    if value == 0:
        return 0.0
    if abs(value) >= LARGEST_EXPONENT_FREE_FLOAT:
        return int(Decimal(repr(value)))
    return value


class _Walk:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.nodes = 0

    def clean(self, value: Any, path: Path, depth: int) -> Any:
        self.nodes += 1
        if self.limits.nodes is not None and self.nodes > self.limits.nodes:
            raise JSONValueError(f"too large: more than {self.limits.nodes} values", ())
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            try:
                return clean_number(value)
            except JSONValueError as exc:
                raise JSONValueError(exc.message, path) from None
        if isinstance(value, str):
            try:
                return clean_text(value)
            except JSONValueError as exc:
                raise JSONValueError(exc.message, path) from None
        if isinstance(value, Unparsed):
            shown = value.text if len(value.text) <= 40 else value.text[:40] + "..."
            raise JSONValueError(f"number {shown} is out of range", path)
        if isinstance(value, ObjectPairs | Mapping | list | tuple):
            if depth >= self.limits.depth:
                raise JSONValueError(
                    f"nested too deeply (more than {self.limits.depth} levels)", path
                )
            if isinstance(value, list | tuple) and not isinstance(value, ObjectPairs):
                return [self.clean(item, (*path, i), depth + 1) for i, item in enumerate(value)]
            items = value if isinstance(value, ObjectPairs) else list(value.items())
            out: dict[str, Any] = {}
            for key, item in items:
                if not isinstance(key, str):
                    raise JSONValueError("object keys must be strings", path)
                try:
                    name = clean_text(key)
                except JSONValueError as exc:
                    shown = json.dumps(key[:40])
                    raise JSONValueError(f"key {shown}: {exc.message}", path) from None
                if name in out:
                    raise JSONValueError(
                        f"key {json.dumps(name[:40])} is given twice (after NFC normalisation)",
                        path,
                    )
                out[name] = self.clean(item, (*path, name), depth + 1)
            return out
        raise JSONValueError(f"{type(value).__name__} is not a JSON value", path)


def clean_json(value: Any, *, limits: Limits) -> Any:
    """``value`` checked and normalised as the module docstring says, or ``JSONValueError``.

    Plain dicts and lists are rebuilt, never changed in place; ``ObjectPairs`` and
    ``Unparsed`` (what ``core.parsers`` reads) become dicts or a refusal.
    """
    return _Walk(limits).clean(value, (), 0)


class FreeFormJSONField(serializers.DictField):
    """A JSON object whose content the caller chooses (parameters, metrics, a schema,
    thresholds): cleaned by ``clean_json`` within the free-form limits, at most
    ``WARDEN_JSON_MAX_BYTES`` once encoded, then checked by ``child`` if one is given.
    Refusals name the field and the place inside it."""

    default_error_messages = {
        "too_large": "Too large: more than {max_bytes} bytes as JSON.",
    }

    def to_internal_value(self, data: Any) -> dict[Any, Any]:
        if not isinstance(data, dict):
            self.fail("not_a_dict", input_type=type(data).__name__)
        try:
            cleaned = clean_json(data, limits=field_limits())
        except JSONValueError as exc:
            raise serializers.ValidationError(exc.describe()) from exc
        max_bytes = _setting("WARDEN_JSON_MAX_BYTES", DEFAULT_MAX_BYTES)
        size = len(json.dumps(cleaned, ensure_ascii=False, separators=(",", ":")).encode())
        if size > max_bytes:
            self.fail("too_large", max_bytes=max_bytes)
        return super().to_internal_value(cleaned)
