"""A disk that fills up during a report upload: the request is refused with one clear 507
(``insufficient_storage``), nothing is half-written (no partial file in the upload
directory nor in Django's spool directory, no report, no job, no audit record, as for any
refused request), and the same upload succeeds once space is freed.

The full disk is real: a small tmpfs mounted for the test (root only; skipped elsewhere,
a failure under CI=true). Both places an upload is written are tried: the report's input
directory (``REPORTS_UPLOAD_DIR``, written by the service) and the directory Django spools
large uploads to while parsing the body (``FILE_UPLOAD_TEMP_DIR``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.accounts.callers import Caller
from governance.accounts.services import api_key_create
from governance.reports.models import Report, ReportInput, ReportJob, ReportStatus
from tests.apitools import assert_error, assert_no_record_since, last_seq
from tests.conftest import client_with_key
from tests.reports.conftest import BIKE, COMPAS, COMPAS_FIELDS, stored_files, upload
from tests.support import need

pytestmark = pytest.mark.django_db

DISK_BYTES = 4 * 1024 * 1024
FREE_BYTES = 512 * 1024  # less than any input below (COMPAS 2.2 MB, the bike file 1.1 MB)


def _mount(target: Path) -> str:
    """Why a 4 MiB tmpfs could not be mounted on ``target`` ('' when it was)."""
    if os.geteuid() != 0:
        return "the tests are not run as root"
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(target)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"mount could not run: {exc}"
    return "" if done.returncode == 0 else f"mount failed: {' '.join(done.stderr.split())}"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted again after the test."""
    disk = tmp_path / "disk"
    disk.mkdir()
    refusal = _mount(disk)
    need(not refusal, "a small tmpfs to fill up", f"{refusal} (mount -t tmpfs needs root)")
    try:
        yield disk
    finally:
        done = subprocess.run(["umount", str(disk)], capture_output=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path, *, leave: int) -> Path:
    """A file taking all the free space of ``disk`` but ``leave`` bytes."""
    stats = os.statvfs(disk)
    ballast = disk / "ballast"
    with ballast.open("wb") as out:
        out.write(b"\0" * (stats.f_bavail * stats.f_frsize - leave))
    return ballast


def files_on(disk: Path) -> list[Path]:
    return sorted(p for p in disk.rglob("*") if p.is_file())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def full_disk(settings: Any, small_disk: Path, request: pytest.FixtureRequest) -> Path:
    """The tmpfs as the upload directory (``store``) or Django's spool directory
    (``spool``: every file over 64 KiB is spooled), with all but 512 KiB taken."""
    where = request.param
    if where == "store":
        settings.REPORTS_UPLOAD_DIR = str(small_disk / "inputs")
    else:
        spool = small_disk / "spool"
        spool.mkdir()
        settings.FILE_UPLOAD_TEMP_DIR = str(spool)
        settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    fill(small_disk, leave=FREE_BYTES)
    return small_disk


def assert_refused_and_nothing_left(response: Any, disk: Path, uploads: Path, seq: int) -> None:
    error = assert_error(response, 507, code="insufficient_storage")
    assert set(error) == {"code", "message"}
    assert "no space" in error["message"] and "upload" in error["message"], error
    assert "\n" not in error["message"]
    assert Report.objects.count() == 0
    assert ReportJob.objects.count() == 0 and ReportInput.objects.count() == 0
    assert_no_record_since(seq)
    assert files_on(disk) == [disk / "ballast"], "a partial file was left behind"
    assert stored_files(uploads) == []


@pytest.mark.parametrize("full_disk", ["store", "spool"], indirect=True)
def test_fairness_upload_to_a_full_disk_is_507_and_leaves_nothing(
    alice, version, post, settings, full_disk
):
    seq = last_seq()
    refused = post(alice, **COMPAS_FIELDS, evaluation=upload(COMPAS))
    assert_refused_and_nothing_left(refused, full_disk, Path(settings.REPORTS_UPLOAD_DIR), seq)

    (full_disk / "ballast").unlink()
    accepted = post(alice, **COMPAS_FIELDS, evaluation=upload(COMPAS))
    assert accepted.status_code == 202, accepted.json()
    report = Report.objects.get(pk=accepted.json()["id"])
    assert report.status == ReportStatus.DONE
    assert report.inputs.get().sha256 == sha256(COMPAS)
    stored = files_on(full_disk)
    if Path(settings.REPORTS_UPLOAD_DIR).is_relative_to(full_disk):
        assert [p.read_bytes() for p in stored] == [COMPAS.read_bytes()]
    else:
        assert stored == []  # the spooled copy went with the request


@pytest.mark.parametrize("full_disk", ["spool", "store"], indirect=True)
@pytest.mark.usefixtures("version")
def test_second_file_of_a_drift_upload_hits_the_full_disk(
    alice, post, settings, bike_months, full_disk
):
    """The first file fits and the second does not: the first goes too (a key's request)."""
    key, _ = api_key_create(
        caller=Caller(user=alice, auth="cli"), user=alice, name="ci", scopes=["reports:write"]
    )
    client = client_with_key(key)

    def request() -> Any:
        return post(
            client, kind="drift", model="recidivism", version=1,
            reference=upload(bike_months[0]), current=upload(BIKE),
            columns="temp:numerical,hum:numerical,weathersit:categorical",
        )  # fmt: skip

    seq = last_seq()
    assert bike_months[0].stat().st_size < FREE_BYTES < BIKE.stat().st_size
    uploads = Path(settings.REPORTS_UPLOAD_DIR)
    assert_refused_and_nothing_left(request(), full_disk, uploads, seq)

    (full_disk / "ballast").unlink()
    accepted = request()
    assert accepted.status_code == 202, accepted.json()
    report = Report.objects.get(pk=accepted.json()["id"])
    assert report.status == ReportStatus.DONE
    assert {i.role: i.sha256 for i in report.inputs.all()} == {
        "reference": sha256(bike_months[0]),
        "current": sha256(BIKE),
    }
