"""The fallback for every bounce no format module claims: the whole text before the returned
original, scanned for "<addr>: 550 5.1.1 ..." and "addr ... said: 550 ..." shapes. Only used
on a message that looks like a bounce (looks_like_bounce), never on ordinary mail.
"""

import re

from bouncewire.producers.mail.lhost.base import Format, between
from bouncewire.producers.mail.message import Mail

# Subjects only bounces have: words a person might use ("rejected", "bounce") are left out,
# so an unsubscribe request or a reply is not read as one.
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery status notification|delivery (?:failure|failed|problem)"
    r"|failure notice|returned mail|mail delivery|could not be delivered|not delivered|non remis"
    r"|nondeliverable|non-?deliver|unzustellbar|onbestelbaar|no entregado|non recapitato"
    r"|niet afgeleverd|non consegnat|no se pudo entregar|échec de (?:la )?remise|zustellung"
    r"|returned message|failed mail|mail returned|message not delivered|delivery error"
    r"|could not send|delayed mail|delivery delayed|delivery notification|mail system error"
    r"|returned to sender|delivery report|mail failure|error sending|delivery has failed"
    r"|\[bounce\]|fail(?:ed|ure) delivery|message frozen|could not deliver|mail failed"
    r"|配信|不達|エラー|недоставлен|не доставлено",
    re.IGNORECASE,
)
_DAEMON_SENDER = re.compile(
    r"mailer-daemon|mail-daemon|postmaster|mail delivery|maildelivery|mdaemon|bounce"
    r"|delivery subsystem|mail administrator|mail system",
    re.IGNORECASE,
)


def looks_like_bounce(mail: Mail) -> bool:
    """Whether the message presents itself as a bounce: its sender, subject or structure."""
    if mail.report_type == "delivery-status" or mail.delivery_status:
        return True
    if mail.header("x-failed-recipients"):
        return True
    if _DAEMON_SENDER.search(mail.header("from")):
        return True
    return bool(_BOUNCE_SUBJECT.search(mail.header("subject")))


FORMAT = Format(name="generic", detect=looks_like_bounce, read=between(()))
