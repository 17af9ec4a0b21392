"""A person's own API tokens: make one (its secret shown once, on the page that made it),
list them, revoke one. ``governance.accounts.services`` decides what a token may be (its
scopes, ``API_TOKEN_MAX_AGE_DAYS``) and records each act; nobody sees or revokes another's
tokens here (404)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.validators import MaxValueValidator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from core.accounts.callers import Caller
from core.accounts.models import ApiKey, ApiKeyScope, User
from core.errors import DomainError
from governance.accounts.services import api_key_create, api_key_revoke
from governance.approvals.forms import add_domain_error

REVOKE_REASON = "Revoked by its owner on the API tokens page."


def max_age_days() -> int:
    return int(settings.API_TOKEN_MAX_AGE_DAYS)


class TokenForm(forms.Form):
    """A new personal token: a name, its scopes and how many days it lives (at most
    ``API_TOKEN_MAX_AGE_DAYS``); the service judges all three again."""

    name = forms.CharField(
        max_length=100,
        help_text="What the token is for, e.g. the script or machine that uses it.",
    )
    scopes = forms.MultipleChoiceField(
        choices=ApiKeyScope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="A scope only narrows what your roles let you do; it grants nothing more. "
        "No token signs, rejects, revokes or breaks the glass.",
        error_messages={"required": "Choose at least one scope."},
    )
    expires_in_days = forms.IntegerField(
        label="Expires in (days)",
        min_value=1,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        days = max_age_days()
        field = self.fields["expires_in_days"]
        assert isinstance(field, forms.IntegerField)
        field.max_value = days
        field.validators.append(
            MaxValueValidator(days, message=f"A personal token expires within {days} days.")
        )
        field.initial = days
        field.help_text = f"From 1 to {days} days (the longest a personal token lives)."
        field.widget.attrs.update({"min": 1, "max": days})
        field.error_messages["min_value"] = "A token lives at least 1 day."


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def relative(when: dt.datetime, now: dt.datetime) -> str:
    """``when`` against ``now`` in words: "just now", "3 minutes ago", "in 90 days"."""
    seconds = (when - now).total_seconds()
    future, seconds = seconds > 0, abs(seconds)
    if seconds < 60:
        return "just now" if not future else "in under a minute"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            # Whole days to the nearest (a token made for 30 days expires "in 30 days"),
            # hours and minutes as far as they are complete.
            count = round(seconds / size) if unit == "day" else int(seconds // size)
            words = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {words}" if future else f"{words} ago"
    return ""  # unreachable: seconds >= 60 here


def _rows(user: User, now: dt.datetime) -> list[dict[str, Any]]:
    labels = dict(ApiKeyScope.choices)
    rows = []
    for key in ApiKey.objects.filter(user=user).order_by("-created_at", "-pk"):
        expired = key.expires_at is not None and key.expires_at <= now
        if key.revoked_at is not None:
            state, state_class = "Revoked", "revoked"
        elif expired:
            state, state_class = "Expired", "expired"
        else:
            state, state_class = "Active", "active"
        rows.append(
            {
                "key": key,
                "scopes": [(scope, labels.get(scope, scope)) for scope in key.scopes],
                "created": relative(key.created_at, now),
                "expires": relative(key.expires_at, now) if key.expires_at else "",
                "revoked": relative(key.revoked_at, now) if key.revoked_at else "",
                "state": state,
                "state_class": state_class,
                "revocable": key.revoked_at is None and not expired,
            }
        )
    return rows


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    """The signed-in person's tokens and the form that makes one. A token's secret is on
    the page that made it and never again (the response is not cached)."""
    user = _user(request)
    status, created, secret = 200, None, ""
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            days = form.cleaned_data["expires_in_days"]
            try:
                secret, created = api_key_create(
                    caller=Caller(user=_user(request)),
                    user=user,
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    expires_at=timezone.now() + dt.timedelta(days=days),
                )
            except DomainError as error:
                if "expires_at" in error.fields:
                    error.fields["expires_in_days"] = error.fields.pop("expires_at")
                add_domain_error(form, error)
                status = error.http_status
            else:
                form = TokenForm()
        else:
            status = 400
    else:
        form = TokenForm()
    now = timezone.now()
    return render(
        request,
        "workspace/tokens.html",
        {
            "nav": "tokens",
            "form": form,
            "created": created,
            "secret": secret,
            "rows": _rows(user, now),
            "max_days": max_age_days(),
        },
        status=status,
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    """Revoke one of the signed-in person's own tokens; anyone else's is 404."""
    key = ApiKey.objects.filter(pk=token_id, user=_user(request)).first()
    if key is None:
        raise Http404("No such token.")
    try:
        api_key_revoke(caller=Caller(user=_user(request)), key=key, reason=REVOKE_REASON)
    except DomainError as error:
        messages.error(request, f"{key.name}: {error.message}.")
    else:
        messages.success(request, f"The token “{key.name}” is revoked; it no longer works.")
    return HttpResponseRedirect(reverse("workspace:tokens"))
