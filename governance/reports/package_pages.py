"""The regulator's package from the pages: start it, follow it, download it.

``package_new`` (``?model=NAME``) is the form: a model's package, or, for auditors and
officers (``package.full_log_permitted``), the whole log; an optional range of UTC dates, both
inclusive. Posting it queues the job and leads to ``package_detail``, which refreshes itself
every 2 s while the job runs and links the PDF when it is done; ``package_pdf`` streams it.
A model the person may not see is a 404 on every page, as the model's own page is.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, cast

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.http import require_http_methods

from core.accounts.models import User
from core.errors import Conflict, DomainError, Forbidden, NotFound
from governance.reports import package as packages
from governance.reports.models import PackageStatus, RegulatorPackage
from registry import selectors as registry_selectors
from registry.models import RegisteredModel

SCOPES = [("model", "This model's records"), ("full", "The whole audit log")]


class PackageForm(forms.Form):
    """The package's scope and range. ``full`` is offered only to those who may package the
    whole log; ``model`` lists the models the person may package when none is given."""

    model = forms.ChoiceField(label="Model", required=False)
    scope = forms.ChoiceField(
        label="What the package covers",
        choices=SCOPES,
        initial="model",
        widget=forms.RadioSelect,
        help_text="A model's package proves that each of its records is in the signed log, "
        "not that none is missing; only the whole log's package proves completeness.",
    )
    since = forms.DateField(
        label="From (UTC date, inclusive)",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = forms.DateField(
        label="To (UTC date, inclusive)",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(
        self, *args: Any, models: list[str], fixed_model: str | None, full: bool, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fixed_model = fixed_model
        field = cast(forms.ChoiceField, self.fields["model"])
        field.choices = [("", "Choose a model"), *((name, name) for name in models)]
        if fixed_model is not None:
            del self.fields["model"]
        if not full:
            del self.fields["scope"]
            field.required = True  # without the whole log, a model is the only choice
            field.error_messages["required"] = "Choose the model to package."
        else:
            field.help_text = "Needed for a model's package; leave it for the whole log."

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scope = data.get("scope", "model")
        missing = not (self.fixed_model or data.get("model")) and "model" not in self.errors
        if scope == "model" and missing:
            self.add_error("model", "Choose the model to package, or the whole log.")
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The end must not be before the start.")
        return data

    def model_name(self) -> str | None:
        if self.cleaned_data.get("scope", "model") == "full":
            return None
        return self.fixed_model or self.cleaned_data.get("model") or None

    def times(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The range as instants: from the start of ``since`` to the end of ``until`` (UTC)."""
        since, until = self.cleaned_data.get("since"), self.cleaned_data.get("until")
        start = dt.datetime.combine(since, dt.time(), dt.UTC) if since else None
        end = (
            dt.datetime.combine(until, dt.time(), dt.UTC) + dt.timedelta(days=1) if until else None
        )
        return start, end


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _visible_model(user: User, name: str) -> RegisteredModel:
    try:
        return registry_selectors.model_get(user=user, name=name)
    except NotFound as error:
        raise Http404(error.message) from error


def _packageable(user: User) -> list[str]:
    return [
        m.name
        for m in registry_selectors.model_list(user=user)
        if packages.package_permitted(user, m)
    ]


@login_required
@require_http_methods(["GET", "POST"])
def package_new(request: HttpRequest) -> HttpResponse:
    """The form (GET) and its submission (POST): queue the package and go to its page."""
    user = _user(request)
    name = request.GET.get("model") or None
    model = _visible_model(user, name) if name else None
    full = packages.full_log_permitted(user)
    choices = _packageable(user)
    context: dict[str, Any] = {"model": model, "full": full, "nav": "reports"}
    if (model is not None and not packages.package_permitted(user, model)) or not (full or choices):
        context["refusal"] = (
            "A regulator's package carries the audit log's records, so making one needs the "
            "right to read the audit log (validators, officers, auditors)."
        )
        return render(request, "reports/pages/package_new.html", context, status=403)
    form = PackageForm(
        request.POST or None,
        models=choices,
        fixed_model=model.name if model else None,
        full=full,
        initial={"scope": "model"},
    )
    context["form"] = form
    if request.method == "POST":
        if request.POST.get("scope") == "full" and not full:
            context["refusal"] = "A package of the whole log is for auditors and officers."
            return render(request, "reports/pages/package_new.html", context, status=403)
        if not form.is_valid():
            return render(request, "reports/pages/package_new.html", context, status=400)
        chosen = form.model_name()
        target = None
        if chosen is not None:
            target = (
                model
                if model is not None and model.name == chosen
                else _visible_model(user, chosen)
            )
        since, until = form.times()
        try:
            made = packages.package_request(user=user, model=target, since=since, until=until)
        except Forbidden as error:
            context["refusal"] = error.message
            return render(request, "reports/pages/package_new.html", context, status=403)
        except DomainError as error:
            form.add_error(None, error.message)
            return render(request, "reports/pages/package_new.html", context, status=400)
        return HttpResponseRedirect(reverse("report_pages:package_detail", args=[made.pk]))
    return render(request, "reports/pages/package_new.html", context)


def _get(request: HttpRequest, package_id: uuid.UUID) -> RegulatorPackage:
    try:
        return packages.package_get(user=_user(request), package_id=package_id)
    except NotFound as error:
        raise Http404(error.message) from error


def _ago(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    if timezone.now() - moment < dt.timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment).split(',')[0]} ago"


@login_required
@require_http_methods(["GET"])
def package_detail(request: HttpRequest, package_id: uuid.UUID) -> HttpResponse:
    """The job's progress (refreshed every 2 s while it runs), then the download."""
    made = _get(request, package_id)
    running = made.status in (PackageStatus.QUEUED, PackageStatus.RUNNING)
    return render(
        request,
        "reports/pages/package_detail.html",
        {
            "package": made,
            "running": running,
            "requested_ago": _ago(made.created_at),
            "finished_ago": _ago(made.finished_at),
            "subject": made.model.name if made.model else "the whole audit log",
            "period": packages.range_words(made.since, made.until).removeprefix(", "),
            "nav": "reports",
        },
    )


@login_required
@require_http_methods(["GET"])
def package_pdf(request: HttpRequest, package_id: uuid.UUID) -> HttpResponseBase:
    """The PDF of a done package (409 before it is done)."""
    made = _get(request, package_id)
    try:
        path = packages.package_file(made)
    except Conflict as error:
        return HttpResponse(error.message, status=409, content_type="text/plain; charset=utf-8")
    except NotFound as error:
        raise Http404(error.message) from error
    subject = made.model.name if made.model else "full-log"
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=f"warden-package-{subject}-{made.pk}.pdf",
        content_type="application/pdf",
    )
