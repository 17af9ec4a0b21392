"""A person's own API tokens."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    return render(request, "workspace/tokens.html", {"nav": "tokens"})


@require_POST
@login_required
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    return render(request, "workspace/tokens.html", {"nav": "tokens"})
