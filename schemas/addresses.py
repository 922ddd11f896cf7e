"""Minimal RFC 5321 address check (temporary stub from the classifier engineer).

The schemas engineer replaces this file with the full version; only `address_problem`
is relied on by consumers/classification.py.
"""

from __future__ import annotations

import re

_MAX_LOCAL = 64  # RFC 5321 §4.5.3.1.1
_MAX_DOMAIN = 255  # RFC 5321 §4.5.3.1.2
_MAX_ADDRESS = 254  # path <= 256 octets including the angle brackets (§4.5.3.1.3)
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+{_LABEL}")


def address_problem(email: str) -> str | None:
    """Why `email` is not a valid RFC 5321 mailbox, as a snake_case word; None when valid."""
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        return "missing_at_sign" if not at else "empty_part"
    if len(email.encode("utf-8", "surrogatepass")) > _MAX_ADDRESS:
        return "address_too_long"
    if len(local.encode("utf-8", "surrogatepass")) > _MAX_LOCAL:
        return "local_part_too_long"
    if len(domain) > _MAX_DOMAIN:
        return "domain_too_long"
    if not _DOT_ATOM.fullmatch(local):
        return "invalid_local_part"
    if not _DOMAIN.fullmatch(domain):
        return "invalid_domain"
    return None
