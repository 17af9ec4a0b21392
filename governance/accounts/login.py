"""The login forms of the approval pages and the admin: a sign-in refused by the login
throttle says how long to wait (``governance.accounts.throttling``)."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpResponse

from governance.accounts.throttling import throttled_message


def _wait(request: Any) -> int:
    return int(getattr(request, "login_wait_seconds", 0) or 0)


class ThrottleMessageMixin:
    """Replaces "wrong username or password" by the wait when the throttle refused."""

    request: Any

    def get_invalid_login_error(self) -> ValidationError:
        wait = _wait(self.request)
        if wait:
            return ValidationError(throttled_message(wait), code="throttled")
        return super().get_invalid_login_error()  # type: ignore[misc]


class LoginForm(ThrottleMessageMixin, AuthenticationForm):
    """The approval pages' login form."""


class AdminLoginForm(ThrottleMessageMixin, AdminAuthenticationForm):
    """The admin's login form."""


class LoginView(auth_views.LoginView):
    """Django's login view; a throttled attempt is answered 429 with ``Retry-After``."""

    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        wait = _wait(self.request)
        if wait:
            response.status_code = 429
            response["Retry-After"] = str(wait)
        return response
