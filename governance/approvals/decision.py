"""The gate's decision, loaded in one SQL statement.

CI asks the gate on every deployment, so its answer is read in one query: the version and its
model, whether the caller may see it, the environment and the one before it in promotion
order, the deciding request with its policy and signatures, the evidence index, the open
blocking findings, and any fact an app listening to the answer registered
(:func:`register_fact`). The query is written out per database (PostgreSQL and SQLite share it
but for the JSON functions) rather than built by the ORM at every request; the rules are
Python's: ``workflow.gate_reasons`` and ``evidence.judge`` decide on what it loaded.

``gate_decide`` (by objects, no visibility check: the review page, the deployment report)
and ``gate_question`` (by the names CI sends, with the caller's visibility) both answer here,
so the recorded check, the unrecorded status and the review page cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper
from django.db.models import QuerySet
from django.utils import timezone
from guardian.models import GroupObjectPermission, UserObjectPermission

from core.accounts.models import User
from core.errors import InvalidInput, NotFound
from core.roles import SIGNING_ROLES, signing_codename
from governance.approvals.evidence import Candidate, EvidenceResult, judge_all
from governance.approvals.models import (
    BLOCKING_SEVERITIES,
    Deployment,
    DeploymentEvent,
    DeploymentRequest,
    Environment,
    EvidenceEntry,
    Finding,
    FindingStatus,
    SignOff,
    SignOffPolicy,
)
from governance.approvals.workflow import (
    GateFacts,
    RequestFacts,
    RequestState,
    Signature,
    current_step,
    gate_reasons,
    steps_from,
)
from registry import selectors as registry_selectors
from registry.models import ModelStatus, ModelVersion, RegisteredModel, VersionStatus

# Listener facts: name -> a queryset whose having a row is the fact, registered by the apps
# that listen to the gate's answers.
_facts: dict[str, QuerySet[Any]] = {}


def register_fact(name: str, queryset: QuerySet[Any]) -> None:
    """Load whether ``queryset`` has a row with every decision, as
    ``GateDecision.facts[name]``: what a listener of the answer needs to know costs no query
    of its own (the webhooks app asks whether any subscription is active)."""
    _facts[name] = queryset
    _statement.cache_clear()


def _fact_sql() -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    for name, queryset in _facts.items():
        sql, values = queryset.values("pk")[:1].query.sql_with_params()
        parts.append(f",\n      EXISTS ({sql}) AS fact_{name}")
        params.extend(values)
    return "".join(parts), params


@dataclass(frozen=True)
class GateDecision:
    """What the gate answers now for an artifact of a version in an environment, and the
    facts it was decided on. Not recorded: ``services.gate_record`` records a decision."""

    allowed: bool
    status: str
    reasons: list[str]
    request_id: int | None
    signoffs: list[SignOff]
    evidence: list[EvidenceResult]
    decided_at: dt.datetime
    version_id: int
    version: int
    model_name: str
    environment_id: int
    environment: str
    digest: str
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The version as it is named in records (``credit-score v3``)."""
        return f"{self.model_name} v{self.version}"


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _json_functions() -> tuple[str, str, str]:
    """(object, array aggregate, embed a JSON column) in this database's SQL."""
    if connection.vendor == "postgresql":
        return "json_build_object", "json_agg", "{}"
    return "json_object", "json_group_array", "json({})"


def _visibility() -> str:
    """Whether the user (``%s`` four times) may see model ``m``: ``registry.selectors.
    visible_models`` as one expression (the global view permission through the user or a
    group; a per-object view or signing grant to the user or a group)."""
    user_groups = _table(User.groups.through)
    user_perms = _table(User.user_permissions.through)
    group_perms = _table(Group.permissions.through)
    permission = _table(Permission)
    content_type = _table(ContentType)
    codenames = ", ".join(
        f"'{name}'"
        for name in ["view_registeredmodel", *(signing_codename(r) for r in SIGNING_ROLES)]
    )
    model_type = (
        f"JOIN {content_type} ct ON ct.id = ap.content_type_id "
        "AND ct.app_label = 'registry' AND ct.model = 'registeredmodel'"
    )
    # Composed of table names and constants only; every value is a parameter.
    return f"""(
      EXISTS (SELECT 1 FROM {user_perms} up JOIN {permission} ap ON ap.id = up.permission_id
              {model_type}
              WHERE up.user_id = %s AND ap.codename = 'view_registeredmodel')
      OR EXISTS (SELECT 1 FROM {user_groups} ug
              JOIN {group_perms} gp ON gp.group_id = ug.group_id
              JOIN {permission} ap ON ap.id = gp.permission_id {model_type}
              WHERE ug.user_id = %s AND ap.codename = 'view_registeredmodel')
      OR EXISTS (SELECT 1 FROM {_table(UserObjectPermission)} o
              JOIN {permission} ap ON ap.id = o.permission_id {model_type}
              WHERE o.user_id = %s AND ap.codename IN ({codenames})
                AND o.content_type_id = ct.id AND o.object_pk = CAST(m.id AS TEXT))
      OR EXISTS (SELECT 1 FROM {_table(GroupObjectPermission)} o
              JOIN {user_groups} ug ON ug.group_id = o.group_id
              JOIN {permission} ap ON ap.id = o.permission_id {model_type}
              WHERE ug.user_id = %s AND ap.codename IN ({codenames})
                AND o.content_type_id = ct.id AND o.object_pk = CAST(m.id AS TEXT))
    )"""


@cache
def _statement(vendor: str, visibility: bool) -> tuple[str, list[Any]]:
    """The decision's statement for this database, and the parameters of its listener facts
    (they come after the visibility's four and before the question's three)."""
    obj, agg, embed = _json_functions()
    deployments, requests = _table(Deployment), _table(DeploymentRequest)
    environments, policies = _table(Environment), _table(SignOffPolicy)
    severities = ", ".join(f"'{s}'" for s in BLOCKING_SEVERITIES)
    previous = (
        f"(SELECT pe.id FROM {environments} pe WHERE pe.position < e.position "
        "ORDER BY pe.position DESC LIMIT 1)"
    )
    facts, fact_params = _fact_sql()
    # Composed of table names and constants only; every value is a parameter.
    return (
        f"""
    SELECT v.id, v.version, v.status, v.artifact_digest, v.author_id,
      m.id, m.name, m.status, m.risk_tier, m.owner_id, m.sensitive_attributes,
      {_visibility() if visibility else "1 = 1"} AS visible,
      e.id, e.name,
      r.id, r.state, r.expires_at, r.effective_at,
      p.id, p.steps, p.evidence,
      {previous} AS previous_id,
      (SELECT d.event FROM {deployments} d
        WHERE d.model_version_id = v.id AND d.environment_id = {previous}
          AND d.event IN ('{DeploymentEvent.DEPLOYED}', '{DeploymentEvent.ROLLED_BACK}')
        ORDER BY d.occurred_at DESC, d.id DESC LIMIT 1) AS previous_event,
      (SELECT {agg}({obj}('id', s.id, 'step', s.step, 'signer_id', s.signer_id,
          'signer', u.username, 'decision', s.decision, 'meaning', s.meaning,
          'printed_name', s.printed_name, 'comment', s.comment, 'signed_at', s.signed_at,
          'signed_sha256', s.signed_sha256,
          'signed_content', {embed.format("s.signed_content")}))
        FROM {_table(SignOff)} s JOIN {_table(User)} u ON u.id = s.signer_id
        WHERE s.request_id = r.id) AS signoffs,
      (SELECT {agg}({obj}('report_id', x.report_id, 'kind', x.kind, 'sha256', x.sha256,
          'computed_at', x.computed_at, 'passed', x.passed, 'eligible', x.eligible,
          'thresholds', {embed.format("x.thresholds")}, 'covers', {embed.format("x.covers")}))
        FROM {_table(EvidenceEntry)} x WHERE x.model_version_id = v.id) AS evidence,
      (SELECT {agg}(f.id) FROM {_table(Finding)} f
        WHERE f.model_version_id = v.id AND f.status = '{FindingStatus.OPEN}'
          AND f.severity IN ({severities})) AS findings{facts}
    FROM {_table(ModelVersion)} v
    JOIN {_table(RegisteredModel)} m ON m.id = v.model_id
    LEFT JOIN {environments} e ON e.name = %s
    LEFT JOIN {requests} r ON r.id = (
      SELECT r2.id FROM {requests} r2
      WHERE r2.model_version_id = v.id AND r2.environment_id = e.id
        AND r2.state <> '{RequestState.WITHDRAWN}'
      ORDER BY r2.created_at DESC, r2.id DESC LIMIT 1)
    LEFT JOIN {policies} p ON p.id = COALESCE(r.policy_id, (
      SELECT p2.id FROM {policies} p2 WHERE p2.environment_id = e.id AND p2.risk_tier = m.risk_tier
      ORDER BY p2.version DESC LIMIT 1))
    WHERE m.name = %s AND v.version = %s
    """,
        fact_params,
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _when(value: Any) -> dt.datetime | None:
    """A time as either database returns it (a datetime, or ISO text; naive means UTC)."""
    if value is None:
        return None
    found = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return found if found.tzinfo is not None else found.replace(tzinfo=dt.UTC)


def _signoffs(rows: Sequence[Mapping[str, Any]], request_id: int) -> list[SignOff]:
    """The request's signatures as rows read from the database, in their model's order."""
    out = []
    for row in rows:
        signoff = SignOff(
            id=row["id"],
            request_id=request_id,
            step=row["step"],
            signer=User(id=row["signer_id"], username=row["signer"]),
            decision=row["decision"],
            meaning=row["meaning"],
            printed_name=row["printed_name"],
            comment=row["comment"],
            signed_at=_when(row["signed_at"]) or timezone.now(),
            signed_content=_json(row["signed_content"]),
            signed_sha256=row["signed_sha256"],
        )
        signoff._state.adding = False
        out.append(signoff)
    return sorted(out, key=lambda s: (s.signed_at, s.pk))


def step_signatures(signoffs: Iterable[SignOff]) -> list[Signature]:
    """The signatures given on a request's steps (its retrospective review aside)."""
    return [
        Signature(step=s.step, signer_id=s.signer_id, decision=s.decision)
        for s in signoffs
        if s.step != SignOff.RETROSPECTIVE
    ]


def _candidates(rows: Sequence[Mapping[str, Any]]) -> list[Candidate]:
    return [
        Candidate.of(
            {
                **row,
                "computed_at": _when(row["computed_at"]) or timezone.now(),
                "thresholds": _json(row["thresholds"]),
                "covers": _json(row["covers"]),
            }
        )
        for row in rows
    ]


def _decide(row: Sequence[Any], *, digest: str, environment: str, when: dt.datetime) -> Any:
    (
        version_id, number, version_status, artifact_digest, _author,
        _model_id, model_name, model_status, risk_tier, _owner, sensitive,
        _visible, env_id, env_name,
        request_id, state, expires_at, effective_at,
        policy_id, steps, requirements,
        previous_id, previous_event, signoff_rows, evidence_rows, findings, *fact_values,
    ) = row  # fmt: skip
    if env_id is None:
        raise InvalidInput(
            f"environment {environment!r} does not exist",
            fields={"environment": ["Unknown environment."]},
        )
    if policy_id is None:
        raise NotFound(f"no sign-off policy for {env_name}/{risk_tier}")
    signoffs = _signoffs(_json(signoff_rows) or [], request_id) if request_id else []
    results = judge_all(
        requirements=_json(requirements) or [],
        candidates=_candidates(_json(evidence_rows) or []),
        declared=_json(sensitive) or [],
        now=when,
    )
    expires, effective = _when(expires_at), _when(effective_at)
    facts: RequestFacts | None = None
    status = "not_requested"
    if request_id is not None:
        pending = None
        if state == RequestState.PENDING:
            step = current_step(steps_from(_json(steps) or []), step_signatures(signoffs))
            pending = step.name if step else None
        facts = RequestFacts(
            state=state, pending_step=pending, expires_at=expires, effective_at=effective
        )
        status = state
        if expires is not None and expires <= when:
            status = RequestState.EXPIRED
    reasons = gate_reasons(
        GateFacts(
            now=when,
            digest_matches=digest == artifact_digest,
            retired=model_status == ModelStatus.RETIRED or version_status == VersionStatus.RETIRED,
            previous_environment_ok=previous_id is None
            or previous_event == DeploymentEvent.DEPLOYED,
            request=facts,
            evidence=[(r.requirement.kind, r.status) for r in results],
            open_findings=sorted(_json(findings) or []),
        )
    )
    return GateDecision(
        allowed=not reasons,
        status=str(status),
        reasons=reasons,
        request_id=request_id,
        signoffs=signoffs,
        evidence=results,
        decided_at=when,
        version_id=version_id,
        version=number,
        model_name=model_name,
        environment_id=env_id,
        environment=env_name,
        digest=digest,
        facts=dict(zip(_facts, fact_values, strict=True)),
    )


def _load(*, user: User | None, model: str, version: int, environment: str) -> Sequence[Any] | None:
    visibility = user is not None and not user.is_superuser
    sql, fact_params = _statement(connection.vendor, visibility)
    params: list[Any] = [user.pk] * 4 if visibility and user is not None else []
    params += [*fact_params, environment, model, version]
    with _cursor() as cursor:
        cursor.execute(sql, params)
        row: Sequence[Any] | None = cursor.fetchone()
    return row


def _cursor() -> Any:
    """A cursor for the decision's statement. On PostgreSQL a prepared one: planning this
    statement costs ten times its execution (about 7 ms against 0.7), so each connection
    plans it once (connections are kept between requests in production); still logged like
    every query. Django leaves psycopg's preparation off (``prepare_threshold`` None); turning
    it on with a threshold never reached lets this cursor alone prepare, as Django's own
    client-side-binding cursors never prepare."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = NEVER_AUTOMATICALLY
    prepared = _prepared_cursor_class()(raw)
    if connection.queries_logged:
        return _LoggedPrepared(prepared, connection)
    return connection.make_cursor(prepared)


class _LoggedPrepared(CursorDebugWrapper):
    """Logs the statement as written, with its parameters: Django would log the SQL psycopg
    last sent, which a prepared statement's execution does not keep."""

    def debug_sql(
        self,
        sql: Any = None,
        params: Any = None,
        use_last_executed_query: bool = False,
        many: bool = False,
    ) -> Any:
        return super().debug_sql(sql, params, use_last_executed_query=False, many=many)


# psycopg prepares a server-binding cursor's query after this many executions; only the
# decision's cursor binds server-side, and it asks to prepare at once.
NEVER_AUTOMATICALLY = 2**31 - 1


@cache
def _prepared_cursor_class() -> type:
    from django.db.backends.postgresql.base import (  # type: ignore[attr-defined]
        ServerBindingCursor,
    )

    class PreparedCursor(ServerBindingCursor):
        """Server-side binding, prepared on first execution on its connection."""

        def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
            return super().execute(query, params, **{**options, "prepare": True})

    return PreparedCursor


def gate_question(
    *,
    user: User,
    model: str,
    version: int,
    environment: str,
    digest: str,
    now: dt.datetime | None = None,
) -> GateDecision:
    """May the artifact ``digest`` of version ``version`` of ``model`` go to ``environment``
    now, asked by ``user``? A version the user may not see is ``NotFound`` (as a missing
    one), an unknown environment ``InvalidInput``; one statement."""
    row = (
        _load(user=user, model=model, version=version, environment=environment)
        if (user.is_active)
        else None
    )
    if row is None or not row[11]:
        registry_selectors.model_get(user=user, name=model)  # says which of the two is missing
        raise NotFound(f"version {version} of model {model!r} not found")
    return _decide(row, digest=digest, environment=environment, when=now or timezone.now())


def gate_decide(
    *,
    version: ModelVersion,
    environment: Environment,
    digest: str,
    now: dt.datetime | None = None,
) -> GateDecision:
    """May the artifact ``digest`` of ``version`` go to ``environment`` now? Deny by default
    (``workflow.gate_reasons``); writes nothing."""
    row = _load(
        user=None, model=version.model.name, version=version.version, environment=environment.name
    )
    if row is None:
        raise NotFound(f"version {version.version} of model {version.model.name!r} not found")
    return _decide(row, digest=digest, environment=environment.name, when=now or timezone.now())
