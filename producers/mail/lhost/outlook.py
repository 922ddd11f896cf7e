"""Outlook.com / Hotmail / MSN consumer mail: "Delivery to the following recipients failed."
or "This is an automatically generated Delivery Status Notification." with each address
indented, from postmaster@outlook.com or @hotmail.com.
"""

from bouncewire.producers.mail.lhost.base import Format, between, sent_by
from bouncewire.producers.mail.message import Mail


def _detect(mail: Mail) -> bool:
    return sent_by(mail, "hotmail.", "outlook.com", "msn.com", "live.com") and mail.mentions(
        "delivery to the following recipient", "delivery status notification"
    )


FORMAT = Format(
    name="outlook",
    detect=_detect,
    read=between(
        ("delivery to the following recipient", "delivery status notification"),
        ("reporting-mta:", "original message headers"),
    ),
)
