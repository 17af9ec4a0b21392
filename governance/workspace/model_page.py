"""A model's page: its inventory card, versions and where each is live, the lineage of one
version, the deployment timeline of every environment, reports, findings, signing grants,
its audit trail with what was verified of it, and the actions the person may take.

Read-only: every action is a link to the page or API that performs it through a service.
A model the person may not see is a 404, the same as a missing one.
"""

from __future__ import annotations

from typing import cast

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.accounts.models import User
from core.errors import NotFound
from governance.workspace.model_data import model_page_data


def _version_param(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    return int(value)


@login_required
@require_GET
def model_page(request: HttpRequest, name: str) -> HttpResponse:
    """``?lineage=N`` draws version N's lineage (default: the newest version); ``?trail=N``
    is the page of the audit trail; ``?gate=hide`` leaves the gate's checks out of it."""
    user = cast(User, request.user)
    try:
        data = model_page_data(
            user=user,
            name=name,
            trail_page=request.GET.get("trail") or 1,
            lineage_of=_version_param(request.GET.get("lineage")),
            hide_gate=request.GET.get("gate") == "hide",
        )
    except NotFound as error:
        raise Http404(error.message) from error
    return render(
        request,
        "workspace/model.html",
        {
            "nav": "models",
            "page": data,
            "model": data.model,
            "actions": data.actions,
            "hide_gate": request.GET.get("gate") == "hide",
        },
    )
