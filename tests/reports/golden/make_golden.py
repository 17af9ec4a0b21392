"""Produce the golden values Warden's report engine is checked against (not run by the tests).

Evidently, Fairlearn and AIF360 are not dependencies of Warden. Run this script in a separate
environment, from the repository root::

    uv venv /tmp/golden-env --python 3.11
    uv pip install --python /tmp/golden-env/bin/python \\
        "evidently==0.7.*" "fairlearn==0.15.*" "aif360==0.6.*" "pandas<3" scipy
    /tmp/golden-env/bin/python tests/reports/golden/make_golden.py

(Evidently 0.7.23 does not import with pandas 3, hence ``pandas<3``.) The script writes the
deterministic inputs (fixed seeds; slices of data/) as CSV under ``inputs/`` and the values
the libraries compute on them as ``drift_evidently.json`` and ``fairness_fairlearn_aif360.json``,
each recording the library versions. tests/reports/test_conformance.py reads the same CSV
files with Warden's reader and compares.
"""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
INPUTS = HERE / "inputs"
DATA = HERE.parents[2] / "data"


def versions(*names: str) -> dict[str, str]:
    return {name: metadata.version(name) for name in names} | {"python": sys.version.split()[0]}


def write_csv(frame: pd.DataFrame, name: str) -> str:
    INPUTS.mkdir(exist_ok=True)
    frame.to_csv(INPUTS / name, index=False)
    return name


def read_csv(name: str) -> pd.DataFrame:
    return pd.read_csv(INPUTS / name, float_precision="round_trip")


def drift_inputs() -> list[dict]:
    """(name, reference file, current file, columns -> type, method override) per case."""
    rng = np.random.default_rng(20240501)
    cases = []

    def pair(name: str, ref: pd.DataFrame, cur: pd.DataFrame, types: dict, method=None):
        cases.append(
            {
                "name": name,
                "reference": write_csv(ref, f"drift_{name}_reference.csv"),
                "current": write_csv(cur, f"drift_{name}_current.csv"),
                "types": types,
                "method": method,
            }
        )

    # Small samples (n_ref <= 1000): KS, chi-square, z.
    pair(
        "small",
        pd.DataFrame(
            {
                "shifted": rng.normal(0, 1, 500),
                "same": rng.normal(5, 2, 500),
                "few_values": rng.integers(0, 4, 500).astype(float),
                "colour": rng.choice(["red", "green", "blue"], 500),
                "flag": rng.choice(["no", "yes"], 500, p=[0.7, 0.3]),
                "with_gaps": np.where(rng.random(500) < 0.1, np.nan, rng.normal(0, 1, 500)),
            }
        ),
        pd.DataFrame(
            {
                "shifted": rng.normal(0.3, 1, 600),
                "same": rng.normal(5, 2, 600),
                "few_values": rng.integers(0, 4, 600).astype(float),
                "colour": rng.choice(["red", "green", "blue", "pink"], 600),
                "flag": rng.choice(["no", "yes"], 600, p=[0.6, 0.4]),
                "with_gaps": np.where(rng.random(600) < 0.2, np.inf, rng.normal(0.1, 1, 600)),
            }
        ),
        {
            "shifted": "numerical",
            "same": "numerical",
            "few_values": "numerical",
            "colour": "categorical",
            "flag": "categorical",
            "with_gaps": "numerical",
        },
    )
    # Large samples (n_ref > 1000): normed Wasserstein and Jensen-Shannon.
    n_ref, n_cur = 5000, 4000
    ref_constant = np.full(n_ref, 1.0)
    pair(
        "large",
        pd.DataFrame(
            {
                "scale": rng.normal(0, 1, n_ref),
                "ties": np.round(rng.gamma(2.0, 1.0, n_ref), 1),
                "five_values": rng.integers(0, 5, n_ref).astype(float),
                "segment": rng.choice(["a", "b", "c", "d", "e"], n_ref),
                "constant_ref": ref_constant,
                "inf_and_nan": np.where(
                    rng.random(n_ref) < 0.05, np.nan, rng.lognormal(0, 1, n_ref)
                ),
            }
        ),
        pd.DataFrame(
            {
                "scale": rng.normal(0, 1.05, n_cur),
                "ties": np.round(rng.gamma(2.2, 1.0, n_cur), 1),
                "five_values": rng.choice(5, n_cur, p=[0.3, 0.2, 0.2, 0.2, 0.1]).astype(float),
                "segment": rng.choice(["b", "c", "d", "e", "f"], n_cur),
                "constant_ref": rng.normal(1.0, 0.01, n_cur),
                "inf_and_nan": np.where(
                    rng.random(n_cur) < 0.05, -np.inf, rng.lognormal(0.2, 1, n_cur)
                ),
            }
        ),
        {
            "scale": "numerical",
            "ties": "numerical",
            "five_values": "numerical",
            "segment": "categorical",
            "constant_ref": "numerical",
            "inf_and_nan": "numerical",
        },
    )
    # Jensen-Shannon forced on numerical columns: Sturges histogram (> 20 reference values)
    # and one bin per value (<= 20).
    pair(
        "js_override",
        pd.DataFrame(
            {"wide": rng.normal(0, 1, 3000), "narrow": rng.integers(0, 15, 3000).astype(float)}
        ),
        pd.DataFrame(
            {"wide": rng.normal(0.2, 1.2, 2500), "narrow": rng.integers(2, 18, 2500).astype(float)}
        ),
        {"wide": "numerical", "narrow": "numerical"},
        method="jensenshannon",
    )
    # Bike sharing: January against July 2011 (688 reference rows: KS, chi-square, z), and
    # the first quarter of 2011 against that of 2012 (> 1000 rows: Wasserstein, JS).
    bike = pd.read_csv(DATA / "bike-sharing-hour.csv")
    columns = ["hr", "weekday", "workingday", "weathersit", "temp", "atemp", "hum",
               "windspeed", "casual", "registered", "cnt"]  # fmt: skip
    bike_types = {
        "hr": "numerical",
        "weekday": "categorical",
        "workingday": "categorical",
        "weathersit": "categorical",
        **dict.fromkeys(columns[4:], "numerical"),
    }
    pair(
        "bike_jan_jul",
        bike[(bike.yr == 0) & (bike.mnth == 1)][columns],
        bike[(bike.yr == 0) & (bike.mnth == 7)][columns],
        bike_types,
    )
    pair(
        "bike_q1_2011_2012",
        bike[(bike.yr == 0) & (bike.mnth <= 3)][columns],
        bike[(bike.yr == 1) & (bike.mnth <= 3)][columns],
        bike_types,
    )
    return cases


def evidently_drift(case: dict) -> dict:
    from evidently.legacy.calculations.data_drift import get_one_column_drift
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType
    from evidently.legacy.metric_results import DatasetColumns, DatasetUtilityColumns
    from evidently.legacy.options.data_drift import DataDriftOptions

    reference, current = read_csv(case["reference"]), read_csv(case["current"])
    results = {}
    for column, kind in case["types"].items():
        column_type = ColumnType.Numerical if kind == "numerical" else ColumnType.Categorical
        if column_type is ColumnType.Categorical:
            reference[column] = reference[column].astype(str).where(reference[column].notna())
            current[column] = current[column].astype(str).where(current[column].notna())
        # What evidently.metrics.ValueDrift does (evidently/metrics/column_statistics.py).
        options = DataDriftOptions(all_features_stattest=case["method"])
        drift = get_one_column_drift(
            current_data=current,
            reference_data=reference,
            column_name=column,
            options=options,
            dataset_columns=DatasetColumns(
                utility_columns=DatasetUtilityColumns(
                    date=None, id=None, target=None, prediction=None
                ),
                target_type=None,
                task=None,
                num_feature_names=[column] if kind == "numerical" else [],
                cat_feature_names=[column] if kind == "categorical" else [],
                text_feature_names=[],
                datetime_feature_names=[],
                target_names=None,
            ),
            column_type=column_type,
            agg_data=True,
        )
        ref = reference[column].replace([-np.inf, np.inf], np.nan).dropna()
        cur = current[column].replace([-np.inf, np.inf], np.nan).dropna()
        stattest = get_stattest(ref, cur, column_type, case["method"])
        results[column] = {
            "type": kind,
            "method": stattest.name,
            "display_name": drift.stattest_name,
            "threshold": drift.stattest_threshold,
            "score": float(drift.drift_score),
            "drifted": bool(drift.drift_detected),
            "n_reference": int(ref.size),
            "n_current": int(cur.size),
        }
    return {**case, "columns": results}


def fairness_inputs() -> list[dict]:
    rng = np.random.default_rng(7)
    n = 6000
    a = rng.choice(["north", "south", "west"], n, p=[0.5, 0.3, 0.2])
    b = rng.choice([0, 1], n, p=[0.6, 0.4])
    base = {"north": 0.4, "south": 0.5, "west": 0.35}
    y = (rng.random(n) < np.vectorize(base.get)(a)).astype(int)
    skill = np.where(y == 1, 0.75, 0.2) + np.where(a == "south", -0.1, 0.0) + 0.05 * b
    p = (rng.random(n) < skill).astype(int)
    synthetic = pd.DataFrame(
        {"y": y, "p": p, "region": a, "member": b, "w": np.round(rng.uniform(0.5, 2.0, n), 3)}
    )
    compas = pd.read_csv(DATA / "compas-scores-two-years.csv")[
        ["two_year_recid", "score_text", "race", "sex"]
    ]
    return [
        {
            "name": "synthetic",
            "input": write_csv(synthetic, "fairness_synthetic.csv"),
            "label": "y",
            "prediction": "p",
            "sensitive": ["region", "member"],
            "privileged": {"region": "north"},
            "favorable": "positive",
            "weight": None,
        },
        {
            "name": "synthetic_weighted",
            "input": "fairness_synthetic.csv",
            "label": "y",
            "prediction": "p",
            "sensitive": ["region"],
            "privileged": {"region": "north"},
            "favorable": "positive",
            "weight": "w",
        },
        {
            "name": "compas_race",
            "input": write_csv(compas, "fairness_compas.csv"),
            "label": "two_year_recid",
            "prediction": "score_text",
            "prediction_positive": ["Medium", "High"],
            "sensitive": ["race"],
            "privileged": {"race": "Caucasian"},
            "favorable": "negative",
            "weight": None,
        },
        {
            "name": "compas_sex",
            "input": "fairness_compas.csv",
            "label": "two_year_recid",
            "prediction": "score_text",
            "prediction_positive": ["Medium", "High"],
            "sensitive": ["sex"],
            "privileged": {"sex": "Female"},
            "favorable": "negative",
            "weight": None,
        },
    ]


def fairlearn_aif360(case: dict) -> dict:
    from aif360.datasets import BinaryLabelDataset
    from aif360.metrics import ClassificationMetric
    from fairlearn import metrics as fm
    from sklearn.metrics import accuracy_score, precision_score

    frame = read_csv(case["input"])
    y = frame[case["label"]].to_numpy().astype(int)
    if "prediction_positive" in case:
        p = frame[case["prediction"]].isin(case["prediction_positive"]).to_numpy().astype(int)
    else:
        p = frame[case["prediction"]].to_numpy().astype(int)
    weights = None if case["weight"] is None else frame[case["weight"]].to_numpy()
    sensitive = frame[case["sensitive"]]
    params = {"sample_weight": weights} if weights is not None else {}
    rates = {
        "selection_rate": fm.selection_rate,
        "base_rate": lambda t, q, **kw: fm.selection_rate(t, t, **kw),
        "tpr": fm.true_positive_rate,
        "fpr": fm.false_positive_rate,
        "fnr": fm.false_negative_rate,
        "precision": lambda t, q, **kw: precision_score(t, q, zero_division=0, **kw),
        "accuracy": accuracy_score,
    }
    frame_params = dict.fromkeys(rates, params) if weights is not None else None
    mf = fm.MetricFrame(
        metrics=rates,
        y_true=y,
        y_pred=p,
        sensitive_features=sensitive,
        sample_params=frame_params,
    )
    groups = []
    for index, row in mf.by_group.iterrows():
        key = index if isinstance(index, tuple) else (index,)
        groups.append(
            {
                "attributes": {
                    c: (v.item() if hasattr(v, "item") else v)
                    for c, v in zip(case["sensitive"], key, strict=True)
                },
                **{name: float(row[name]) for name in rates},
            }
        )
    scalars = {}
    for method in ("between_groups", "to_overall"):
        suffix = "" if method == "between_groups" else "_to_overall"
        kwargs = {"sensitive_features": sensitive, "method": method, **params}
        scalars["demographic_parity_difference" + suffix] = fm.demographic_parity_difference(
            y, p, **kwargs
        )
        scalars["demographic_parity_ratio" + suffix] = fm.demographic_parity_ratio(y, p, **kwargs)
        scalars["equalized_odds_difference" + suffix] = fm.equalized_odds_difference(y, p, **kwargs)
        scalars["equalized_odds_ratio" + suffix] = fm.equalized_odds_ratio(y, p, **kwargs)
        scalars["equal_opportunity_difference" + suffix] = fm.equal_opportunity_difference(
            y, p, **kwargs
        )
        scalars["equal_opportunity_ratio" + suffix] = fm.equal_opportunity_ratio(y, p, **kwargs)
    differences = {}
    for name in ("selection_rate", "tpr", "fpr"):
        for kind in ("difference", "ratio"):
            for method in ("between_groups", "to_overall"):
                value = getattr(mf, kind)(method=method)[name]
                differences[f"{name}.{kind}_{method}"] = float(value)
    # AIF360: "positive" is the favourable outcome, for the label and the prediction.
    fav = 1 if case["favorable"] == "positive" else 0
    ((column, value),) = case["privileged"].items()
    priv = (frame[column] == value).astype(int).to_numpy()
    data = pd.DataFrame({"label": y, "priv": priv})
    dataset = BinaryLabelDataset(
        df=data,
        label_names=["label"],
        protected_attribute_names=["priv"],
        favorable_label=fav,
        unfavorable_label=1 - fav,
        instance_weights_name=None,
    )
    if weights is not None:
        dataset.instance_weights = weights.astype(float)
    classified = dataset.copy(deepcopy=True)
    classified.labels = p.reshape(-1, 1).astype(float)
    metric = ClassificationMetric(
        dataset, classified, unprivileged_groups=[{"priv": 0}], privileged_groups=[{"priv": 1}]
    )
    aif = {
        "disparate_impact": metric.disparate_impact(),
        "statistical_parity_difference": metric.statistical_parity_difference(),
        "average_odds_difference": metric.average_odds_difference(),
        "average_abs_odds_difference": metric.average_abs_odds_difference(),
        "equal_opportunity_difference": metric.equal_opportunity_difference(),
        "theil_index": metric.theil_index(),
    }
    return {
        **case,
        "groups": groups,
        "overall": {name: float(mf.overall[name]) for name in rates},
        "metrics": {k: float(v) for k, v in scalars.items()},
        "aggregates": differences,
        "aif360": {k: float(v) for k, v in aif.items()},
    }


def main() -> None:
    drift = {
        "generated_by": "tests/reports/golden/make_golden.py",
        "libraries": versions("evidently", "pandas", "numpy", "scipy"),
        "cases": [evidently_drift(case) for case in drift_inputs()],
    }
    (HERE / "drift_evidently.json").write_text(json.dumps(drift, indent=1, sort_keys=True) + "\n")
    fairness = {
        "generated_by": "tests/reports/golden/make_golden.py",
        "libraries": versions("fairlearn", "aif360", "scikit-learn", "pandas", "numpy"),
        "cases": [fairlearn_aif360(case) for case in fairness_inputs()],
    }
    (HERE / "fairness_fairlearn_aif360.json").write_text(
        json.dumps(fairness, indent=1, sort_keys=True) + "\n"
    )
    print("wrote", HERE / "drift_evidently.json", HERE / "fairness_fairlearn_aif360.json")


if __name__ == "__main__":
    main()
