"""One test per edge case of METRICS_SPEC.md (drift section 1, fairness section 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit.canonical import check_profile
from governance.reports.engine import (
    DriftOptions,
    FairnessOptions,
    InputError,
    compute_drift,
    compute_fairness,
)

pytestmark = pytest.mark.database_free

RNG = np.random.default_rng(3)


def drift(ref: dict, cur: dict, **options) -> dict:
    result = compute_drift(pd.DataFrame(ref), pd.DataFrame(cur), DriftOptions(**options))
    return {c["name"]: c for c in result.to_dict()["columns"]} | {"_": result.to_dict()}


def test_infinities_become_missing_and_are_counted():
    ref = np.r_[RNG.normal(size=200), [np.inf, -np.inf, np.nan]]
    cur = np.r_[RNG.normal(size=200), [np.nan, np.nan, np.inf]]
    column = drift({"x": ref}, {"x": cur})["x"]
    assert (column["n_reference"], column["n_current"]) == (200, 200)
    assert (column["inf_count_reference"], column["inf_count_current"]) == (2, 1)
    assert column["missing_share_reference"] == pytest.approx(1 / 203)
    assert column["missing_share_change"] == pytest.approx(2 / 203 - 1 / 203)
    assert column["method"] == "ks" and column["status"] == "ok"


def test_side_empty_after_cleaning_is_not_evaluable_and_left_out_of_the_share():
    out = drift(
        {"x": [np.nan, np.inf, np.nan], "y": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]},
        {"x": [1.0, 2.0, 3.0], "y": [10.0, 20.0, 30.0], "c": [None, None, None]},
        column_types={"c": "categorical"},
    )
    assert out["x"]["status"] == out["c"]["status"] == "not_evaluable"
    assert "reference" in out["x"]["reason"] and "current" in out["c"]["reason"]
    assert out["x"]["drifted"] is False and out["x"]["method"] is None
    assert out["_"]["evaluated_count"] == 1 and out["_"]["not_evaluable"] == ["x", "c"]
    assert out["_"]["share"] == 0.0 and out["y"]["status"] == "ok"


def test_every_column_not_evaluable_gives_no_share_and_no_drift():
    out = drift({"x": [np.nan]}, {"x": [1.0]})
    assert out["_"]["share"] is None and out["_"]["dataset_drift"] is False


def test_constant_columns():
    equal = drift({"x": [1.0] * 50}, {"x": [1.0] * 40})["x"]
    assert equal["method"] == "z" and equal["p_value"] == 1.0 and not equal["drifted"]
    large = drift({"x": np.full(2000, 3.0)}, {"x": RNG.normal(3, 0.01, 2000)})["x"]
    assert large["method"] == "wasserstein"
    assert any("below 0.001" in w for w in large["warnings"])
    single = drift({"c": ["a"] * 20}, {"c": ["a"] * 30}, column_types={"c": "categorical"})["c"]
    assert single["p_value"] == 1.0


def test_unseen_and_vanished_categories():
    ref = ["a"] * 40 + ["b"] * 40 + ["c"] * 20
    cur = ["a"] * 40 + ["b"] * 30 + ["d"] * 30
    column = drift({"c": ref}, {"c": cur})["c"]
    assert column["method"] == "chisquare"
    assert column["new_categories"] == ["d"] and column["new_category_share"] == 0.3
    assert column["vanished_categories"] == ["c"]
    assert column["bins"]["values"] == ["a", "b", "c", "d"]
    assert column["drifted"] and column["effect_size"]["name"] == "cramers_v"


def test_tiny_samples_are_computed_and_warned_about():
    column = drift({"x": [0.1, 0.5, 0.9, 1.3, 2.0, 2.2]}, {"x": [5.0]})["x"]
    assert column["method"] == "ks" and column["p_value"] is not None
    assert any("small sample" in w for w in column["warnings"])


def test_method_rule_boundaries():
    few = drift({"x": np.tile([1.0, 2.0, 3.0], 10)}, {"x": np.tile([1.0, 2.0, 4.0], 10)})["x"]
    assert few["method"] == "chisquare"
    big = drift({"x": np.tile([1.0, 2.0, 3.0], 400)}, {"x": np.tile([1.0, 2.0], 400)})["x"]
    assert big["method"] == "jensenshannon" and big["psi_bins"] == 4  # edges 1, 2, 3


def test_psi_bins_are_reference_deciles_and_catch_values_outside():
    ref = np.arange(1, 1001, dtype=float)
    column = drift({"x": ref}, {"x": ref + 5000})["x"]
    assert column["psi_bins"] == 10 and column["psi_level"] == "significant"
    assert column["psi_edges"] == np.quantile(ref, [i / 10 for i in range(1, 10)]).tolist()


def test_benjamini_hochberg_adjusts_across_p_value_columns():
    out = drift(
        {"a": RNG.normal(size=300), "b": RNG.normal(size=300)},
        {"a": RNG.normal(1, 1, 300), "b": RNG.normal(size=300)},
    )
    assert out["a"]["p_value_bh"] == pytest.approx(min(1.0, out["a"]["p_value"] * 2)) or (
        out["a"]["p_value_bh"] >= out["a"]["p_value"]
    )
    assert out["b"]["p_value_bh"] >= out["b"]["p_value"]


def test_declared_numerical_column_holding_text_is_refused():
    with pytest.raises(InputError, match=r"'x'.*declared numerical"):
        drift({"x": ["a", "b"]}, {"x": ["a", "b"]}, column_types={"x": "numerical"})


def test_audit_record_has_no_floats():
    out = compute_drift(
        pd.DataFrame({"x": RNG.normal(size=50)}), pd.DataFrame({"x": RNG.normal(size=50)})
    )
    record = out.to_record()
    check_profile(record)
    assert isinstance(record["columns"][0]["p_value"], str)


def fairness_frame(n: int = 400) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "y": RNG.integers(0, 2, n),
            "p": RNG.integers(0, 2, n),
            "g": RNG.choice(["a", "b"], n),
        }
    )


def test_group_without_positives_has_null_rates_and_is_excluded_and_named():
    frame = fairness_frame()
    frame.loc[frame.g == "b", "y"] = 0
    result = compute_fairness(
        frame, FairnessOptions(label="y", prediction="p", sensitive=["g"])
    ).to_dict()
    b = next(g for g in result["groups"] if g["attributes"] == {"g": "b"})
    assert b["tpr"] is None and b["fnr"] is None and b["fpr"] is not None
    assert b["unstable_error_rates"] is True
    assert result["aggregates"]["tpr"]["excluded"] == [{"g": "b"}]
    assert result["metrics"]["equal_opportunity_difference"] == 0.0


def test_missing_sensitive_values_form_their_own_group():
    frame = fairness_frame()
    frame.loc[:49, "g"] = None
    result = compute_fairness(
        frame, FairnessOptions(label="y", prediction="p", sensitive=["g"])
    ).to_dict()
    names = [g["attributes"]["g"] for g in result["groups"]]
    assert names == ["a", "b", "(missing)"]
    assert result["groups"][2]["n"] == 50
    assert result["overall"]["n"] == 400


def test_declared_but_absent_category_is_listed_with_n_zero():
    frame = fairness_frame()
    frame["g"] = pd.Categorical(frame["g"], categories=["a", "b", "c"])
    result = compute_fairness(
        frame, FairnessOptions(label="y", prediction="p", sensitive=["g"])
    ).to_dict()
    c = result["groups"][2]
    assert c["attributes"] == {"g": "c"} and c["n"] == 0 and c["selection_rate"] is None
    assert c["unstable"] is True
    assert {"g": "c"} in result["aggregates"]["selection_rate"]["excluded"]


def test_string_label_without_positive_label_is_refused():
    frame = fairness_frame()
    frame["y"] = np.where(frame["y"] == 1, "yes", "no")
    with pytest.raises(InputError, match=r"'y'.*text values.*positive_label"):
        compute_fairness(frame, FairnessOptions(label="y", prediction="p", sensitive=["g"]))
    result = compute_fairness(
        frame,
        FairnessOptions(
            label="y",
            prediction="p",
            sensitive=["g"],
            positive_label="yes",
            prediction_positive=["1"],
        ),
    )
    assert result.overall["base_rate"] is not None


def test_small_groups_are_flagged_unstable_and_never_set_the_four_fifths_maximum():
    frame = fairness_frame(200)
    tiny = pd.DataFrame({"y": [1, 0, 1], "p": [1, 1, 1], "g": ["z", "z", "z"]})
    frame = pd.concat([frame, tiny], ignore_index=True)
    result = compute_fairness(
        frame, FairnessOptions(label="y", prediction="p", sensitive=["g"])
    ).to_dict()
    z = next(f for f in result["four_fifths"] if f["attributes"] == {"g": "z"})
    assert z["unstable"] is True and z["impact_ratio"] > 1
    stable = [f["impact_ratio"] for f in result["four_fifths"] if not f["unstable"]]
    assert max(stable) == 1.0


def test_zero_over_zero_ratio_is_null_not_an_error():
    frame = fairness_frame()
    frame["p"] = 0
    result = compute_fairness(
        frame, FairnessOptions(label="y", prediction="p", sensitive=["g"])
    ).to_dict()
    assert result["metrics"]["demographic_parity_ratio"] is None
    assert result["metrics"]["demographic_parity_difference"] == 0.0


def test_missing_label_values_are_refused():
    frame = fairness_frame().astype({"y": "float"})
    frame.loc[3, "y"] = np.nan
    with pytest.raises(InputError, match="'y': has 1 missing"):
        compute_fairness(frame, FairnessOptions(label="y", prediction="p", sensitive=["g"]))


def test_fairness_record_has_no_floats_and_pairs_for_attributes():
    result = compute_fairness(
        fairness_frame(), FairnessOptions(label="y", prediction="p", sensitive=["g"])
    )
    record = result.to_record()
    check_profile(record)
    assert record["groups"][0]["attributes"] == [["g", "a"]]
