"""The canonical form (AUDIT_SPEC sections 2 and 8): byte equality with RFC 8785 inside the
profile, clear refusals outside it, and the conversions from domain data into it."""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
import uuid
from decimal import Decimal
from typing import Any

import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from audit.canonical import (
    MAX_SAFE_INTEGER,
    CanonicalFormError,
    canonical_bytes,
    format_timestamp,
    pairs,
    to_profile,
)
from audit.verifier import canonical_dumps as verifier_dumps
from audit.verifier import parse_record
from tests.audit.helpers import GENESIS

pytestmark = pytest.mark.database_free

# Characters JSON serialisers get wrong most often: control characters (escaped), DEL, the
# line and paragraph separators U+2028/9 (raw in JCS, escaped by some), quotes, backslash,
# the solidus (never escaped in JCS), BOM, the last BMP character and characters outside it.
TRICKY = [
    "\x00",
    "\x07",
    "\x08",
    "\t",
    "\n",
    "\x0b",
    "\x0c",
    "\r",
    "\x1f",
    "\x7f",
    "\x80",
    "\u2028",
    "\u2029",
    '"',
    "\\",
    "/",
    "\ufeff",
    "\uffff",
    "\U0001f600",
    "\U0001d11e",
    "\U0010ffff",
    "é",
    "e",
    "\u0301",  # combining acute: with "e" before it, NFC composes them
]
characters = st.one_of(st.characters(codec="utf-8"), st.sampled_from(TRICKY))
nfc_text = st.text(alphabet=characters, max_size=24).map(
    lambda text: unicodedata.normalize("NFC", text)
)
ascii_keys = st.text(alphabet=st.characters(codec="ascii"), max_size=12)
safe_ints = st.one_of(
    st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER),
    st.sampled_from([0, -1, 1, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 2**31, -(2**31), 2**32]),
)
scalars = st.one_of(st.none(), st.booleans(), safe_ints, nfc_text)
profile_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(ascii_keys, children, max_size=5),
    ),
    max_leaves=40,
)

EDGE_RECORD = {
    "empty_object": {},
    "empty_array": [],
    "nested": {"a": {"b": {"c": [[], {}, [[]]]}}},
    "limits": [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0],
    "text": '\x00\x1f\x7f\u2028\u2029\U0001f600\U0010ffff"\\/',
}


@settings(max_examples=400, deadline=None)
@given(profile_values)
@example(EDGE_RECORD)
@example({"": "", "\x00": "\x7f", "\x7f": [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]})
def test_canonical_bytes_equal_rfc8785_inside_the_profile(value: Any) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)


record_shapes = st.fixed_dictionaries(
    {
        "v": st.just(1),
        "log": nfc_text,
        "seq": st.integers(min_value=0, max_value=MAX_SAFE_INTEGER),
        "ts": st.datetimes(
            min_value=dt.datetime(2000, 1, 1),
            max_value=dt.datetime(9999, 1, 1),
            timezones=st.just(dt.UTC),
        ).map(format_timestamp),
        "prev": st.just(GENESIS),
        "actor": st.fixed_dictionaries(
            {
                "type": st.sampled_from(["user", "service", "system"]),
                "id": nfc_text,
                "name": nfc_text,
            }
        ),
        "action": st.just("test.generated"),
        "object": st.fixed_dictionaries({"type": nfc_text, "id": nfc_text, "label": nfc_text}),
        "scope": st.dictionaries(ascii_keys, scalars, max_size=3),
        "data": st.dictionaries(ascii_keys, profile_values, max_size=6),
    },
    optional={"reason": nfc_text, "context": st.dictionaries(ascii_keys, nfc_text, max_size=3)},
)


@settings(max_examples=200, deadline=None)
@given(record_shapes)
def test_every_written_record_is_accepted_by_the_verifier(fields: dict[str, Any]) -> None:
    body = canonical_bytes(fields)
    assert body == rfc8785.dumps(fields)
    assert parse_record(body) == fields


non_ascii_keys = st.tuples(
    nfc_text, st.characters(min_codepoint=0x80, codec="utf-8"), nfc_text
).map(lambda parts: unicodedata.normalize("NFC", "".join(parts)))


@settings(max_examples=200, deadline=None)
@given(record_shapes, non_ascii_keys, profile_values)
def test_the_verifier_refuses_non_ascii_keys_anywhere(
    fields: dict[str, Any], key: str, value: Any
) -> None:
    """Bytes that only the writer's profile check would have stopped (the verifier must not
    rely on the writer): a non-ASCII key at the top of ``data`` or nested inside it."""
    for data in ({**fields["data"], key: value}, {"outer": [{key: value}]}):
        body = verifier_dumps({**fields, "data": data})
        with pytest.raises(ValueError, match="not ASCII") as refused:
            parse_record(body)
        assert refused.value.args[0] == "E_NONCANONICAL"


def stable_id(value: Any) -> str:
    """A test id that is the same in every process: pytest-xdist's workers must collect the
    same ids, and a set's order (string hashing is salted per process) or an object's address
    differ from one process to the next."""
    if isinstance(value, set | frozenset):
        return "{" + ", ".join(sorted(map(repr, value))) + "}"
    if type(value) is object:
        return "object()"
    return repr(value)[:40]


@pytest.mark.parametrize(
    ("value", "where"),
    [
        (0.1, "floats are not allowed"),
        (1.0, "floats are not allowed"),
        (-0.0, "floats are not allowed"),
        (float("nan"), "floats are not allowed"),
        (float("inf"), "floats are not allowed"),
        ({"metrics": [1, 0.5]}, "$.metrics[1]"),
        (MAX_SAFE_INTEGER + 1, "outside"),
        (-MAX_SAFE_INTEGER - 1, "outside"),
        ({"n": 10**30}, "$.n"),
        ({"é": 1}, "not an ASCII string"),
        ({"nested": {"ключ": 1}}, "not an ASCII string"),
        ({1: "x"}, "not an ASCII string"),
        ("e\u0301", "not NFC"),
        ({"name": unicodedata.normalize("NFD", "Ångström")}, "$.name"),
        ("\ud800", "not valid Unicode"),
        (["ok", "\udfff"], "$[1]"),
        (Decimal("1.5"), "Decimal"),
        (b"\x00", "bytes"),
        (("a", "b"), "tuple"),
        ({"a", "b"}, "set"),
        (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "datetime"),
        (dt.datetime(2026, 1, 1), "datetime"),  # naive, and not a JSON value either
        (uuid.UUID(int=1), "UUID"),
        (object(), "object"),
    ],
    ids=stable_id,
)
def test_the_writer_refuses_values_outside_the_profile(value: Any, where: str) -> None:
    with pytest.raises(CanonicalFormError) as refused:
        canonical_bytes(value)
    assert where in str(refused.value)


@pytest.mark.parametrize(
    ("value", "converted"),
    [
        (0.1, "0.1"),
        (1.0, "1.0"),
        (1e16, "1e+16"),
        (-0.0, "-0.0"),
        (2.5e-324, "5e-324"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (Decimal("1.50"), "1.50"),
        (Decimal("-0.000001"), "-0.000001"),
        (b"\x00\xff\x10", "00ff10"),
        (bytearray(b"\xab"), "ab"),
        (dt.date(2026, 2, 3), "2026-02-03"),
        (uuid.UUID(int=255), "00000000-0000-0000-0000-0000000000ff"),
        ("e\u0301", "é"),
        ((1, "two", None), [1, "two", None]),
        ({"outer": {"inner": 0.25}}, {"outer": {"inner": "0.25"}}),
    ],
    ids=stable_id,
)
def test_to_profile_converts_domain_values(value: Any, converted: Any) -> None:
    assert to_profile(value) == converted
    canonical_bytes(to_profile(value))


def test_aware_datetimes_become_utc_microsecond_z_strings() -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    moment = dt.datetime(2026, 6, 1, 14, 30, 5, 7, tzinfo=paris)
    assert to_profile(moment) == "2026-06-01T12:30:05.000007Z"
    assert to_profile(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) == "2026-01-01T00:00:00.000000Z"


def test_naive_datetimes_are_refused_by_the_conversion() -> None:
    with pytest.raises(CanonicalFormError, match="naive"):
        to_profile({"at": dt.datetime(2026, 1, 1, 12, 0)})
    with pytest.raises(CanonicalFormError, match="naive"):
        format_timestamp(dt.datetime(2026, 1, 1, 12, 0))


def test_to_profile_refuses_non_ascii_keys_and_unknown_types() -> None:
    with pytest.raises(CanonicalFormError, match="pairs"):
        to_profile({"colonne_é": 1})
    with pytest.raises(CanonicalFormError, match="set"):
        to_profile({"tags": {"a"}})


domain_values = st.recursive(
    st.one_of(
        scalars,
        st.floats(allow_nan=True, allow_infinity=True),
        st.decimals(allow_nan=False, allow_infinity=False),
        st.datetimes(
            min_value=dt.datetime(1900, 1, 1),
            max_value=dt.datetime(9000, 1, 1),
            timezones=st.timezones(),
        ),
        st.binary(max_size=8),
        st.integers(),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(ascii_keys, children, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(domain_values)
def test_converted_domain_data_is_always_inside_the_profile(value: Any) -> None:
    converted = to_profile(value)
    assert canonical_bytes(converted) == rfc8785.dumps(converted)


def test_pairs_sorts_user_keys_by_code_point_and_converts_values() -> None:
    schema = {"\U00010000": 0.5, "\uffff": 2, "b": None, "a": Decimal("3.10"), "e\u0301": True}
    converted = pairs(schema)
    assert converted == [
        ["a", "3.10"],
        ["b", None],
        ["e\u0301", True],
        ["\uffff", 2],
        ["\U00010000", "0.5"],
    ]
    body = canonical_bytes(to_profile({"schema": converted}))
    assert body == rfc8785.dumps(json.loads(body))


def test_objects_with_non_bmp_keys_would_sort_differently_which_is_why_pairs_exist() -> None:
    keys = {"\U00010000": 1, "\uffff": 2}
    python_order = json.dumps(keys, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert python_order.encode() != rfc8785.dumps(keys)  # code points vs UTF-16 code units
