"""One module per non-standard bounce format; FORMATS is the order they are tried in.

Each module's FORMAT says how it recognises its messages (`detect`, cheap: headers and a few
phrases) and how it reads them (`read`: the recipients with their replies). The first module
that recognises a message and finds a recipient wins; `generic` comes last. To add a format,
see docs/mail-parsing.md.
"""

from typing import Final

from bouncewire.producers.mail.lhost import (
    amazonses,
    aol,
    courier,
    domino,
    exchange,
    exchange2003,
    exim,
    fml,
    generic,
    gmail,
    gmx,
    imail,
    mailru,
    messagingserver,
    mfilter,
    notes,
    opensmtpd,
    outlook,
    postfix,
    qmail,
    sendgrid,
    sendmail,
    yahoo,
    zoho,
)
from bouncewire.producers.mail.lhost.base import Format

# Provider-specific modules before the MTA software they run on (GMX and Zoho before Exim).
FORMATS: Final[tuple[Format, ...]] = (
    amazonses.FORMAT,
    aol.FORMAT,
    sendgrid.FORMAT,
    gmail.FORMAT,
    yahoo.FORMAT,
    outlook.FORMAT,
    gmx.FORMAT,
    mailru.FORMAT,
    zoho.FORMAT,
    exchange.FORMAT,
    exchange2003.FORMAT,
    messagingserver.FORMAT,
    domino.FORMAT,
    notes.FORMAT,
    imail.FORMAT,
    courier.FORMAT,
    opensmtpd.FORMAT,
    mfilter.FORMAT,
    fml.FORMAT,
    qmail.FORMAT,
    exim.FORMAT,
    postfix.FORMAT,
    sendmail.FORMAT,
    generic.FORMAT,
)
