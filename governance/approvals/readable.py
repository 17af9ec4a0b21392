"""Words for what the approval pages show: the gate's reason codes, evidence statuses and
signature meanings as a person reads them, and moments as relative phrases. Pure functions:
the codes themselves stay the API's and the records'."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from governance.approvals.workflow import EvidenceStatus, Meaning

_PLAIN = {
    "not_requested": "no deployment request",
    "rejected": "the request was rejected",
    "revoked": "the approval was revoked",
    "expired": "the approval has expired",
    "digest_mismatch": "the artifact digest is not the registered one",
    "retired": "the model or version is retired",
    "previous_environment_missing": "not deployed to the previous environment",
}
_EVIDENCE = {
    "evidence_missing": "{kind} evidence is missing",
    "evidence_failed": "{kind} evidence failed",
    "evidence_stale": "{kind} evidence is out of date",
}


def reason_text(code: str) -> str:
    """A gate reason code (``evidence_missing:fairness``) as words; an unknown code as is."""
    if code in _PLAIN:
        return _PLAIN[code]
    head, _, rest = str(code).partition(":")
    if head in _EVIDENCE and rest:
        return _EVIDENCE[head].format(kind=rest)
    if head == "pending_step" and rest:
        return f"waiting for the signature of step “{rest}”"
    if head == "open_finding" and rest:
        return f"open finding #{rest}"
    if head == "waiting_until" and rest:
        return f"waiting until {rest.replace('T', ' ').replace('Z', ' UTC')}"
    return str(code)


def reasons_text(codes: Iterable[str]) -> str:
    """Reason codes as one readable list (``fairness evidence is missing; open finding #3``)."""
    return "; ".join(reason_text(code) for code in codes)


def evidence_status_text(status: str) -> str:
    """An evidence status as a word (``missing``, ``failed``, ``out of date``, ``passed``)."""
    return "out of date" if status == EvidenceStatus.STALE else str(status)


def meaning_text(meaning: str) -> str:
    """A signature meaning's label (``Review``); an unknown value as is."""
    return str(Meaning(meaning).label) if meaning in Meaning.values else str(meaning)


_UNITS = (
    (86400 * 365, "year"),
    (86400 * 30, "month"),
    (86400, "day"),
    (3600, "hour"),
    (60, "minute"),
)


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}{'' if number == 1 else 's'}"


def relative_time(moment: dt.datetime | None, now: dt.datetime) -> str:
    """``moment`` relative to ``now``: "just now" within a minute, else the largest whole unit
    ("5 minutes ago", "1 hour ago", "3 days ago", "in 2 days")."""
    if moment is None:
        return ""
    seconds = int((now - moment).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        return "just now"
    phrase = next(_count(seconds // size, unit) for size, unit in _UNITS if seconds >= size)
    return f"in {phrase}" if future else f"{phrase} ago"
