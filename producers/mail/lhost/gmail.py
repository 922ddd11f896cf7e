"""Gmail and Google Workspace: "Delivery Status Notification (Failure)" from
mailer-daemon@googlemail.com; "** Address not found **", "Your message wasn't delivered to ADDR
because ...", "The response from the remote server was: 550 5.1.1 ..."; older ones "Delivery
to the following recipient failed permanently:" and "Technical details of permanent failure:".
"""

from bouncewire.producers.mail.lhost.base import Format, between, sent_by
from bouncewire.producers.mail.message import Mail

_MARKERS = (
    "delivery to the following recipient failed",
    "delivery to the following recipients failed",
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


FORMAT = Format(
    name="gmail",
    detect=_detect,
    read=between(
        (
            "delivery to the following recipient",
            "your message wasn't delivered to",
            "** ",
            "technical details of",
        ),
        ("----- original message -----", "----- message header follows -----"),
    ),
)
