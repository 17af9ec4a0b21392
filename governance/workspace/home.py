"""Each person's home page: what their roles call for, on the models they may see."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.accounts.models import User
from governance.workspace.dashboard import home_for


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The signed-in person's home (``dashboard.home_for``); anonymous visitors are sent to
    the login page."""
    user = request.user
    assert isinstance(user, User)
    return render(request, "workspace/home.html", {"nav": "home", "home": home_for(user)})
