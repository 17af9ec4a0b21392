"""Start-up cost of a Warden process, before and after: ``manage.py check`` and
``django.setup()`` + the URLconf, with and without bytecode.

Two checkouts are measured in one run: the current one and an older commit (default: the
merge-base of ``HEAD`` with ``main``; ``--old REV``), checked out into a temporary git
worktree that is removed at the end. Both run with this interpreter and its virtualenv.

Each checkout is measured twice:

- **no bytecode**: ``PYTHONPYCACHEPREFIX`` names a directory holding the compiled standard
  library only, and ``PYTHONDONTWRITEBYTECODE=1``: every module of the virtualenv and of the
  checkout is compiled from source at every start (a virtualenv installed without
  compiling, on a machine that sets ``PYTHONDONTWRITEBYTECODE``, as containers often do).
- **bytecode**: the prefix also holds the virtualenv's site-packages and the checkout's source
  tree, compiled by ``compileall`` (what ``make install`` and the image give).

A cache prefix replaces every ``__pycache__`` lookup, so whatever bytecode the virtualenv has
of its own (printed) plays no part in either figure. Figures are the median of ``--runs``
runs (default 5), the checkouts and modes taken in turn within each round so that a change in
the machine's load falls on all of them alike:

- ``check``: wall time of ``python manage.py check`` (interpreter start included) and its
  peak RSS (``os.wait4``);
- ``setup + URLconf``: the time of ``django.setup()`` and importing ``ROOT_URLCONF``, taken in
  the process, and the process's peak RSS at that point (``getrusage``); also whether any of
  pandas, scipy, pyarrow, matplotlib and WeasyPrint was loaded.

Settings: ``governance.settings.test`` unless ``DJANGO_SETTINGS_MODULE`` says otherwise.

    PYTHONPATH=. .venv/bin/python bench/startup.py [--runs 5] [--old REV] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "scipy", "pyarrow", "matplotlib", "weasyprint")
MODES = ("no bytecode", "bytecode")
# Never compiled into a prefix: the standard library's tests and tools, other trees.
STDLIB_SKIP = r"/(test|tests|site-packages|idlelib|turtledemo|lib2to3|ensurepip|tkinter)/"
TREE_SKIP = r"/(\.venv|\.git|node_modules|\.mypy_cache|\.ruff_cache|\.pytest_cache)/"

SETUP = r"""
import importlib, json, resource, sys, time
start = time.perf_counter()
import django
django.setup()
from django.conf import settings
importlib.import_module(settings.ROOT_URLCONF)
seconds = time.perf_counter() - start
heavy = sorted(name for name in sys.argv[1].split(",") if name in sys.modules)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "rss_kb": rss, "heavy": heavy}))
"""


def git(*args: str, cwd: Path = REPO) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip()


@contextmanager
def old_checkout(rev: str) -> Iterator[Path]:
    """``rev`` checked out (detached) into a temporary worktree, removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="warden-startup-old-"))
    tree = parent / "tree"
    git("worktree", "add", "--detach", "--quiet", str(tree), rev)
    try:
        yield tree
    finally:
        try:
            git("worktree", "remove", "--force", str(tree))
        finally:
            shutil.rmtree(parent, ignore_errors=True)
            git("worktree", "prune")


def compile_into(prefix: Path, directory: str, skip: str | None = None) -> None:
    """Compile every ``.py`` under ``directory`` into the cache prefix (``compileall``;
    files that do not compile, as some packages ship, are left out quietly)."""
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(prefix)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    exclude = ["-x", skip] if skip else []
    subprocess.run(
        [sys.executable, "-m", "compileall", "-qq", "-j0", *exclude, directory],
        env=env,
        check=False,
        timeout=1800,
    )


def count_pyc(directory: Path) -> int:
    return sum(1 for _ in directory.rglob("*.pyc"))


def venv_own_bytecode(site_packages: str) -> str:
    sources = sum(1 for _ in Path(site_packages).rglob("*.py"))
    compiled = sum(1 for _ in Path(site_packages).rglob("__pycache__/*.pyc"))
    return f"{compiled} .pyc files for {sources} .py files in {site_packages}"


def environment(tree: Path, prefix: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONPYCACHEPREFIX", "PYTHONSTARTUP")
    }
    env.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings.test")
    env.update(
        {
            "DJANGO_ENV": env["DJANGO_SETTINGS_MODULE"].rpartition(".")[2],
            "PYTHONPATH": str(tree),
            "PYTHONPYCACHEPREFIX": str(prefix),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def run_check(tree: Path, env: dict[str, str]) -> dict[str, float]:
    """Wall time and peak RSS of one ``manage.py check``."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "manage.py", "check"],
            cwd=tree,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"manage.py check failed in {tree}:\n{errors.read().decode()}")
    return {"seconds": seconds, "rss_mb": usage.ru_maxrss / 1024}


def run_setup(tree: Path, env: dict[str, str]) -> dict[str, Any]:
    """``django.setup()`` + URLconf import time, peak RSS, report libraries loaded."""
    done = subprocess.run(
        [sys.executable, "-c", SETUP, ",".join(HEAVY)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"setup + URLconf failed in {tree}:\n{done.stderr}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {"seconds": found["seconds"], "rss_mb": found["rss_kb"] / 1024, "heavy": found["heavy"]}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


Runs = dict[tuple[str, str, str], list[dict[str, Any]]]
LABELS = ("before", "after")


def prepare_bytecode(scratch: Path, trees: list[Path]) -> dict[str, Path]:
    """The two cache prefixes: the standard library only, and everything."""
    base, full = scratch / "stdlib", scratch / "full"
    started = time.perf_counter()
    compile_into(base, sysconfig.get_paths()["stdlib"], STDLIB_SKIP)
    shutil.copytree(base, full)
    compile_into(full, sysconfig.get_paths()["purelib"])
    for tree in trees:
        compile_into(full, str(tree), TREE_SKIP)
    print(
        f"bytecode: {count_pyc(base)} .pyc (standard library) without, {count_pyc(full)} "
        f"with (+ site-packages and both source trees); compiled in "
        f"{time.perf_counter() - started:.0f} s"
    )
    return {"no bytecode": base, "bytecode": full}


def measure(trees: dict[str, Path], prefixes: dict[str, Path], rounds: int) -> Runs:
    """Every figure ``rounds`` times, each round taking every checkout and mode in turn."""
    runs: Runs = {}
    for round_ in range(1, rounds + 1):
        for label, tree in trees.items():
            for mode, prefix in prefixes.items():
                env = environment(tree, prefix)
                runs.setdefault((label, mode, "check"), []).append(run_check(tree, env))
                runs.setdefault((label, mode, "setup"), []).append(run_setup(tree, env))
        print(f"round {round_}/{rounds} done", flush=True)
    return runs


def print_table(runs: Runs, rounds: int) -> None:
    figures = [
        ("manage.py check", "check", "seconds", "s"),
        ("manage.py check, peak RSS", "check", "rss_mb", "MB"),
        ("setup + URLconf", "setup", "seconds", "s"),
        ("setup + URLconf, peak RSS", "setup", "rss_mb", "MB"),
    ]
    print()
    print(
        f"median of {rounds} runs".ljust(46)
        + "".join(lab.rjust(10) for lab in LABELS)
        + "   after/before"
    )
    for mode in MODES:
        for title, kind, key, unit in figures:
            values = [median([run[key] for run in runs[(lab, mode, kind)]]) for lab in LABELS]
            ratio = values[1] / values[0] if values[0] else float("nan")
            row = f"{title} ({mode}), {unit}".ljust(46)
            row += "".join(f"{value:.2f}".rjust(10) for value in values)
            print(row + f"{ratio:.2f}".rjust(15))
    for label in LABELS:
        heavy = runs[(label, MODES[0], "setup")][-1]["heavy"]
        print(f"{label}: report libraries loaded by setup + URLconf: {', '.join(heavy) or 'none'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each figure (median)")
    parser.add_argument("--old", help="the older commit (default: merge-base of HEAD and main)")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args()

    old_rev = git("rev-parse", args.old or git("merge-base", "HEAD", "main"))
    dirty = " + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    print(f"before: {git('log', '-1', '--format=%h %<(70,trunc)%s', old_rev).rstrip()}")
    print(f"after:  {git('log', '-1', '--format=%h %<(70,trunc)%s', 'HEAD').rstrip()}{dirty}")
    print(f"python {sys.version.split()[0]} ({sys.executable})")
    print(f"settings: {os.environ.get('DJANGO_SETTINGS_MODULE', 'governance.settings.test')}")
    own = venv_own_bytecode(sysconfig.get_paths()["purelib"])
    print(f"virtualenv's own bytecode (not read, a cache prefix is used): {own}")

    with (
        tempfile.TemporaryDirectory(prefix="warden-startup-") as scratch,
        old_checkout(old_rev) as old_tree,
    ):
        trees = dict(zip(LABELS, (old_tree, REPO), strict=True))
        prefixes = prepare_bytecode(Path(scratch), list(trees.values()))
        runs = measure(trees, prefixes, args.runs)
    print_table(runs, args.runs)

    target = args.json
    if target is None and os.environ.get("BENCH_OUTPUT_DIR"):
        target = Path(os.environ["BENCH_OUTPUT_DIR"]) / "startup.json"
    if target is not None:
        document = {
            "before": old_rev,
            "after": git("rev-parse", "HEAD") + dirty,
            "runs": {" | ".join(key): value for key, value in runs.items()},
        }
        target.write_text(json.dumps(document, indent=2) + "\n")
        print(f"figures written to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
