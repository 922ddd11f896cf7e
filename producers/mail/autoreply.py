"""Auto-replies (RFC 3834): vacation and out-of-office answers. Never bounces.

The headers alone do not decide: MTAs put Auto-Submitted: auto-replied on their own bounces
too, so parse_message asks this only after no bounce was found in the message.
"""

from __future__ import annotations

import re
from typing import Final

from bouncewire.producers.mail.message import Mail

_SUBJECT: Final = re.compile(
    r"^\s*(?:auto(?:matic|matische)?[ _:-]*(?:reply|response|answer|antwort|respuesta)"
    r"|auto:|autoreply|autoresponse|out of (?:the )?office|on vacation|vacation|away from"
    r"|abwesenheit|réponse automatique|risposta automatica|respuesta automática"
    r"|resposta automática|automatisch antwoord|afwezig|poza biurem|自動応答|自动回复)",
    re.IGNORECASE,
)
_BODY: Final = re.compile(
    r"out of (?:the )?office|on vacation|on holiday|on leave|away from (?:the|my) (?:office|desk)"
    r"|limited access to (?:my )?e-?mail|i will be back|i am currently away|i'm currently away"
    r"|i will respond (?:to your (?:email|message) )?(?:when|upon) my return",
    re.IGNORECASE,
)


def says_auto_reply(mail: Mail) -> bool:
    """An out-of-office subject on a message with no report part: an auto-reply even when
    its text quotes delivery words (read before the bounce formats, which would take it)."""
    return not mail.delivery_status and _SUBJECT.search(mail.header("subject")) is not None


def is_auto_reply(mail: Mail) -> bool:
    """Whether the message is an automatic answer rather than a report."""
    if mail.header("auto-submitted").lower().startswith("auto-replied"):
        return True
    if mail.header("x-autoreply") or mail.header("x-autorespond"):
        return True
    if "auto_reply" in mail.header("precedence").lower():
        return True
    if mail.header("x-auto-response-suppress") and _SUBJECT.search(mail.header("subject")):
        return True
    if _SUBJECT.search(mail.header("subject")):
        return True
    return bool(mail.header("auto-submitted")) and _BODY.search(mail.body[:4000]) is not None
