"""The pages work under the Content-Security-Policy in a real browser (Playwright driving
Debian's Chromium against the live server): the login page, the approval pages, the admin
and the Swagger UI load and render with no policy violation."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.accounts.callers import Caller
from governance.approvals.models import DeploymentRequest
from governance.approvals.services import deployment_request_submit
from tests.approvals.conftest import deploy
from tests.browser import test_signoff_browser as signoff
from tests.browser.test_signoff_browser import log_in, log_out
from tests.conftest import PASSWORD

# The sign-off test's Chromium page (the screenshot folder is the browser conftest's).
page = signoff.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Records every violation the page reports, from before its first script runs.
LISTEN = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


@pytest.fixture
def pending_request(alice, version, ci) -> DeploymentRequest:
    """alice's version, deployed to dev, is awaiting sign-off for test."""
    deploy(ci, version, "dev")
    return deployment_request_submit(
        caller=Caller(user=alice),
        version=version,
        environment="test",
        reason="Validated offline; ready for the test environment.",
    )


class Violations:
    """CSP violations of the pages a browser page visits: the ``securitypolicyviolation``
    events and the console's errors (where Chromium also reports a refused resource)."""

    def __init__(self, browser_page: Any) -> None:
        self.page = browser_page
        self.console: list[str] = []
        browser_page.add_init_script(LISTEN)
        browser_page.on("console", self._console)
        browser_page.on("pageerror", lambda error: self.console.append(f"page error: {error}"))
        browser_page.on("response", self._response)

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.console.append(f"{response.status}: {response.url}")

    def _console(self, message: Any) -> None:
        where = message.location.get("url") or ""
        # The admin names no icon, so Chromium asks for /favicon.ico, which Warden does not serve.
        if where.endswith("/favicon.ico"):
            return
        if message.type == "error" or "Content Security Policy" in message.text:
            self.console.append(f"{message.type}: {message.text} ({where})")

    def assert_none(self, where: str) -> None:
        """No violation so far on the current page (read before it is left)."""
        self.page.wait_for_load_state("networkidle")
        events = self.page.evaluate("window.__cspViolations")
        assert events == [], (where, events)
        assert self.console == [], (where, self.console)


def test_the_pages_work_under_the_content_security_policy(
    alice, admin_user, pending_request, *, live_server, page, screenshots
):
    from playwright.sync_api import expect

    base = live_server.url
    violations = Violations(page)

    response = page.goto(f"{base}/accounts/login/")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    violations.assert_none("login")

    log_in(page, base, "alice")
    expect(page.get_by_role("link", name=re.compile(rf"#{pending_request.pk}\b"))).to_be_visible()
    violations.assert_none("request list")
    # The stylesheet applies (a blocked one would leave the header unstyled).
    header_background = page.locator(".site-header").evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert header_background not in ("rgba(0, 0, 0, 0)", "transparent")

    page.goto(f"{base}/approvals/{pending_request.pk}/")
    expect(page.get_by_role("heading", name="Evidence")).to_be_visible()
    violations.assert_none("review page")
    page.screenshot(path=str(screenshots / "csp-review-page.png"), full_page=True)

    page.goto(f"{base}/api/docs/")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() > 10
    expect(page.locator(".opblock-summary-path").first).to_contain_text("/api/v1/")
    violations.assert_none("swagger ui")
    page.screenshot(path=str(screenshots / "csp-api-docs.png"), full_page=False)

    page.goto(f"{base}/approvals/")
    log_out(page)
    page.goto(f"{base}/admin/login/")
    page.get_by_label("Username").fill(admin_user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/admin/")
    page.goto(f"{base}/admin/approvals/deploymentrequest/")
    expect(page.locator("#result_list")).to_be_visible()
    # The changelist's scripts run: selecting a row shows the action counter.
    page.locator("input.action-select").first.check()
    expect(page.locator(".action-counter")).to_contain_text("1 of 1 selected")
    violations.assert_none("admin changelist")
