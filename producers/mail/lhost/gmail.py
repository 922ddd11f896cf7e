"""Gmail and Google Workspace: "Delivery Status Notification (Failure)" from
mailer-daemon@googlemail.com; "** Address not found **", "Your message wasn't delivered to ADDR
because ...", "The response from the remote server was: 550 5.1.1 ..."; older ones "Delivery
to the following recipient failed permanently:" and "Technical details of permanent failure:".
"""

import re
from dataclasses import replace

from bouncewire.producers.mail.evidence import Found
from bouncewire.producers.mail.lhost.base import Format, between, sent_by
from bouncewire.producers.mail.message import Mail
from bouncewire.producers.mail.report import MailKind
from bouncewire.producers.mail.text import find_reply

# Google's own wordings ("Delivery to the following recipients failed." alone is Microsoft's).
_MARKERS = (
    "delivery to the following recipient failed permanently",
    "delivery to the following recipients failed permanently",
    "delivery to the following recipient has been delayed",
    "your message wasn't delivered to",
    "the response from the remote server was",
    "technical details of permanent failure",
    "technical details of temporary failure",
)


def _detect(mail: Mail) -> bool:
    if sent_by(mail, "googlemail.com", "google.com") and mail.mentions(*_MARKERS, "** "):
        return True
    return mail.mentions(*_MARKERS)


_REGION = between(
    (
        "delivery to the following recipient",
        "your message wasn't delivered to",
        "** ",
        "technical details of",
    ),
    ("----- original message -----", "----- message header follows -----"),
)
# The remote's words come paragraphs below the address: "The response was:" (or "The
# response from the remote server was:", "The error that the other server returned was:").
_RESPONSE = re.compile(
    r"(?:the response(?: from the remote server)? was|the error that the other server returned"
    r" was|server response|technical details of (?:permanent|temporary) failure)\s*:\s*"
    r"(.+?)(?:\n[ \t]*\n[ \t]*\n|-----|\Z)",
    re.IGNORECASE | re.DOTALL,
)


def _read(mail: Mail, exclude: frozenset[str], kind: MailKind) -> list[Found]:
    found = _REGION(mail, exclude, kind)
    response = _RESPONSE.search(mail.body)
    if response is None:
        return found
    words = response.group(1).strip()
    # Addresses inside the remote's words ("... or write to help@remote.example") are none.
    named_before = mail.lower_body[: response.start()]
    listed = [item for item in found if (item.email or "").lower() in named_before]
    return [
        item
        if item.diagnosis and find_reply(item.diagnosis).code
        else replace(item, diagnosis=words)
        for item in listed or found
    ]


FORMAT = Format(name="gmail", detect=_detect, read=_read)
