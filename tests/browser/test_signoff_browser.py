"""A deployment requested and signed through the approval pages in a real browser
(Playwright driving Debian's Chromium against the live server), with re-authentication."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.approvals.conftest import deploy
from tests.browser.conftest import new_page
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def in_dev(version, ci):
    """The version is deployed to dev, so it may be requested for test."""
    deploy(ci, version, "dev")
    return version


@pytest.fixture
def page(chromium) -> Iterator:
    page = new_page(chromium)
    page.context.set_default_timeout(15_000)
    try:
        yield page
    finally:
        page.context.close()


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/approvals/")
    assert "/accounts/login/" in page.url
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/approvals/")


def log_out(page) -> None:
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/accounts/login/"))


def test_request_and_sign_a_deployment_in_the_browser(
    alice, victor, in_dev, *, screenshots, live_server, page
):
    from playwright.sync_api import expect

    base, version = live_server.url, in_dev

    # alice, a data scientist, requests a deployment to test.
    log_in(page, base, "alice")
    # The skip link is the first thing the keyboard reaches, and it leads to the content.
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to main content")
    page.keyboard.press("Enter")
    expect(page.locator(":focus")).to_have_id("main")
    page.get_by_role("link", name="Request a deployment").first.click()
    page.get_by_label("Model version").select_option(str(version.pk))
    page.get_by_label("Environment").select_option("test")
    page.get_by_label("Justification").fill("Validated offline; ready for the test environment.")
    page.get_by_role("button", name="Submit the request").click()
    page.wait_for_url(re.compile(r"/approvals/\d+/$"))
    request_url = page.url
    expect(page.locator(".badge").first).to_have_text(re.compile("Pending sign-off"))
    expect(page.locator("#gate")).to_contain_text("pending_step:review")
    log_out(page)

    # victor, a validator, finds it awaiting his signature and reviews it.
    log_in(page, base, "victor")
    page.get_by_role("link", name=re.compile("awaiting your signature")).click()
    page.get_by_role("link", name=re.compile(r"#\d+")).first.click()
    assert page.url == request_url
    expect(page.get_by_role("heading", name="Evidence")).to_be_visible()
    expect(page.locator("#version")).to_contain_text(version.artifact_digest)
    page.screenshot(path=str(screenshots / "review-page.png"), full_page=True)

    # A wrong password is refused with the reason, and the form stays.
    page.get_by_role("link", name="Sign this request").click()
    expect(page.get_by_role("heading", name="What you are signing")).to_be_visible()
    expect(page.locator("#content-sha256")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    page.screenshot(path=str(screenshots / "sign-form.png"), full_page=True)
    page.get_by_label("Approve").check()
    page.get_by_label("Password").fill("not-my-password")
    page.get_by_role("button", name="Sign", exact=True).click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("wrong password")
    expect(page.get_by_label("Password")).to_be_visible()
    page.screenshot(path=str(screenshots / "sign-form-wrong-password.png"), full_page=True)

    # The right password signs; the one review step approves the request.
    page.get_by_label("Approve").check()
    page.get_by_label("Comment").fill("Reviewed lineage and metrics.")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign", exact=True).click()
    page.wait_for_url(request_url)
    expect(page.get_by_role("status").first).to_contain_text("Your signature")
    expect(page.locator(".badge").first).to_have_text(re.compile("Approved"))
    expect(page.locator("#gate")).to_contain_text("Allowed")
    expect(page.locator("#policy")).to_contain_text("Victor Vance")
    page.screenshot(path=str(screenshots / "review-page-approved.png"), full_page=True)
