"""Admin change forms as a browser submits them: the rendered form's fields and values."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any


class _FormFields(HTMLParser):
    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.data: dict[str, list[str]] = {}
        self.select: tuple[str, bool] | None = None
        self.textarea: str | None = None

    def _add(self, name: str, value: str) -> None:
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        if not self.inside or "disabled" in a:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._add(name, a.get("value", "on"))
            elif kind not in ("submit", "button", "file"):
                self._add(name, a.get("value", ""))
        elif tag == "select" and name:
            self.select = (name, "multiple" in a)
            self.data.setdefault(name, [])
        elif tag == "option" and self.select and "selected" in a:
            self._add(self.select[0], a.get("value", ""))
        elif tag == "textarea" and name:
            self.textarea = name
            self._add(name, "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.data[self.textarea][-1] += (
                data.removeprefix("\n") if not self.data[self.textarea][-1] else data
            )


def change_form_data(html: str, form_id: str) -> dict[str, Any]:
    """The values a browser would post from the admin form ``form_id`` as rendered."""
    parser = _FormFields(form_id)
    parser.feed(html)
    return {
        name: values if len(values) != 1 else values[0]
        for name, values in parser.data.items()
        if values
    }
