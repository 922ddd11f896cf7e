"""Postfix log lines → Attempts and Notes. Pure: no I/O.

    QID: to=<rcpt>, orig_to=<rcpt>, relay=host[ip]:port, delay=1.2, delays=a/b/c/d, dsn=5.1.1,
         status=bounced (host mx[192.0.2.1] said: 550 5.1.1 ... (in reply to RCPT TO command))
    QID: message-id=<id@host>                       (cleanup)
    QID: from=<sender>, size=N, nrcpt=N (queue active)   (qmgr)
    QID: from=<sender>, status=expired, returned to sender  (qmgr: the queue lifetime is over)
    QID: removed                                    (qmgr)
    QID: sender non-delivery notification: NEWQID   (bounce: NEWQID is Postfix's own mail)

Lines are recognised by their text, not their program: `journalctl -o cat` drops the program,
and multi-instance names vary (`postfix-out/smtp`, `bwtest/smtp`). A program without a slash
(sshd, dovecot) is not Postfix. Everything that is not one of the shapes above is "other",
except a line with `to=<` that does not parse: that one is counted as malformed.
"""

from __future__ import annotations

import re
from typing import Final

from bouncewire.producers.mta_log import notes
from bouncewire.producers.mta_log.attempts import Attempt, Status, own_verdict, reply_evidence
from bouncewire.producers.mta_log.notes import Note, Parsed
from bouncewire.producers.mta_log.syslog import Entry
from bouncewire.producers.smtp_errors import Evidence

# The longest queue id Postfix writes (enable_long_queue_ids) is ~20 characters.
_MAX_QUEUE_ID: Final = 32
_STATUSES: Final[dict[str, Status]] = {
    "sent": "sent",
    "deferred": "deferred",
    "bounced": "bounced",
    "expired": "expired",
    # soft_bounce = yes: what would have bounced stays queued and is logged so.
    "SOFTBOUNCE": "deferred",
}
_PROBES: Final = frozenset({"deliverable", "undeliverable"})
_SAID: Final = (" said: ", " refused to talk to me: ")
_IN_REPLY: Final = " (in reply to "
_NOTIFICATION: Final = " notification: "  # sender non-delivery / delay / delivery status
_SUSPENDED: Final = "delivery temporarily suspended: "
_DSN: Final = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}", re.ASCII)


def wanted(line: str) -> bool:
    """Whether the line may be one parse() reads: a cheap test before any regex runs."""
    return (
        " to=<" in line
        or "message-id=" in line
        or " from=<" in line
        or ": removed" in line
        or _NOTIFICATION in line
    )


def parse(entry: Entry) -> Parsed:
    """The line's meaning; a skip reason (notes.*) when it holds no attempt or queue fact."""
    program, text = entry.program, entry.text
    if program is not None and "/" not in program:
        return notes.OTHER
    colon = text.find(": ")
    # Any word as queue id: logs rewritten by tools and posts show other shapes than hex.
    if colon <= 0 or colon > _MAX_QUEUE_ID or " " in text[:colon]:
        return notes.OTHER
    queue_id, rest = text[:colon], text[colon + 2 :]
    if rest.startswith("to=<"):
        return _delivery(queue_id, rest, entry.stamp)
    if rest.startswith("message-id="):
        return Note("message_id", queue_id, rest[11:].strip())  # as in the header: <id@host>
    if rest.startswith("from=<"):
        return _sender(queue_id, rest, entry.stamp)
    if rest == "removed":
        return Note("removed", queue_id)
    if rest.startswith("sender ") and _NOTIFICATION in rest:
        # The notice Postfix mails our sender is queued as NEWQID: its deliveries are not ours.
        notice = rest.rpartition(_NOTIFICATION)[2].strip()
        return Note("sender", notice, "") if notice.isalnum() else notes.OTHER
    return notes.OTHER


def _sender(queue_id: str, rest: str, stamp: str) -> Note:
    if rest.endswith(", status=expired, returned to sender"):
        return Note("expired", queue_id, stamp=stamp)
    end = rest.find(">, ")
    return Note("sender", queue_id, rest[6:end] if end >= 0 else rest[6:].rstrip(">"))


def _delivery(queue_id: str, rest: str, stamp: str) -> Attempt | str:
    end = rest.find(">, ", 4)
    if end < 0:
        return notes.MALFORMED
    recipient, start, orig = rest[4:end], end + 3, None
    if rest.startswith("orig_to=<", start):
        orig_end = rest.find(">, ", start + 9)
        if orig_end < 0:
            return notes.MALFORMED
        orig, start = rest[start + 9 : orig_end], orig_end + 3
    status_at = rest.find("status=", start)
    if status_at < 0:
        return notes.MALFORMED
    word, _, text = rest[status_at + 7 :].partition(" ")
    status = _STATUSES.get(word)
    if status is None:
        return notes.PROBE if word in _PROBES else notes.UNKNOWN_STATUS
    fields = _fields(rest[start:status_at])
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    dsn = fields.get("dsn")
    dsn = dsn if dsn and _DSN.fullmatch(dsn) else None
    evidence, remote, stage = read_reason(status, dsn, text, fields.get("relay"))
    return Attempt(
        "postfix",
        queue_id,
        recipient,
        status,
        evidence,
        stamp=stamp,
        attempt=f"{fields.get('delay', '')}/{fields.get('delays', '')}",
        remote_mta=remote,
        stage=stage,
        orig_recipient=orig,
    )


def _fields(text: str) -> dict[str, str]:
    """`relay=x, delay=1, dsn=5.1.1, ` → {"relay": "x", "delay": "1", "dsn": "5.1.1"}."""
    fields: dict[str, str] = {}
    for pair in text.split(", "):
        key, _, value = pair.partition("=")
        fields[key] = value
    return fields


def read_reason(
    status: str, dsn: str | None, text: str, relay: str | None
) -> tuple[Evidence, str | None, str | None]:
    """(evidence, remote MTA, SMTP stage) of the text in brackets after `status=`."""
    stage = None
    if text.endswith(" command)"):
        cut = text.rfind(_IN_REPLY)
        if cut >= 0:
            stage, text = text[cut + 2 : -1], text[:cut]
    if text.startswith(_SUSPENDED):  # the earlier failure of the same destination
        text = text[len(_SUSPENDED) :]
    for said in _SAID:
        # "host mx[ip] said: 550 ...", also after a preamble: "SASL authentication failed;
        # server mx[ip] said: 535 5.7.8 ..."
        cut = text.find(said)
        if cut > 0:
            evidence = reply_evidence(text[cut + len(said) :], dsn)
            if evidence is not None:
                return evidence, host_name(text[:cut].rpartition(" ")[2]), stage
    if text[:1].isdigit():  # `status=sent (250 2.0.0 Ok: queued as ...)`
        evidence = reply_evidence(text, dsn)
        if evidence is not None:
            return evidence, host_name(relay), stage
    return own_verdict(status, dsn, text), None, stage


def host_name(relay: str | None) -> str | None:
    """`mx.example.com[192.0.2.1]:25` → `mx.example.com`; `none`, `local` → None."""
    if not relay:
        return None
    bracket = relay.find("[")
    return relay[:bracket] if bracket > 0 else None
