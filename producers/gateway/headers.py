"""What the gateway reads from and adds to a message's header block. Pure: no I/O.

Read: Message-ID, the campaign and `X-CleverTap_META` (carried into every send result and
into the signed VERP return path and unsubscribe link), List-Unsubscribe, and the header
names each DKIM-Signature's `h=` tag covers. Added: the RFC 8058 one-click pair, only when
the message has no List-Unsubscribe and no DKIM signature covers those names (RFC 6376 §5.4:
a name listed in h= is signed even when absent, so adding it would break that signature).
"""

from __future__ import annotations

import email.policy
import re
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from enum import Enum
from typing import Final

from bouncewire.producers.headers import CAMPAIGN_HEADERS, META_HEADER
from bouncewire.producers.unsubscribe.links import header_lines

_UNSUBSCRIBE_NAMES: Final = frozenset({"list-unsubscribe", "list-unsubscribe-post"})
_DKIM_H_TAG: Final = re.compile(r"(?:^|;)\s*h\s*=\s*([^;]*)", re.IGNORECASE)
# The header block ends at the first empty line (RFC 5322 §2.1).
_HEADER_END: Final = re.compile(rb"\r?\n\r?\n")


class UnsubscribeDecision(Enum):
    ADD = "add"
    ALREADY_PRESENT = "already_present"
    DKIM_COVERS = "dkim_covers"  # adding would break the sender's DKIM signature


@dataclass(frozen=True, slots=True)
class MessageFacts:
    message_id: str | None = None
    campaign_id: str | None = None
    meta: str | None = field(default=None, repr=False)
    has_list_unsubscribe: bool = False
    dkim_signed_names: frozenset[str] = frozenset()

    def unsubscribe_decision(self) -> UnsubscribeDecision:
        if self.has_list_unsubscribe:
            return UnsubscribeDecision.ALREADY_PRESENT
        if self.dkim_signed_names & _UNSUBSCRIBE_NAMES:
            return UnsubscribeDecision.DKIM_COVERS
        return UnsubscribeDecision.ADD


def message_facts(data: bytes) -> MessageFacts:
    """The facts above from the message's header block (the body is not parsed)."""
    headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(_header_block(data))
    signed: set[str] = set()
    for value in headers.get_all("DKIM-Signature") or ():
        signed |= dkim_signed_names(_unfold(str(value)))
    return MessageFacts(
        message_id=_single(headers.get("Message-ID")),
        campaign_id=next(
            (_single(headers.get(name)) for name in CAMPAIGN_HEADERS if name in headers), None
        ),
        meta=_single(headers.get(META_HEADER)),
        has_list_unsubscribe=headers.get("List-Unsubscribe") is not None,
        dkim_signed_names=frozenset(signed),
    )


def dkim_signed_names(signature: str) -> set[str]:
    """Lower-cased header names in a DKIM-Signature value's h= tag (RFC 6376 §3.5)."""
    found = _DKIM_H_TAG.search(signature)
    if found is None:
        return set()
    return {name.strip().lower() for name in found[1].split(":") if name.strip()}


def with_unsubscribe_headers(data: bytes, url: str) -> bytes:
    """`data` with the RFC 8058 pair prepended to its header block."""
    added = "".join(line + "\r\n" for line in header_lines(url)).encode("ascii")
    return added + data


def _header_block(data: bytes) -> bytes:
    end = _HEADER_END.search(data)
    return data if end is None else data[: end.end()]


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", value)


def _single(value: object) -> str | None:
    if value is None:
        return None
    text = _unfold(str(value)).strip()
    return text or None
