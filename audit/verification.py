"""In-service verification of the whole log, straight from the database."""

from __future__ import annotations

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from audit.models import LogHead
from audit.verifier import ChainReport, ChainVerifier, Finding

CHUNK = 20_000


def verify_log(*, origin: str | None = None, using: str = DEFAULT_DB_ALIAS) -> ChainReport:
    """Re-check every record of the log: canonical bytes, seq, chain, times, stored leaves.

    Reads in seq ranges so memory stays flat on millions of records. Beyond the body checks
    of ``audit.verifier`` it compares the stored ``seq`` and ``leaf`` columns with the bodies,
    and the head row with the last record (a truncated tail).
    """
    origin = origin or settings.AUDIT_LOG_ORIGIN
    verifier = ChainVerifier(origin)
    report = verifier.report
    connection = connections[using]
    last_seq_column = -1
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT seq, leaf, body FROM audit_auditrecord WHERE log = %s AND seq > %s "
                "ORDER BY seq LIMIT %s",
                [origin, last_seq_column, CHUNK],
            )
            rows = cursor.fetchall()
            if not rows:
                break
            for seq_column, leaf_column, body in rows:
                raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
                leaf = verifier.feed(raw, position=seq_column)
                if leaf != leaf_column:
                    report.findings.append(
                        Finding("E_LEAF", seq_column, "stored leaf hash does not match the body")
                    )
            last_seq_column = rows[-1][0]
    head = LogHead.objects.using(using).filter(log=origin).first()
    size = head.size if head else 0
    if report.records < size:
        report.findings.append(
            Finding(
                "E_TRUNCATED",
                report.records,
                f"the log head says {size} records, only {report.records} are stored",
            )
        )
    elif head is not None and report.records and head.tip != report.tip:
        report.findings.append(
            Finding("E_PREV", report.last_seq, "the log head's tip is not the last record's leaf")
        )
    return report
