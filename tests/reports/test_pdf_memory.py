"""What keeps a long-lived report worker from growing: one WeasyPrint font configuration per
process, released before the interpreter's shutdown, and a stylesheet without font features
(WeasyPrint 70 leaks native memory for both, the soak benchmark measured it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from governance.reports.pdf import render

pytestmark = pytest.mark.database_free

GENERATED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
REPORT_TEMPLATES = Path(settings.BASE_DIR) / "templates" / "reports"
HTML = '<html><body><table class="data"><tr><td class="num">1,234</td></tr></table></body></html>'


def test_every_pdf_of_a_process_uses_one_font_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[Any] = []

    class Counting(render.FontConfiguration):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    monkeypatch.setattr(render, "FontConfiguration", Counting)
    monkeypatch.setattr(render, "_fonts", render._Fonts())
    for name in ("a.json", "b.json", "c.json"):
        pdf = render.html_to_pdf(
            HTML, attachment=b"{}", attachment_name=name, generated_at=GENERATED
        )
        assert pdf.startswith(b"%PDF-")
    assert len(made) == 1
    # A forked child makes its own rather than use its parent's.
    render._fonts.after_fork_in_child()
    render.html_to_pdf(HTML, attachment=b"{}", attachment_name="d.json", generated_at=GENERATED)
    assert len(made) == 2


def test_the_report_templates_ask_for_no_font_feature() -> None:
    """``font-variant-*``, ``font-feature-settings`` or ``font-kerning`` would make WeasyPrint
    leak a Pango attribute list for every piece of text laid out with them."""
    for path in sorted(REPORT_TEMPLATES.glob("*.*")):
        text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
        found = re.findall(r"font-(?:variant[\w-]*|feature-settings|kerning)\s*:", text)
        assert not found, f"{path.name}: {found}"


def test_a_process_that_made_a_pdf_exits_cleanly() -> None:
    """The shared font configuration is let go at exit while Pango is loaded: left to the
    interpreter's shutdown, releasing it crashed the process (SIGSEGV)."""
    code = (
        "import django; django.setup()\n"
        "from datetime import datetime, timezone\n"
        "from governance.reports.pdf.render import html_to_pdf\n"
        f"pdf = html_to_pdf({HTML!r}, attachment=b'{{}}', attachment_name='r.json',"
        " generated_at=datetime(2026, 3, 2, tzinfo=timezone.utc))\n"
        "assert pdf.startswith(b'%PDF-')\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "governance.settings.test"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
