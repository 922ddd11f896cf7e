"""Unsubscribe URLs and the RFC 8058 header lines for outgoing mail. Pure: no I/O."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

ROUTE_PREFIX: Final = "/u/"
ONE_CLICK_BODY: Final = "List-Unsubscribe=One-Click"
_LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})


def public_url_problem(url: str) -> str | None:
    """Why `url` cannot be the service's public base URL, or None.

    RFC 8058 §3.1: the List-Unsubscribe header MUST hold an HTTPS URI. Plain http is accepted
    only for loopback hosts, so the service can be tried and tested locally.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in {"https", "http"} or not host:
        return "must be an absolute https:// URL"
    if parts.scheme == "http" and host not in _LOOPBACK_HOSTS:
        return "must use https (RFC 8058); http is allowed for loopback hosts only"
    if parts.query or parts.fragment or parts.username or parts.password:
        return "must not carry a query, fragment or credentials"
    return None


def unsubscribe_url(public_url: str, token: str) -> str:
    """The link for one token: ``<public_url>/u/<token>`` (the token is URL-safe as is)."""
    return public_url.rstrip("/") + ROUTE_PREFIX + token


def header_lines(url: str, mailto: str | None = None) -> tuple[str, str]:
    """The two headers for outgoing mail (RFC 8058 §3.1); DKIM must sign both. A `mailto:`
    URI joins the https one in List-Unsubscribe (RFC 2369) for clients without one-click."""
    uris = f"<{url}>" if mailto is None else f"<{url}>, <{mailto}>"
    return (f"List-Unsubscribe: {uris}", f"List-Unsubscribe-Post: {ONE_CLICK_BODY}")
