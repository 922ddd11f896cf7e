"""qmail (and its forks netqmail, vpopmail, s/qmail): plain text, "Hi. This is the
qmail-send program at HOST.", then "<addr>:" and the remote's reply or qmail's own reason
("Sorry, no mailbox here by that name. (#5.1.1)"), "This is a permanent error; I've given up."
"""

from bouncewire.producers.mail.lhost.base import Format, between, subject_has
from bouncewire.producers.mail.message import Mail

_MARKERS = (
    "this is the qmail-send program",
    "this is the qmail program",
    "this is the machine generated message from mail service",
    "i'm afraid i wasn't able to deliver your message",
)


def _detect(mail: Mail) -> bool:
    if mail.mentions(*_MARKERS):
        return True
    return subject_has(mail, "failure notice") and mail.mentions("i've given up", "(#5.", "(#4.")


FORMAT = Format(
    name="qmail",
    detect=_detect,
    read=between(
        ("hi. this is the", *_MARKERS, "i'm not going to try again"),
        ("--- below this line is a copy", "--- enclosed are the original headers"),
    ),
)
