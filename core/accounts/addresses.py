"""The address of the client that sent a request, behind trusted proxies or not.

Audit records (when client info is enabled), the login and API key throttles and the API's
rate limits all key on it, so it lives in the kernel below them.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from django.conf import settings


@lru_cache(maxsize=8)
def _networks(
    trusted: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_address(request: Any) -> str:
    """The address of the client that sent ``request``.

    ``X-Forwarded-For`` is believed only when the peer (``REMOTE_ADDR``) is one of
    ``WARDEN_TRUSTED_PROXIES``; then the right-most address that is not itself a trusted proxy
    is the client (the ones to its left were written by the client and prove nothing). A
    malformed entry stops the walk at the last proxy that was believed.
    """
    meta = request.META
    remote = str(meta.get("REMOTE_ADDR", "") or "")
    trusted = _networks(tuple(getattr(settings, "WARDEN_TRUSTED_PROXIES", ()) or ()))
    if not trusted:
        return remote

    def is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return address is not None and any(address in network for network in trusted)

    if not is_trusted(_parse(remote)):
        return remote
    client = remote
    hops = [hop for hop in str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            return client
        client = str(address)
        if not is_trusted(address):
            return client
    return client
