"""The gate's question as CI sends it is read without DRF's serializers; whatever that
shortcut accepts, the serializers accept with the same values, and anything else goes to them
(so their errors are the API's)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.approvals.serializers import (
    GateQuerySerializer,
    GateStatusQuerySerializer,
    canonical_gate_question,
)

pytestmark = pytest.mark.database_free

DIGEST = "sha256:" + "ab" * 32
ASKED = {"model": "credit-score", "version": "3", "environment": "prod", "digest": DIGEST}

tricky = st.sampled_from(
    ["", " ", "prod", " prod", "prod ", "p\x00d", "\ud800", "credit-score", "Credit", "-x",
     "x" * 51, "x" * 101, "0", "01", "1", "3", "1.0", "-1", "9" * 19, "9223372036854775808",
     DIGEST, DIGEST.upper(), DIGEST + " ", "md5:x", "https://ci.example/run/1", "9f2c1e7",
     "a" * 1001]
)  # fmt: skip
keys = st.sampled_from(["model", "version", "environment", "digest", "pipeline_run", "commit",
                        "other"])  # fmt: skip


@pytest.mark.parametrize("recorded", [True, False])
def test_what_ci_sends_needs_no_serializer(recorded):
    asked = {**ASKED, **({"pipeline_run": "https://ci.example/run/1"} if recorded else {})}
    assert canonical_gate_question(asked, recorded=recorded) == {
        **asked, "version": 3,
    }  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(
    recorded=st.booleans(),
    changes=st.dictionaries(keys, st.one_of(tricky, st.text(max_size=8)), max_size=4),
    dropped=st.sets(st.sampled_from(list(ASKED)), max_size=2),
)
def test_the_shortcut_accepts_only_what_the_serializer_accepts_as_it_is(recorded, changes, dropped):
    asked = {k: v for k, v in {**ASKED, **changes}.items() if k not in dropped}
    quick = canonical_gate_question(asked, recorded=recorded)
    if quick is None:
        return
    serializer = (GateQuerySerializer if recorded else GateStatusQuerySerializer)(data=asked)
    assert serializer.is_valid(), (asked, serializer.errors)
    assert dict(serializer.validated_data) == quick
