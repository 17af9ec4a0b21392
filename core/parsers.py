"""The API's JSON parser: the body is read and cleaned once, before any view sees it.

Beyond DRF's ``JSONParser`` it refuses, with a 400 in the one error format, what would
otherwise fail later as a server error: a body nested deeper than the interpreter's stack
(``RecursionError``) or than ``WARDEN_JSON_MAX_BODY_DEPTH``, numbers that overflow to
infinity, lone surrogates, NUL characters and keys given twice; and it NFC-normalises every
string and key (``core.jsonvalues.clean_json``). A refusal names the top-level
field it sits in when there is one.
"""

from __future__ import annotations

import codecs
import json
import math
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from core.jsonvalues import JSONValueError, ObjectPairs, Unparsed, body_limits, clean_json


def _parse_float(text: str) -> float | Unparsed:
    value = float(text)
    return value if math.isfinite(value) else Unparsed(text)


def _parse_int(text: str) -> int | Unparsed:
    try:
        return int(text)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        return Unparsed(text)


class WardenJSONParser(JSONParser):
    """``application/json`` bodies, cleaned at the edge (see the module docstring)."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            raw = json.load(
                codecs.getreader(encoding)(stream),
                parse_float=_parse_float,
                parse_int=_parse_int,
                parse_constant=Unparsed,
                object_pairs_hook=ObjectPairs,
            )
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        try:
            return clean_json(raw, limits=body_limits())
        except JSONValueError as exc:
            field = exc.path[0] if exc.path else None
            if isinstance(raw, ObjectPairs) and isinstance(field, str):
                inner = JSONValueError(exc.message, exc.path[1:])
                raise ValidationError({field: [inner.describe()]}) from exc
            raise ParseError(f"JSON parse error - {exc.describe()}") from exc
