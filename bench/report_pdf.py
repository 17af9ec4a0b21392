"""Time to render a 20-column drift report PDF (target: under 4 s).

Builds a realistic drift result in the METRICS_SPEC section 5 shape from synthetic data
(15 numerical columns, 5 categorical; 5,000 reference and 5,000 current rows, a third of
the columns shifted), with the binned distributions the charts need and a lineage graph,
then renders it with ``governance.reports.pdf.render_report`` (HTML, 20 matplotlib SVG
charts, WeasyPrint PDF/A-3b with the JSON attached). Prints the best and median of
``--repeat`` runs, the page count and the file size.

    PYTHONPATH=. .venv/bin/python bench/report_pdf.py [--repeat 5] [--out report.pdf]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import django
import numpy as np
from scipy import spatial, stats

TARGET_SECONDS = 4.0


def build(rng: np.random.Generator) -> tuple[dict, dict]:
    from governance.reports.pdf import ColumnDistribution

    columns, distributions = [], {}
    n = 5000
    for index in range(15):
        name = f"feature_{index:02d}"
        shift = 0.6 if index % 3 == 0 else 0.0
        ref = rng.gamma(2.0 + index % 4, 1.0, n)
        cur = rng.gamma(2.0 + index % 4, 1.0 + shift / 2, n) + shift
        normed = stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        r, c = np.histogram(ref, edges)[0], np.histogram(cur, edges)[0]
        q = np.unique(np.quantile(ref, np.linspace(0.1, 0.9, 9)))
        pr = np.maximum(np.bincount(np.searchsorted(q, ref), minlength=q.size + 1) / n, 1e-4)
        pc = np.maximum(np.bincount(np.searchsorted(q, cur), minlength=q.size + 1) / n, 1e-4)
        columns.append(
            {
                "name": name,
                "type": "numerical",
                "method": "wasserstein",
                "statistic": normed,
                "p_value": None,
                "threshold": 0.1,
                "drifted": bool(normed >= 0.1),
                "psi": float(np.sum((pc - pr) * np.log(pc / pr))),
                "n_reference": n,
                "n_current": n,
                "status": "ok",
            }
        )
        distributions[name] = ColumnDistribution(r.tolist(), c.tolist(), edges=edges.tolist())
    for index in range(5):
        name = f"segment_{index}"
        categories = [f"level_{k}" for k in range(4 + index)]
        p_ref = rng.dirichlet(np.ones(len(categories)) * 5)
        p_cur = p_ref if index % 2 else rng.dirichlet(np.ones(len(categories)) * 5)
        r, c = rng.multinomial(n, p_ref), rng.multinomial(n, p_cur)
        js = float(spatial.distance.jensenshannon(r / n, c / n))
        pr, pc = np.maximum(r / n, 1e-4), np.maximum(c / n, 1e-4)
        columns.append(
            {
                "name": name,
                "type": "categorical",
                "method": "jensenshannon",
                "statistic": js,
                "p_value": None,
                "threshold": 0.1,
                "drifted": js >= 0.1,
                "psi": float(np.sum((pc - pr) * np.log(pc / pr))),
                "n_reference": n,
                "n_current": n,
                "status": "ok",
            }
        )
        distributions[name] = ColumnDistribution(r.tolist(), c.tolist(), categories=categories)
    drifted = sum(c["drifted"] for c in columns)
    result = {
        "columns": columns,
        "drifted_count": drifted,
        "share": drifted / len(columns),
        "dataset_drift": drifted / len(columns) >= 0.5,
    }
    return result, distributions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings.test")
    os.environ.setdefault("DJANGO_ENV", "test")
    django.setup()
    logging.getLogger("weasyprint").setLevel(logging.WARNING)
    from governance.reports.pdf import (
        InputDigest,
        LineageEdge,
        LineageGraph,
        LineageNode,
        PolicyInfo,
        PolicyThreshold,
        ReportContext,
        ReportSubject,
        render_report,
    )

    result, distributions = build(np.random.default_rng(20260302))
    context = ReportContext(
        report_id="bench-20-columns",
        subject=ReportSubject("demand-forecast", "3", "sha256:" + "ab" * 32),
        generated_at=datetime(2026, 3, 2, tzinfo=UTC),
        policy=PolicyInfo("prod/medium v4", [PolicyThreshold("Dataset drift", "share ≥ 0.5")]),
        inputs=[
            InputDigest("reference", "ref.parquet", "cd" * 32, 5000),
            InputDigest("current", "cur.parquet", "ef" * 32, 5000),
        ],
        lineage=LineageGraph(
            [
                LineageNode("d", "train v1", "dataset"),
                LineageNode("m", "demand-forecast v3", "model_version"),
                LineageNode("p", "prod", "deployment"),
            ],
            [LineageEdge("d", "m", "training"), LineageEdge("m", "p", "deployed")],
        ),
        distributions=distributions,
    )
    render_report(result, context)  # warm-up: imports, fontconfig, matplotlib caches
    timings, pdf = [], b""
    for _ in range(args.repeat):
        start = time.perf_counter()
        pdf = render_report(result, context)
        timings.append(time.perf_counter() - start)
    out = (
        args.out or Path(os.environ.get("BENCH_OUTPUT_DIR", "test-output/bench")) / "report_pdf.pdf"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pdf)
    pages = "?"
    try:
        info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True)
        pages = next(
            line.split()[-1] for line in info.stdout.splitlines() if line.startswith("Pages:")
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    best, median = min(timings), statistics.median(timings)
    verdict = "OK" if median < TARGET_SECONDS else "SLOW"
    print(
        f"20-column drift PDF: best {best:.2f} s, median {median:.2f} s over {args.repeat} runs "
        f"(target < {TARGET_SECONDS:.0f} s: {verdict}); {pages} pages, "
        f"{len(pdf) / 1024:.0f} KiB -> {out}"
    )


if __name__ == "__main__":
    main()
