"""Where a webhook may be sent: URL rules and address checks against request forgery (SSRF).

A target URL is ``http`` or ``https`` with a host, no credentials and no fragment; when
``WEBHOOK_REQUIRE_HTTPS`` is on (production) it must be ``https``. Every address the host
resolves to must be public (not private, loopback, link-local, multicast, reserved or
unspecified), unless the host or the address is in ``WEBHOOK_ALLOWED_HOSTS`` (host names, IP
addresses or networks such as ``10.1.0.0/16``), which also permits plain ``http``.

The URL is checked when a subscription is saved and again before every attempt, and the
connection is made to the very address that was checked, so a DNS answer that changes in
between (rebinding) cannot point a delivery at an internal service.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

MAX_URL = 2000
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetRefused(ValueError):
    """The URL or the address it resolves to may not receive webhooks."""


@dataclass(frozen=True)
class Target:
    """A checked destination: connect to ``address`` and present ``host``."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


def _allow_list() -> tuple[set[str], list[Network]]:
    names: set[str] = set()
    networks: list[Network] = []
    for entry in getattr(settings, "WEBHOOK_ALLOWED_HOSTS", []):
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            names.add(entry.strip().lower().rstrip("."))
    return names, networks


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _address_allowed(address: Address, networks: list[Network]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in networks):
        return True
    return address.is_global and not address.is_multicast


def _parse(url: str) -> SplitResult:
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise TargetRefused(f"the URL must be 1 to {MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise TargetRefused("the URL must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("the URL must start with https:// (or http://)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise TargetRefused("the URL must not carry credentials (user:password@)")
    if not parts.hostname:
        raise TargetRefused("the URL must name a host")
    if parts.fragment:
        raise TargetRefused("the URL must not have a #fragment")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise TargetRefused("the URL has an invalid port") from exc
    return parts


def check_url(url: str, *, resolve: bool = True) -> SplitResult:
    """Refuse a URL that may not receive webhooks (``TargetRefused`` says why). Host names
    are resolved when ``resolve``; a name that does not resolve now is accepted here and
    checked again before each attempt."""
    parts = _parse(url)
    host = (parts.hostname or "").lower().rstrip(".")
    names, networks = _allow_list()
    literal = _literal(host)
    allowed_host = host in names or (
        literal is not None and any(literal in network for network in networks)
    )
    https_only = getattr(settings, "WEBHOOK_REQUIRE_HTTPS", False)
    if parts.scheme != "https" and https_only and not allowed_host:
        raise TargetRefused("the URL must use https (plain http only for allowed hosts)")
    if allowed_host:
        return parts
    if literal is not None:
        if not _address_allowed(literal, networks):
            raise TargetRefused(f"{host} is a private, loopback or reserved address")
        return parts
    if host == "localhost" or host.endswith(".localhost"):
        raise TargetRefused("localhost may not receive webhooks")
    if resolve:
        for address in _resolve(host, parts.port or _default_port(parts.scheme), strict=False):
            if not _address_allowed(address, networks):
                raise TargetRefused(f"{host} resolves to a private or reserved address")
    return parts


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _resolve(host: str, port: int, *, strict: bool) -> list[Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        if strict:
            raise TargetRefused(f"{host} does not resolve: {exc}") from exc
        return []
    found: list[Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def resolve_target(url: str) -> Target:
    """Check ``url`` again and pick the address to connect to: every address the host
    resolves to must be allowed (one bad answer refuses the target)."""
    parts = check_url(url, resolve=False)
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port or _default_port(parts.scheme)
    names, networks = _allow_list()
    literal = _literal(host)
    addresses = [literal] if literal is not None else _resolve(host, port, strict=True)
    if not addresses:
        raise TargetRefused(f"{host} does not resolve")
    if host not in names:
        for address in addresses:
            if not _address_allowed(address, networks):
                raise TargetRefused(f"{host} resolves to a private or reserved address {address}")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=parts.scheme, host=host, port=port, path=path, address=str(addresses[0]))
