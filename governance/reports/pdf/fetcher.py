"""The only way a report PDF reads anything: local files under the report templates and the
project's static files, and ``data:`` URLs (the charts). Everything else is refused before
any connection is made, and the refusal stops the rendering: an evidence document with a
silently missing part is worse than no document."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse


class ResourceRefused(FatalURLFetchingError):
    """A report asked for a resource outside the allowed local directories."""


def allowed_roots() -> list[Path]:
    """The report templates directory and the project's static directory."""
    base = Path(settings.BASE_DIR)
    return [base / "templates" / "reports", base / "governance" / "static"]


class LocalOnlyURLFetcher(URLFetcher):
    """Serves ``file:`` URLs inside ``roots`` (after resolving symlinks and ``..``) and
    ``data:`` URLs; raises :class:`ResourceRefused` for anything else."""

    def __init__(self, roots: Iterable[Path] | None = None) -> None:
        super().__init__(allowed_protocols=("file", "data"), fail_on_errors=True)
        self.roots = [Path(root).resolve() for root in (roots or allowed_roots())]

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme != "file" or parts.netloc not in ("", "localhost"):
            raise ResourceRefused(f"report resources must be local files; refused {url!r}")
        path = Path(unquote(parts.path)).resolve()
        if not any(path.is_relative_to(root) for root in self.roots):
            raise ResourceRefused(f"{path} is outside the report resource directories")
        return super().fetch(path.as_uri(), headers)
