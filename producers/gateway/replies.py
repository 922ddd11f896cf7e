"""The reply the gateway's client gets for an upstream outcome. Pure: no I/O.

The upstream's own reply passes through (every line of it), with one change: 421 means
"closing the channel" and it is the upstream's channel that closes, not the client's, so the
client gets 451 with the same text. A failure without a reply (connection refused, timeout,
reset, TLS, the upstream refusing our credentials) becomes 451 4.4.1: CleverTap retries.
"""

from __future__ import annotations

from typing import Final

from bouncewire.producers.smtp_errors import Evidence

UPSTREAM_UNAVAILABLE: Final = "451 4.4.1 Upstream relay unavailable ({error}), try again later"
NOT_PUBLISHED: Final = "451 4.3.0 Result not recorded (event broker unavailable), try again later"
ALREADY_RELAYED: Final = "250 2.0.0 Already relayed; its results are recorded now"
PARTLY_RELAYED: Final = (
    "250 2.0.0 Relayed to {accepted} of {total} recipients; each result recorded"
)
_CLOSING: Final = 421


def client_reply(evidence: Evidence) -> str:
    """One SMTP reply (lines joined with CRLF, without the final CRLF)."""
    if evidence.error is not None or evidence.smtp_code is None:
        return UPSTREAM_UNAVAILABLE.format(error=evidence.error or "no reply")
    code = 451 if evidence.smtp_code == _CLOSING else evidence.smtp_code
    lines = (evidence.smtp_message or "").splitlines() or [""]
    return "\r\n".join(
        f"{code}{'-' if index < len(lines) - 1 else ' '}{line}".rstrip()
        for index, line in enumerate(lines)
    )


def data_reply(outcomes: list[Evidence]) -> str:
    """The one DATA reply for several upstream transactions (one per recipient with VERP).

    All accepted, or none: the first one's reply (the upstream's own). Some accepted: 250,
    since the message went out for those and every refused recipient's result is published
    (a 4xx would make the client send it again to those who already have it).
    """
    accepted = sum(evidence.accepted for evidence in outcomes)
    if accepted in (0, len(outcomes)):
        return client_reply(outcomes[0])
    return PARTLY_RELAYED.format(accepted=accepted, total=len(outcomes))
