"""The regulator's package from the pages: start it, follow it, download it."""

import uuid

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse


@login_required
def package_new(request: HttpRequest) -> HttpResponse:
    raise Http404("not built yet")


@login_required
def package_detail(request: HttpRequest, package_id: uuid.UUID) -> HttpResponse:
    raise Http404("not built yet")


@login_required
def package_pdf(request: HttpRequest, package_id: uuid.UUID) -> HttpResponse:
    raise Http404("not built yet")
