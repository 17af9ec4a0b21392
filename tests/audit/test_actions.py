"""The catalogue of audit actions: the only place an action is spelled, and all documented."""

from __future__ import annotations

import re
from pathlib import Path

from audit.actions import AuditAction, catalogue_markdown
from governance.webhooks.models import WebhookEvent

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("audit", "registry", "governance")
# An action passed as a literal: action="x.y", action=f"x.{y}", emit("x.y").
ACTION_LITERAL = re.compile(r"""(?:\baction=|\bemit\()\s*f?["'][a-z_]+\.[a-z_{}]+["']""")
QUOTED_NAME = re.compile(r"""["']([a-z_]+\.[a-z_]+)["']""")
# Webhook events that are not audit actions: what an action also means (an approval, a
# rejection, a denial, an unchecked deployment) and alerts raised on a record.
WEBHOOK_ONLY = {
    "deployment_request.approved",
    "deployment_request.rejected",
    "deployment.unchecked",
    "gate.denied",
    "signoff.signing_locked",
    "audit.verification_failed",
    "audit.checkpoint_alarm",
}


def _source_files() -> list[Path]:
    return [
        path
        for package in SOURCES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts and path != ROOT / "audit" / "actions.py"
    ]


def test_no_action_is_written_as_a_literal_outside_the_catalogue():
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _source_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ACTION_LITERAL.search(line)
        or any(name in AuditAction.values for name in QUOTED_NAME.findall(line))
    ]
    assert found == []


def test_every_action_is_a_dotted_past_participle_and_values_are_unique():
    assert len(set(AuditAction.values)) == len(AuditAction.values)
    for value in AuditAction.values:
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", value), value


def test_docs_list_every_action_with_its_meaning():
    document = (ROOT / "docs" / "audit-actions.md").read_text(encoding="utf-8")
    assert document == catalogue_markdown(), "regenerate: python -m audit.actions"
    for action in AuditAction:
        assert f"| `{action.value}` | {action.label} |" in document


def test_webhook_events_are_audit_actions_or_named_as_webhook_only():
    assert set(WebhookEvent.values) - set(AuditAction.values) == WEBHOOK_ONLY
    assert WebhookEvent.SIGNOFF_SIGNED == AuditAction.SIGNOFF_SIGNED
