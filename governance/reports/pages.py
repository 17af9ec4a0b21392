"""Report pages: request a report, follow its progress, read its PDF."""

import uuid

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse


@login_required
def report_new(request: HttpRequest) -> HttpResponse:
    raise Http404("not built yet")


@login_required
def report_detail(request: HttpRequest, report_id: uuid.UUID) -> HttpResponse:
    raise Http404("not built yet")


@login_required
def report_pdf(request: HttpRequest, report_id: uuid.UUID) -> HttpResponse:
    raise Http404("not built yet")
