"""Microsoft Exchange 2007 and later, Office 365 / Exchange Online: "Delivery has failed to
these recipients or groups:" (or "Your message to ADDR couldn't be delivered."), then
"Diagnostic information for administrators:" repeating each recipient with the remote's reply
("Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; ...'" or
"mx.example.com #550 5.1.1 ... ##").
"""

from bouncewire.producers.mail.lhost.base import Format, between
from bouncewire.producers.mail.message import Mail

_MARKERS = (
    "delivery has failed to these recipients or groups",
    "diagnostic information for administrators",
    "informations de diagnostic pour les administrateurs",
    "informazioni di diagnostica per gli amministratori",
    "diagnoseinformationen für administratoren",
    "diagnostisk information för administratörer",
    "original message details",
    "remote server returned",
    "couldn't be delivered",
    "delivery is delayed to these recipients or groups",
    "delivery to these recipients or groups is complete",
)


def _detect(mail: Mail) -> bool:
    return mail.mentions(*_MARKERS) or bool(mail.header("x-ms-exchange-message-is-ndr"))


FORMAT = Format(
    name="exchange",
    detect=_detect,
    read=between(
        (
            "delivery has failed to these recipients",
            "delivery is delayed to these recipients",
            "your message to",
            "diagnostic information for administrators",
            *_MARKERS[2:6],
            "remote server returned",
            "original message details",
        ),
        (
            "original message headers",
            "tes de message d'origine",
            "intestazioni originali del messaggio",
            "ursprüngliche nachrichtenkopfzeilen",
            "ursprungshuvuden",
            "reporting-mta:",
        ),
    ),
)
