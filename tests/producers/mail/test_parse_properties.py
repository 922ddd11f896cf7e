"""parse_message never raises, whatever arrives: random bytes, cut fixtures, mangled MIME."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bouncewire.producers.mail import MAIL_KINDS, MailReport, parse_message

FIXTURES = sorted((Path(__file__).parent / "fixtures").rglob("*.eml"))
CORPUS = [path.read_bytes() for path in FIXTURES]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(report: MailReport) -> None:
    assert isinstance(report, MailReport)
    assert report.kind in MAIL_KINDS
    for recipient in report.recipients:
        assert recipient.kind in MAIL_KINDS
        assert recipient.email is None or "@" in recipient.email
        assert recipient.smtp_code is None or 200 <= recipient.smtp_code <= 599


@FAST
@given(st.binary(max_size=4096))
def test_random_bytes(raw: bytes) -> None:
    check(parse_message(raw))


@FAST
@given(st.sampled_from(CORPUS), st.floats(min_value=0.0, max_value=1.0))
def test_truncated_fixture(raw: bytes, fraction: float) -> None:
    check(parse_message(raw[: int(len(raw) * fraction)]))


@FAST
@given(
    st.sampled_from(CORPUS),
    st.lists(st.tuples(st.floats(0.0, 1.0), st.binary(max_size=12)), max_size=8),
)
def test_mangled_fixture(raw: bytes, edits: list[tuple[float, bytes]]) -> None:
    data = bytearray(raw)
    for where, replacement in edits:
        at = int(len(data) * where)
        data[at : at + len(replacement)] = replacement
    check(parse_message(bytes(data)))


@FAST
@given(
    st.text(max_size=300),
    st.sampled_from(["base64", "quoted-printable", "8bit", "x-bogus"]),
    st.sampled_from(["utf-8", "koi8-r", "x-unknown-charset", "utf-7", "iso-2022-jp"]),
)
def test_mangled_mime_headers(body: str, encoding: str, charset: str) -> None:
    raw = (
        "From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered Mail\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain; charset={charset}\r\n"
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n{body}\r\n"
        f"--b\r\nContent-Type: message/delivery-status\r\n"
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
        f"Final-Recipient: rfc822; {body[:40]}\r\nAction: {body[:10]}\r\nStatus: {body[:7]}\r\n"
    ).encode("utf-8", "surrogatepass")
    check(parse_message(raw))


def test_not_bytes_is_still_no_exception() -> None:
    check(parse_message(bytearray(b"From: x\r\n\r\nhello")))  # type: ignore[arg-type]
    check(parse_message(b""))
