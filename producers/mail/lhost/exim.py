"""Exim's default bounce: "This message was created automatically by mail delivery
software.", the failed addresses indented, each followed by "SMTP error from remote mail server
after RCPT TO:<addr>:" and the reply; X-Failed-Recipients names them in the header. Warnings
("Warning: message ... delayed") keep the same layout.
"""

import re

from bouncewire.producers.mail.lhost.base import Format, between, sent_by, subject_has
from bouncewire.producers.mail.message import Mail

BEGINS = (
    "the following address(es) failed",
    "could not be delivered to all of its recipients",
    "contained one or more recipient addresses",
    "has been frozen",
    "was frozen on arrival",
    "the following addresses failed",
    "could not be delivered to one or more of its",
    "has not yet been delivered to the following",
    "this message was created automatically by mail delivery software",
    "this message was created automatically by mail delivery",
)
# Exim's own message ids: <E1rk0Hq-0004Zt-2C@host> (and the longer ones of 4.97+).
_EXIM_MESSAGE_ID = re.compile(r"<E1[0-9A-Za-z]{5,10}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}@")
ENDS = (
    "------ this is a copy of the message",
    "------ this is a copy of the body of the message",
    "------ the body of the message is",
    "------ this is a copy of your message",
    "reporting-mta:",
)


def _detect(mail: Mail) -> bool:
    if mail.mentions("this message was created automatically by mail delivery"):
        return True
    if mail.header("x-failed-recipients"):
        return True
    if _EXIM_MESSAGE_ID.match(mail.header("message-id")):
        return True
    return subject_has(
        mail, "mail delivery failed", "warning: message", "message frozen", "mail failure"
    ) and sent_by(mail, "mailer-daemon", "mail delivery system")


FORMAT = Format(name="exim", detect=_detect, read=between(BEGINS, ENDS))
