"""The people's side in a real browser (Playwright driving Debian's Chromium against the live
server), on the demo as `make run` loads it: a risk officer's day, an auditor who reads
everything and may change nothing, and a data scientist who cannot see another team's model.
Every page visited is checked at 1280 px: no table or figure wider than its container."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command

from governance.management import demo as demo_story
from tests.browser.conftest import new_page

PASSWORD = "browser-demo-pass"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# What is wider than its container, on the page now: tables, figures, drawings, images and
# preformatted blocks, against their parent's width; and the page against the window.
TOO_WIDE = """() => {
  const wide = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth + 1) {
    wide.push(`page ${root.scrollWidth}px > window ${root.clientWidth}px`);
  }
  const shown = 'main table, main svg, main figure, main img, main pre';
  for (const el of document.querySelectorAll(shown)) {
    if (el.closest('svg') && el.tagName.toLowerCase() !== 'svg') continue;
    const parent = el.parentElement;
    if (!parent) continue;
    const width = el.getBoundingClientRect().width;
    const room = parent.clientWidth;
    if (width > room + 1) {
      const kind = typeof el.className === 'string' ? el.className.split(' ')[0] : '';
      const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
        + (kind ? '.' + kind : '');
      wide.push(`${name} ${Math.round(width)}px > ${room}px`);
    }
  }
  return wide;
}"""


@pytest.fixture
def demo(settings) -> None:
    """The demo, loaded as `make run` loads it, with its reports computed."""
    settings.REPORTS_DATASET_ROOTS = [str(demo_story.derived_dir())]
    call_command("seed_demo", force=True, verbosity=0, password=PASSWORD)


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/")
    assert "/accounts/login/" in page.url, "an anonymous visitor is sent to the login page"
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/")


def assert_fits(page, where: str) -> None:
    wide = page.evaluate(TOO_WIDE)
    assert not wide, f"{where}: wider than their container at 1280 px: {wide}"


def links_in_main(page, base: str) -> list[str]:
    """The distinct same-site links of the page's content (not the header's)."""
    hrefs = page.eval_on_selector_all("main a[href]", "els => els.map(e => e.href)")
    seen: dict[str, None] = {}
    for href in hrefs:
        parts = urlsplit(href)
        if f"{parts.scheme}://{parts.netloc}" != base or not parts.path.startswith("/"):
            continue
        seen.setdefault(href.split("#", 1)[0], None)
    return list(seen)


def walk(page, base: str, urls: list[str], who: str) -> None:
    """Every page answers without an error; each HTML page fits at 1280 px."""
    for url in urls:
        response = page.request.get(url)
        assert response.status < 400, f"{who}: {url} answered {response.status}"
        if response.headers.get("content-type", "").startswith("text/html"):
            page.goto(url)
            assert_fits(page, f"{who} on {urlsplit(url).path}")


def test_a_risk_officer_signs_the_waiting_request_and_exports_the_package(
    demo, live_server, chromium, screenshots
):
    from playwright.sync_api import expect

    base = live_server.url
    page = new_page(chromium)
    log_in(page, base, "rory")
    page.screenshot(path=str(screenshots / "home-risk-officer.png"), full_page=True)
    assert_fits(page, "the risk officer's home")
    dashboard_links = links_in_main(page, base)

    # The waiting request is on the dashboard; its review shows the drift evidence.
    page.get_by_role("link", name=re.compile(r"bike-demand v2 to prod")).first.click()
    page.wait_for_url(re.compile(r"/approvals/\d+/$"))
    review_url = page.url
    evidence = page.locator("#evidence")
    expect(evidence).to_contain_text("Drift")
    assert_fits(page, "the review page")
    page.screenshot(path=str(screenshots / "review-waiting.png"), full_page=True)

    # The linked report, and its PDF.
    evidence.get_by_role("link", name="Drift report").first.click()
    page.wait_for_url(re.compile(r"/reports/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Drift report")
    assert_fits(page, "the drift report's page")
    pdf_href = page.get_by_role("link", name="Download the PDF").get_attribute("href")
    pdf = page.request.get(base + pdf_href)
    assert pdf.status == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF-")

    # The risk officer signs with re-authentication; the meaning is the step's.
    page.goto(review_url)
    page.get_by_role("link", name="Sign this request").click()
    expect(page.get_by_text("Meaning of your signature")).to_be_visible()
    page.get_by_label("Approve").check()
    page.get_by_label("Comment").fill("Drift report reviewed; risk accepted for prod.")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign", exact=True).click()
    page.wait_for_url(review_url)
    expect(page.locator(".badge").first).to_have_text(re.compile("Approved"))
    expect(page.locator("#gate")).to_contain_text("Allowed")
    page.screenshot(path=str(screenshots / "review-approved.png"), full_page=True)

    # The model page offers the regulator's package; the job runs and the PDF downloads.
    page.goto(f"{base}/models/bike-demand/")
    assert_fits(page, "the model page")
    page.screenshot(path=str(screenshots / "model-page.png"), full_page=True)
    page.get_by_role("link", name="Export the regulator's package").click()
    page.get_by_role("button", name="Make the package").click()
    page.wait_for_url(re.compile(r"/reports/package/[0-9a-f-]{36}/$"))
    download_link = page.get_by_role("link", name="Download the package (PDF)")
    for _ in range(30):  # the job runs in the server's process; the page refreshes itself
        if download_link.count():
            break
        page.wait_for_timeout(1000)
        page.reload()
    page.screenshot(path=str(screenshots / "package-done.png"), full_page=True)
    with page.expect_download() as download_info:
        download_link.click()
    package = Path(download_info.value.path())
    assert package.read_bytes().startswith(b"%PDF-")

    # The root page and every page the dashboard links answer without an error.
    walk(page, base, [f"{base}/", *dashboard_links], "risk officer")


def test_an_auditor_reads_everything_and_a_data_scientist_sees_only_their_team(
    demo, live_server, chromium, screenshots
):
    from playwright.sync_api import expect

    base = live_server.url

    auditor = new_page(chromium)
    log_in(auditor, base, "abe")
    auditor.screenshot(path=str(screenshots / "home-auditor.png"), full_page=True)
    expect(auditor.get_by_role("heading", name="Audit log")).to_be_visible()
    home_links = links_in_main(auditor, base)
    assert any("/models/bike-demand/" in url for url in home_links)
    assert any("/models/recidivism-risk/" in url for url in home_links)
    for url in [f"{base}/", *home_links]:
        response = auditor.request.get(url)
        assert response.status < 400, f"auditor: {url} answered {response.status}"
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        auditor.goto(url)
        assert_fits(auditor, f"auditor on {urlsplit(url).path}")
        # No action is offered: the content holds no form and no button (the header's
        # log-out form is outside it), and no link to a page that changes something.
        where = urlsplit(url).path
        assert auditor.locator("main form").count() == 0, f"a form offered on {where}"
        assert auditor.locator("main button").count() == 0, f"a button offered on {where}"
        changing = auditor.locator(
            "main a[href*='/sign/'], main a[href*='/approvals/new/'], "
            "main a[href*='/reports/new/'], main a[href*='/package/new/'], "
            "main a[href*='/revoke/'], main a[href*='/withdraw/'], "
            "main a[href*='/retrospective/'], main a[href*='/emergency/']"
        )
        assert changing.count() == 0, f"an action link on {where}"
    nav = auditor.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Request a deployment")).to_have_count(0)
    auditor.goto(f"{base}/models/recidivism-risk/")
    auditor.screenshot(path=str(screenshots / "model-page-auditor.png"), full_page=True)

    # dana works on recidivism-risk; bike-demand belongs to another team.
    scientist = new_page(chromium)
    log_in(scientist, base, "dana")
    scientist.screenshot(path=str(screenshots / "home-data-scientist.png"), full_page=True)
    expect(scientist.locator("main")).to_contain_text("recidivism-risk")
    expect(scientist.locator("main")).not_to_contain_text("bike-demand")
    scientist_links = links_in_main(scientist, base)
    response = scientist.goto(f"{base}/models/bike-demand/")
    assert response is not None and response.status == 404
    walk(scientist, base, [f"{base}/", *scientist_links], "data scientist")
