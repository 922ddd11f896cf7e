"""Yahoo (and AOL after the merger): "Sorry, we were unable to deliver your message to the
following address." then "<addr>:" and "Remote host said: 550 ..."; delays say "Message
delivery has been delayed" or "temporarily deferred".
"""

from bouncewire.producers.mail.lhost.base import Format, between, sent_by
from bouncewire.producers.mail.message import Mail


def _detect(mail: Mail) -> bool:
    if mail.mentions("sorry, we were unable to deliver your message"):
        return True
    return sent_by(mail, "yahoo.", "aol.com") and mail.mentions("remote host said")


FORMAT = Format(
    name="yahoo",
    detect=_detect,
    read=between(
        ("sorry, we were unable to deliver", "message delivery has been delayed"),
        ("--- below this line is a copy of the message",),
    ),
)
