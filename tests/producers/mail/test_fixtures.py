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
