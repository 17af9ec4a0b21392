"""Warden's ``report`` command, start-up included, against Fairlearn's and Evidently's computation.

One run prints, for fairness (300k rows, two sensitive columns, binary label and prediction)
and drift (200k rows x 20 columns per side, numerical and categorical):

- Warden: the **whole command**, ``.venv/bin/python manage.py report fairness|drift ... --json``
  in a fresh process (interpreter start, imports, reading the files, computing, printing), no
  PDF; the median of ``--runs`` wall-clock times.
- the peer: the **computation alone**, timed inside the peer's process around the metric call
  only (Fairlearn: the ``MetricFrame`` of the per-group rates and the six scalar metrics;
  Evidently: ``Report([DataDriftPreset()]).run(...)``), its data already in memory; the median
  of as many runs.
- the ratio, and the agreement of the numbers: every per-group rate and scalar metric against
  Fairlearn (target: absolute difference <= 1e-12), and against Evidently the statistic, the
  method and the drift flag of every column whose method both define alike (target: relative
  difference <= 1e-9). At 200k rows both choose the normed Wasserstein distance for a
  numerical column and the Jensen-Shannon distance for a categorical one (METRICS_SPEC
  section 1); KS, the z-test and chi-square are not chosen at this size (and chi-square is a
  deliberate difference), and Warden's PSI is not Evidently's, so none of those is compared.

The peers never become dependencies of the product: the script builds its own virtual
environment (``python -m venv`` and pip: ``evidently==0.7.*``, ``fairlearn==0.15.*`` and
``pandas<3``, the pandas Evidently 0.7 imports with) under ``$BENCH_OUTPUT_DIR/vs_peers`` or a
temporary directory, removed at the end unless ``--keep``; ``--venv DIR`` reuses one. Warden's
own packages are compiled to bytecode first, as ``make install`` leaves them. The data are
generated with a fixed seed; every random float column is data the engines compute on.

    PYTHONPATH=. .venv/bin/python bench/vs_peers.py [--runs 5] [--format parquet|csv] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
PEERS = ["evidently==0.7.*", "fairlearn==0.15.*", "pandas<3"]
APP_PACKAGES = ["governance", "audit", "registry", "datafiles"]
FAIRNESS_TARGET, DRIFT_TARGET = 8.0, 5.0
FAIRNESS_TOLERANCE, DRIFT_TOLERANCE = 1e-12, 1e-9
RATES = ["selection_rate", "base_rate", "tpr", "fpr", "fnr", "precision", "accuracy"]
SCALARS = [
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
]
EVIDENTLY_METHODS = {
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
}

# Runs in the peers' virtual environment: reads the files (untimed), times the metric call
# alone ``runs`` times, and prints the times and the numbers as JSON.
PEER = textwrap.dedent(
    r"""
    import json, sys, time
    import numpy as np
    import pandas as pd

    kind, runs, spec = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])

    def read(path):
        return pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)

    def fairness():
        import fairlearn
        from fairlearn import metrics as fm
        from sklearn.metrics import accuracy_score, precision_score

        frame = read(spec["input"])
        y, p, groups = frame["label"], frame["prediction"], frame[spec["sensitive"]]
        rates = {
            "n": fm.count,
            "selection_rate": fm.selection_rate,
            "base_rate": lambda y_true, y_pred: float(np.mean(y_true)),
            "tpr": fm.true_positive_rate,
            "fpr": fm.false_positive_rate,
            "fnr": fm.false_negative_rate,
            "precision": lambda y_true, y_pred: precision_score(y_true, y_pred, zero_division=0),
            "accuracy": accuracy_score,
        }
        scalars = ["demographic_parity_difference", "demographic_parity_ratio",
                   "equalized_odds_difference", "equalized_odds_ratio",
                   "equal_opportunity_difference", "equal_opportunity_ratio"]

        def compute():
            frame = fm.MetricFrame(metrics=rates, y_true=y, y_pred=p, sensitive_features=groups)
            values = {name: float(getattr(fm, name)(y, p, sensitive_features=groups))
                      for name in scalars}
            return frame.by_group, values

        times = []
        for _ in range(runs):
            start = time.perf_counter()
            by_group, values = compute()
            times.append(time.perf_counter() - start)
        groups_out = [
            {"attributes": dict(zip(spec["sensitive"], [str(v) for v in key])),
             **{name: float(row[name]) for name in rates}}
            for key, row in by_group.iterrows()
        ]
        return {"library": f"fairlearn {fairlearn.__version__}", "times": times,
                "groups": groups_out, "metrics": values}

    def drift():
        import evidently
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        definition = DataDefinition(numerical_columns=spec["numerical"],
                                    categorical_columns=spec["categorical"])
        reference = Dataset.from_pandas(read(spec["reference"]), data_definition=definition)
        current = Dataset.from_pandas(read(spec["current"]), data_definition=definition)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            snapshot = Report([DataDriftPreset()]).run(current_data=current,
                                                       reference_data=reference)
            times.append(time.perf_counter() - start)
        columns = {}
        for metric in snapshot.dict()["metrics"]:
            config = metric["config"]
            if config.get("type", "").endswith("ValueDrift"):
                columns[config["column"]] = {"method": config["method"],
                                             "threshold": config["threshold"],
                                             "statistic": float(metric["value"])}
        return {"library": f"evidently {evidently.__version__}", "times": times,
                "columns": columns}

    print(json.dumps(fairness() if kind == "fairness" else drift()))
    """
)


def fairness_data(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """A binary classifier's labels and predictions over five races and two sexes, its
    error and base rates differing by group (every group has positives and negatives)."""
    race = rng.choice(["a", "b", "c", "d", "e"], rows, p=[0.35, 0.3, 0.2, 0.1, 0.05])
    sex = rng.choice(["female", "male"], rows)
    base = {"a": 0.3, "b": 0.4, "c": 0.5, "d": 0.45, "e": 0.35}
    label = (rng.random(rows) < np.vectorize(base.get)(race)).astype(np.int64)
    accuracy = np.where(sex == "male", 0.82, 0.76) - np.where(race == "b", 0.05, 0.0)
    prediction = np.where(rng.random(rows) < accuracy, label, 1 - label).astype(np.int64)
    return pd.DataFrame({"label": label, "prediction": prediction, "race": race, "sex": sex})


def drift_data(
    rows: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """Reference and current tables of 12 numerical columns (random floats: normal,
    log-normal, uniform, some shifted or rescaled in the current table) and 8 categorical
    ones (4 of text, 4 integer-coded), some with shifted frequencies."""
    sides = []
    for current in (False, True):
        columns: dict[str, Any] = {}
        for index in range(12):
            shift = 0.05 * index if current and index % 3 == 0 else 0.0
            scale = 1.1 if current and index % 4 == 1 else 1.0
            if index % 3 == 0:
                values = rng.normal(10.0 + shift, 2.0 * scale, rows)
            elif index % 3 == 1:
                values = rng.lognormal(0.0 + shift, 0.5 * scale, rows)
            else:
                values = rng.uniform(0.0, 100.0 * scale, rows)
            columns[f"num_{index}"] = values
        for index in range(4):
            levels = [f"level_{k}" for k in range(3 + index)]
            weights = np.linspace(1.0, 2.0 + (0.5 * index if current else 0.0), len(levels))
            columns[f"cat_{index}"] = rng.choice(levels, rows, p=weights / weights.sum())
        for index in range(4):
            levels_n = 4 + 2 * index
            weights = np.linspace(1.0, 1.5 + (0.3 if current and index % 2 else 0.0), levels_n)
            columns[f"code_{index}"] = rng.choice(levels_n, rows, p=weights / weights.sum())
        sides.append(pd.DataFrame(columns))
    numerical = [f"num_{i}" for i in range(12)]
    categorical = [f"cat_{i}" for i in range(4)] + [f"code_{i}" for i in range(4)]
    return sides[0], sides[1], numerical, categorical


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def peer_venv(folder: Path) -> Path:
    """A virtual environment with the peers, built with ``venv`` and pip (reused if it
    already imports them)."""
    python = folder / "bin" / "python"
    check = [str(python), "-c", "import evidently, fairlearn"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    print(f"building the peers' virtual environment in {folder} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PEERS],
        check=True,
    )
    return python


def warden(args: list[str], runs: int) -> tuple[list[float], dict[str, Any]]:
    """Wall-clock times of ``manage.py report ... --json`` in fresh processes, and its
    output. Prints each run's CPU time (user + system) too: on a shared machine the wall
    clock also counts the time the process waited for a core."""
    command = [str(REPO / ".venv" / "bin" / "python"), "manage.py", "report", *args, "--json"]
    env = {**os.environ, "DJANGO_ENV": os.environ.get("DJANGO_ENV", "dev")}
    times, cpu, output = [], [], ""
    for _ in range(runs):
        before = os.times()
        start = time.perf_counter()
        done = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, check=False
        )
        times.append(time.perf_counter() - start)
        after = os.times()
        cpu.append(
            after.children_user
            - before.children_user
            + after.children_system
            - before.children_system
        )
        if done.returncode != 0:
            raise SystemExit(f"manage.py report {args[0]} failed:\n{done.stderr}")
        output = done.stdout
    print(
        f"Warden {args[0]}: wall {', '.join(f'{t:.2f}' for t in times)} s; "
        f"CPU {', '.join(f'{t:.2f}' for t in cpu)} s",
        flush=True,
    )
    return times, json.loads(output)


def peer(python: Path, kind: str, runs: int, spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), "-c", PEER, kind, str(runs), json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the {kind} peer failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def fairness_agreement(ours: dict[str, Any], theirs: dict[str, Any]) -> tuple[float, int, str]:
    """The largest absolute difference over every group rate and scalar metric, how many
    numbers were compared, and what differed most."""
    worst, compared, where = 0.0, 0, "-"
    by_key = {json.dumps(g["attributes"], sort_keys=True): g for g in theirs["groups"]}
    for group in ours["groups"]:
        key = json.dumps({k: str(v) for k, v in group["attributes"].items()}, sort_keys=True)
        other = by_key.pop(key)
        if int(other["n"]) != group["n"]:
            raise SystemExit(f"group {key}: n {group['n']} against {other['n']}")
        for name in RATES:
            difference = abs(float(group[name]) - other[name])
            compared += 1
            if difference > worst:
                worst, where = difference, f"{name} of {key}"
    if by_key:
        raise SystemExit(f"groups only the peer has: {sorted(by_key)}")
    for name in SCALARS:
        difference = abs(float(ours["metrics"][name]) - theirs["metrics"][name])
        compared += 1
        if difference > worst:
            worst, where = difference, name
    return worst, compared, where


def drift_agreement(ours: dict[str, Any], theirs: dict[str, Any]) -> tuple[float, int, list[str]]:
    """The largest relative difference of the compared statistics, how many columns were
    compared, and any disagreement of method or drift flag."""
    worst, compared, disagreements = 0.0, 0, []
    for column in ours["columns"]:
        other = theirs["columns"].get(column["name"])
        if other is None or column["status"] != "ok":
            disagreements.append(f"{column['name']}: not compared")
            continue
        method = EVIDENTLY_METHODS.get(other["method"])
        if method != column["method"]:
            disagreements.append(f"{column['name']}: method {column['method']} / {other['method']}")
            continue
        statistic = float(column["statistic"])
        scale = max(abs(other["statistic"]), np.finfo(float).tiny)
        worst = max(worst, abs(statistic - other["statistic"]) / scale)
        compared += 1
        if (other["statistic"] >= other["threshold"]) != column["drifted"]:
            disagreements.append(f"{column['name']}: drift flag differs")
    return worst, compared, disagreements


def line(name: str, ours: list[float], theirs: list[float], library: str, target: float) -> str:
    mine, peer_time = statistics.median(ours), statistics.median(theirs)
    ratio = peer_time / mine
    verdict = "meets" if ratio >= target else "below"
    return (
        f"{name:<9} {mine:>9.2f} s {library + ' ' + format(peer_time, '.2f') + ' s':>24} "
        f"{ratio:>6.1f}x  (target {target:g}x: {verdict})"
    )


def show(
    args: argparse.Namespace,
    fairness: tuple[list[float], dict[str, Any], dict[str, Any]],
    drift: tuple[list[float], dict[str, Any], dict[str, Any]],
    width: int,
) -> None:
    """Print the table: times and ratios, every run, the agreement of the numbers."""
    fairness_times, fairness_ours, fairlearn = fairness
    drift_times, drift_ours, evidently = drift
    fair_diff, fair_count, fair_where = fairness_agreement(fairness_ours, fairlearn)
    drift_diff, drift_count, drift_issues = drift_agreement(drift_ours, evidently)
    print(
        f"\n{args.fairness_rows:,} rows x 2 sensitive columns (fairness); "
        f"{args.drift_rows:,} rows x {width} columns per side "
        f"(drift); {args.format}; median of {args.runs}"
    )
    print("Warden: whole `manage.py report ... --json` process; peers: computation alone\n")
    print(f"{'report':<9} {'Warden':>11} {'peer':>24} {'ratio':>7}")
    print(line("fairness", fairness_times, fairlearn["times"], fairlearn["library"],
               FAIRNESS_TARGET))  # fmt: skip
    print(line("drift", drift_times, evidently["times"], evidently["library"], DRIFT_TARGET))
    print("\nall runs (s):")
    print(f"  Warden fairness {', '.join(f'{t:.2f}' for t in fairness_times)}")
    print(f"  {fairlearn['library']:<15} {', '.join(f'{t:.2f}' for t in fairlearn['times'])}")
    print(f"  Warden drift    {', '.join(f'{t:.2f}' for t in drift_times)}")
    print(f"  {evidently['library']:<15} {', '.join(f'{t:.2f}' for t in evidently['times'])}")
    print("\nagreement:")
    print(
        f"  fairness: {fair_count} numbers (7 rates x {len(fairness_ours['groups'])} groups, "
        f"6 scalar metrics), max |difference| {fair_diff:.3g} ({fair_where}); "
        f"target {FAIRNESS_TOLERANCE:g}: {'ok' if fair_diff <= FAIRNESS_TOLERANCE else 'NO'}"
    )
    methods = sorted({c["method"] for c in drift_ours["columns"]})
    print(
        f"  drift: {drift_count} columns compared ({', '.join(methods)}: statistic, method "
        f"and drift flag), max relative difference {drift_diff:.3g}; target "
        f"{DRIFT_TOLERANCE:g}: "
        f"{'ok' if drift_diff <= DRIFT_TOLERANCE and not drift_issues else 'NO'}"
    )
    print(
        "  not compared: PSI (Warden's decile PSI is not Evidently's), chi-square (a "
        "deliberate difference), KS and the z-test (neither library chooses them above "
        "1,000 reference rows)"
    )
    for issue in drift_issues:
        print(f"  ! {issue}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fairness-rows", type=int, default=300_000)
    parser.add_argument("--drift-rows", type=int, default=200_000)
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--venv", type=Path, help="reuse (or build) the peers' venv here")
    parser.add_argument("--keep", action="store_true", help="keep the data and the venv")
    args = parser.parse_args()

    if os.environ.get("BENCH_OUTPUT_DIR"):
        work = Path(os.environ["BENCH_OUTPUT_DIR"]) / "vs_peers"
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="warden-vs-peers-"))
    try:
        python = peer_venv(args.venv or work / "peers-venv")
        subprocess.run(
            [str(REPO / ".venv" / "bin" / "python"), "-m", "compileall", "-q", "-j0",
             *APP_PACKAGES],
            cwd=REPO, check=True,
        )  # fmt: skip
        rng = np.random.default_rng(20240611)
        suffix = f".{args.format}"
        fairness_file = write(fairness_data(args.fairness_rows, rng), work / f"fairness{suffix}")
        reference, current, numerical, categorical = drift_data(args.drift_rows, rng)
        reference_file = write(reference, work / f"reference{suffix}")
        current_file = write(current, work / f"current{suffix}")
        types = ",".join(
            [f"{c}:numerical" for c in numerical] + [f"{c}:categorical" for c in categorical]
        )

        fairness_times, fairness_ours = warden(
            ["fairness", "--input", str(fairness_file), "--label", "label",
             "--prediction", "prediction", "--sensitive", "race,sex"],
            args.runs,
        )  # fmt: skip
        fairlearn = peer(
            python, "fairness", args.runs,
            {"input": str(fairness_file), "sensitive": ["race", "sex"]},
        )  # fmt: skip
        drift_times, drift_ours = warden(
            ["drift", "--reference", str(reference_file), "--current", str(current_file),
             "--columns", types],
            args.runs,
        )  # fmt: skip
        evidently = peer(
            python, "drift", args.runs,
            {"reference": str(reference_file), "current": str(current_file),
             "numerical": numerical, "categorical": categorical},
        )  # fmt: skip

        show(
            args,
            (fairness_times, fairness_ours, fairlearn),
            (drift_times, drift_ours, evidently),
            len(numerical) + len(categorical),
        )
    finally:
        if not args.keep and not os.environ.get("BENCH_OUTPUT_DIR"):
            shutil.rmtree(work, ignore_errors=True)
        elif not args.keep:
            for name in ("fairness", "reference", "current"):
                (work / f"{name}.{args.format}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
