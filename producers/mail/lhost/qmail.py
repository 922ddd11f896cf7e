"""qmail (and its forks and clones: netqmail, vpopmail, s/qmail, qmail-ldap): plain text,
"Hi. This is the qmail-send program at HOST.", then "<addr>:" and the remote's reply or qmail's
own reason ("Sorry, no mailbox here by that name. (#5.1.1)"), "This is a permanent error; I've
given up."; the copy of the message follows "--- Below this line is a copy of the message.".
"""

from bouncewire.producers.mail.lhost.base import Format, between, subject_has
from bouncewire.producers.mail.message import Mail

_MARKERS = (
    "this is the qmail-send program",
    "this is the qmail program",
    "hi. this is the qmail",
    "this is the machine generated message from mail service",
    "this is the mail delivery agent at",
    "i'm afraid i wasn't able to deliver your message",
    "unable to deliver your message to the following addresses",
    "su mensaje no pudo ser entregado",
    "unfortunately, your mail was not delivered to the following address",
    "your mail message to the following address",
    "your message to the following addresses",
    "he/her is not ",
)
_ENDS = (
    "--- below this line is a copy",
    "--- below the next line is a copy",
    "--- enclosed are the original headers",
    "--- mensaje original adjunto",
)


def _detect(mail: Mail) -> bool:
    if mail.mentions(*_MARKERS[:3]) or "(qmail " in mail.header("received"):
        return True
    if subject_has(mail, "failure notice"):
        return mail.mentions(*_MARKERS, "i've given up", "(#5.", "(#4.", "remote host said")
    return False


FORMAT = Format(
    name="qmail",
    detect=_detect,
    read=between(("hi. this is the", *_MARKERS, "i'm not going to try again"), _ENDS),
)
