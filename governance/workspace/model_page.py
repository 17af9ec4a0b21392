"""A model's page."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def model_page(request: HttpRequest, name: str) -> HttpResponse:
    return render(request, "workspace/model.html", {"nav": "models", "name": name})
