"""Every fixture in fixtures/<family>/ against what it should report, and through classify.

The fixtures are written here, modelled on each MTA's or provider's format (no third-party
corpus): one row per fixture with the kind, the recipients in order, and for the first
recipient its enhanced status, reply code, remote MTA, the original's Message-ID, and the
hard/soft/none verdict `classify` gives the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from bouncewire.producers.mail import MailReport, parse_message
from bouncewire.schemas.classification import classify

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass(frozen=True)
class Expect:
    path: str
    kind: str
    recipients: tuple[str, ...]
    status: str | None = None
    code: int | None = None
    remote: str | None = None
    message_id: str | None = None
    bounce: str | None = None  # classify's verdict for the first recipient
    format: str | None = None


TABLE = [
    Expect(
        "activehunter/fatal.eml",
        "bounce",
        ("hanako.suzuki@jp-isp.example",),
        "5.1.1",
        550,
        None,
        None,
        "hard",
        "sendmail",
    ),
    Expect(
        "amazonses/dsn.eml",
        "bounce",
        ("nobody@ses-target.example",),
        "5.1.1",
        550,
        None,
        "<ses-1@sender.example>",
        "hard",
        "rfc3464",
    ),
    Expect(
        "amazonses/plain.eml",
        "bounce",
        ("mailbox.full@ses-target.example",),
        "5.2.2",
        552,
        None,
        "<ses-2@sender.example>",
        "soft",
        "amazonses",
    ),
    Expect(
        "aol/postfix-style.eml",
        "bounce",
        ("closed.aol.user@aol.com", "temp.aol.user@aol.com"),
        "5.1.1",
        550,
        "mailin-01.mx.aol.com",
        "<aol-1@sender.example>",
        "hard",
        "postfix",
    ),
    Expect(
        "apachejames/bounce.eml",
        "bounce",
        ("moved.away@james.example",),
        "5.1.1",
        550,
        None,
        None,
        "hard",
        "qmail",
    ),
    Expect(
        "arf/abuse.eml",
        "complaint",
        ("complainer@mailbox-provider.example",),
        None,
        None,
        None,
        "<sale-2024.555@sender.example>",
        "soft",
        "arf",
    ),
    Expect(
        "arf/not-spam.eml",
        "unknown",
        ("happy@provider.example",),
        None,
        None,
        None,
        "<ns-1@sender.example>",
        "soft",
        "arf",
    ),
    Expect(
        "arf/redacted-headers-only.eml",
        "complaint",
        ("redacted@aol.example",),
        None,
        None,
        None,
        "<deal-9@sender.example>",
        "soft",
        "arf",
    ),
    Expect(
        "autoreply/out-of-office-subject.eml", "auto_reply", (), message_id=None, format="rfc3834"
    ),
    Expect("autoreply/rfc3834-vacation.eml", "auto_reply", (), message_id=None, format="rfc3834"),
    Expect("autoreply/x-autoreply.eml", "auto_reply", (), message_id=None, format="rfc3834"),
    Expect(
        "courier/dsn.eml",
        "bounce",
        ("no-user@courier-target.example",),
        "5.1.1",
        550,
        "mx.courier-target.example",
        "<cr-1@sender.example>",
        "hard",
        "rfc3464",
    ),
    Expect(
        "domino/not-listed.eml",
        "bounce",
        ("kenji.sato@domino.example",),
        "5.1.1",
        550,
        None,
        None,
        "hard",
        "domino",
    ),
    Expect(
        "dragonfly/dma.eml",
        "bounce",
        ("someone@dfly-target.example",),
        "5.1.1",
        550,
        "mx.dfly-target.example",
        "<df-1@sender.example>",
        "hard",
        "generic",
    ),
    Expect(
        "exchange/ndr-2010.eml",
        "bounce",
        ("pat.smith@corp.example",),
        "5.1.1",
        550,
        None,
        "<stmt-2018-02.99812@sender.example>",
        "hard",
        "exchange",
    ),
    Expect(
        "exchange2003/not-reached.eml",
        "bounce",
        ("müller@legacy.example",),
        "5.1.1",
        550,
        None,
        "<wk-23.1@sender.example>",
        "hard",
        "exchange2003",
    ),
    Expect(
        "exim/delayed.eml",
        "delay",
        ("slow@tarpit.example",),
        "4.7.1",
        451,
        "mx.tarpit.example",
        None,
        "soft",
        "exim",
    ),
    Expect(
        "exim/plain-old.eml",
        "bounce",
        ("old.user@isp.example", "gone@other.example"),
        None,
        550,
        None,
        "<20091029113019.5566@sender.example>",
        "soft",
        "exim",
    ),
    Expect(
        "exim/user-unknown.eml",
        "bounce",
        ("max.mustermann@empfaenger.example",),
        "5.1.1",
        550,
        "mx.empfaenger.example",
        "<E1rk0Ho-0004Zr-1A@relay.sender.example>",
        "hard",
        "rfc3464",
    ),
    Expect(
        "generic/no-recipient-named.eml",
        "bounce",
        (None,),
        "5.1.1",
        550,
        None,
        None,
        "hard",
        "unrecognised",
    ),
    Expect(
        "generic/transport-timeout.eml",
        "bounce",
        ("far.away@unreachable.example",),
        None,
        550,
        "mx.unreachable.example",
        None,
        "soft",
        "generic",
    ),
    Expect(
        "generic/unknown-mta.eml",
        "bounce",
        ("lost@smallisp.example",),
        "5.1.1",
        550,
        None,
        None,
        "hard",
        "generic",
    ),
    Expect(
        "gmail/address-not-found.eml",
        "bounce",
        ("no.such.person@gmail.com",),
        "5.1.1",
        550,
        None,
        "<gm-5512.a@sender.example>",
        "hard",
        "rfc3464",
    ),
    Expect(
        "gmail/delayed.eml",
        "delay",
        ("someone@slow.example",),
        None,
        450,
        None,
        "<d-9@sender.example>",
        "soft",
        "gmail",
    ),
    Expect(
        "gmail/old-failed-permanently.eml",
        "bounce",
        ("closed.account@company-on-google.example",),
        "5.1.1",
        550,
        None,
        "<a-1390341916@sender.example>",
        "hard",
        "gmail",
    ),
    Expect(
        "gmx/failed.eml",
        "bounce",
        ("kein.postfach@gmx-target.example",),
        "5.1.1",
        550,
        "mx00.gmx-target.example",
        "<gmx-1@sender.example>",
        "hard",
        "gmx",
    ),
    Expect(
        "imailserver/unknown-user.eml",
        "bounce",
        ("nobody@imail.example",),
        "5.1.1",
        550,
        None,
        "<im-1@sender.example>",
        "hard",
        "generic",
    ),
    Expect(
        "interscanmss/user-unknown.eml",
        "bounce",
        ("taro@trend-customer.example",),
        "5.1.1",
        550,
        "203.0.113.90",
        None,
        "hard",
        "generic",
    ),
    Expect(
        "mailgun/permanent.eml",
        "bounce",
        ("inactive@mg-target.example",),
        "5.2.1",
        550,
        "mx.mg-target.example",
        "<mg-5@sender.example>",
        "soft",
        "rfc3464",
    ),
    Expect(
        "mailmarshal/undeliverable.eml",
        "bounce",
        ("cliente@marshal.example",),
        "5.1.1",
        550,
        "10.11.12.13",
        None,
        "hard",
        "generic",
    ),
    Expect(
        "mailru/exim-russian.eml",
        "bounce",
        ("ivan.petrov@mail-target.example",),
        "5.1.1",
        550,
        "mxs.mail-target.example",
        "<ru-1@sender.example>",
        "hard",
        "mailru",
    ),
    Expect(
        "messagingserver/oracle.eml",
        "bounce",
        ("hanako@oracle-target.example",),
        "5.1.1",
        550,
        "mx.oracle-target.example",
        "<ms-1@sender.example>",
        "hard",
        "messagingserver",
    ),
    Expect(
        "mfilter/japanese.eml",
        "bounce",
        ("yamada@jp-target.example",),
        "5.1.1",
        550,
        None,
        "<mf-1@sender.example>",
        "hard",
        "mfilter",
    ),
    Expect(
        "mimecast/failure.eml",
        "bounce",
        ("employee.left@mimecast-customer.example",),
        "5.4.1",
        550,
        None,
        None,
        "soft",
        "generic",
    ),
    Expect(
        "notes/failure-reasons.eml",
        "bounce",
        ("anna.berg@notes.example",),
        "5.1.1",
        550,
        None,
        "<nt-1@sender.example>",
        "hard",
        "notes",
    ),
    Expect(
        "office365/recipient-not-found.eml",
        "bounce",
        ("alex.gone@contoso.example",),
        "5.1.10",
        550,
        None,
        "<nl-2024-03.4471@sender.example>",
        "hard",
        "rfc3464",
    ),
    Expect(
        "opensmtpd/error.eml",
        "bounce",
        ("puffy@bsd-target.example",),
        "5.1.1",
        550,
        None,
        "<ob-3@sender.example>",
        "hard",
        "opensmtpd",
    ),
    Expect(
        "outlook/hotmail-dsn.eml",
        "bounce",
        ("someone.gone@hotmail.com",),
        "5.1.1",
        550,
        None,
        "<ol-1@sender.example>",
        "hard",
        "rfc3464",
    ),
    Expect(
        "postfix/dsn-user-unknown.eml",
        "bounce",
        ("jane.doe@recipient.example",),
        "5.1.1",
        550,
        "mx1.recipient.example",
        "<c-42.7f3a9@sender.example>",
        "hard",
        "rfc3464",
    ),
    Expect(
        "powermta/dsn-two-recipients.eml",
        "bounce",
        ("first@pm-target.example", "second@pm-target.example"),
        "5.1.1",
        550,
        "mx.pm-target.example",
        "<pm-1@sender.example>",
        "hard",
        "rfc3464",
    ),
    Expect(
        "qmail/no-mailbox.eml",
        "bounce",
        ("nobody.here@qmailhost.example",),
        "5.1.1",
        550,
        None,
        "<q-1680531729.12340@sender.example>",
        "hard",
        "qmail",
    ),
    Expect(
        "qmail/remote-said.eml",
        "bounce",
        ("full.box@remote.example", "ghost@remote.example"),
        "5.2.2",
        552,
        "192.0.2.44",
        "<q-2@sender.example>",
        "soft",
        "qmail",
    ),
    Expect(
        "sendgrid/bounce.eml",
        "bounce",
        ("shaun@sg-target.example",),
        "5.7.1",
        550,
        None,
        "<sg-77@sender.example>",
        "soft",
        "rfc3464",
    ),
    Expect(
        "sendmail/dsn-host-unknown.eml",
        "bounce",
        ("someone@no-such-domain.example",),
        "5.1.2",
        550,
        "no-such-domain.example",
        "<202306051310.355DAAc1023455@mta.sender.example>",
        "hard",
        "rfc3464",
    ),
    Expect(
        "sendmail/old-nondsn.eml",
        "bounce",
        ("taro@user.example.jp",),
        "5.1.1",
        550,
        "mx.user.example.jp",
        "<200602100604.k1A64Tab012340@sender.example>",
        "hard",
        "sendmail",
    ),
    Expect("unsubscribe/plain-unknown.eml", "unknown", (), message_id=None, format="plain"),
    Expect("unsubscribe/subject.eml", "unsubscribe", (), message_id=None, format="plain"),
    Expect(
        "x-unknown/delivery-errors.eml",
        "bounce",
        ("kijitora@odd-target.example",),
        "5.1.1",
        550,
        None,
        "<x1-orig@sender.example>",
        "hard",
        "sendmail",
    ),
    Expect(
        "x-unknown/trouble-delivering.eml",
        "bounce",
        ("kijitora@hosted-target.example",),
        "5.1.1",
        550,
        "mta2.hosted-target.example",
        None,
        "hard",
        "generic",
    ),
    Expect(
        "x-unknown/unable-to-deliver.eml",
        "bounce",
        ("neko@portal.example",),
        "5.1.1",
        550,
        None,
        "<x2-orig@sender.example>",
        "hard",
        "generic",
    ),
    Expect(
        "yahoo/unable-to-deliver.eml",
        "bounce",
        ("old.yahoo.user@yahoo.com",),
        "5.1.1",
        554,
        None,
        "<y-77@sender.example>",
        "hard",
        "yahoo",
    ),
    Expect(
        "zoho/invalid-address.eml",
        "bounce",
        ("raj@zoho-target.example",),
        "5.1.1",
        550,
        None,
        "<zo-1@sender.example>",
        "hard",
        "zoho",
    ),
]


def parse(path: str) -> MailReport:
    return parse_message((FIXTURES / path).read_bytes())


def verdict(report: MailReport) -> str:
    first = report.recipients[0]
    return classify(
        first.email or "", first.smtp_code, first.enhanced_code, first.smtp_message, first.error
    ).bounce


def test_every_fixture_has_a_row() -> None:
    on_disk = {str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.eml")}
    assert on_disk == {row.path for row in TABLE}


@pytest.mark.parametrize("row", TABLE, ids=[row.path for row in TABLE])
def test_fixture(row: Expect) -> None:
    report = parse(row.path)
    assert report.kind == row.kind
    assert tuple(r.email for r in report.recipients) == row.recipients
    if row.format is not None:
        assert report.format == row.format
    assert report.original.message_id == row.message_id
    if not report.recipients:
        return
    first = report.recipients[0]
    assert (first.enhanced_code, first.smtp_code) == (row.status, row.code)
    assert first.remote_mta == row.remote
    if row.bounce is not None:
        assert verdict(report) == row.bounce
