"""MailReport → events: what each kind becomes, VERP and mailto tokens, forgeries, ids."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bouncewire.producers.mail.events import NOTES, MailOptions, mail_events, message_key
from bouncewire.producers.mail.report import (
    MAIL_KINDS,
    MailReport,
    OriginalMessage,
    RecipientReport,
)
from bouncewire.producers.signed_addresses import signed_address
from bouncewire.producers.unsubscribe.tokens import Claims, Keyring
from bouncewire.schemas.classification import classify

RING = Keyring([("k2", b"k" * 32), ("k1", b"o" * 32)])
OTHER_RING = Keyring([("k2", b"x" * 32)])
NOW_MS = 1_760_000_000_000
DATE_MS = 1_750_000_000_000
DOMAIN = "bounces.example.net"
ORIGINAL = OriginalMessage("<m1@sender.example>", "camp-from-header", "meta-from-header")


def failed(email: str | None = "jane@example.com", **fields: object) -> RecipientReport:
    defaults: dict[str, object] = {
        "enhanced_code": "5.1.1",
        "smtp_code": 550,
        "smtp_message": "550 5.1.1 <jane@example.com>: Recipient address rejected: User unknown",
        "remote_mta": "mx.example.com",
        "event_time_ms": DATE_MS,
    }
    return RecipientReport("bounce", email, **{**defaults, **fields})  # type: ignore[arg-type]


def report(kind: str = "bounce", *recipients: RecipientReport, **fields: object) -> MailReport:
    return MailReport(kind, recipients, **{"original": ORIGINAL, "message_id": "<dsn1@mta>",  # type: ignore[arg-type]
                                           **fields})


def verp(email: str, campaign: str | None = "c-verp", meta: str | None = "m-verp",
         ring: Keyring = RING) -> str:
    return signed_address(ring, Claims(email, campaign, meta), DOMAIN, "bounce")


def mailto(email: str, ring: Keyring = RING) -> str:
    return signed_address(ring, Claims(email, "c-unsub", None), DOMAIN, "unsubscribe")


def convert(r: MailReport, envelope: tuple[str, ...] = (), ring: Keyring | None = RING,
            **options: bool):  # type: ignore[no-untyped-def]
    return mail_events(r, envelope, ring, key=message_key(r, b"raw"), now_ms=NOW_MS,
                       options=MailOptions(**options))


def test_a_failed_recipient_becomes_a_send_result_with_its_evidence_verbatim() -> None:
    result = convert(report("bounce", failed()))
    [event] = result.events
    assert (event.kind, event.mail_kind, result.notes) == ("send_result", "bounce", ())
    record = event.record
    assert record["email"] == "jane@example.com"
    assert (record["smtp_code"], record["enhanced_code"]) == (550, "5.1.1")
    assert record["smtp_message"].startswith("550 5.1.1")
    assert record["remote_mta"] == "mx.example.com"
    assert record["event_time"] == DATE_MS
    assert (record["message_id"], record["campaign_id"], record["meta"]) == (
        "<m1@sender.example>", "camp-from-header", "meta-from-header")
    assert classify(record["email"], record["smtp_code"], record["enhanced_code"],
                    record["smtp_message"], record["error"]).bounce == "hard"


def test_each_recipient_in_order_and_a_delay_among_them_is_only_counted() -> None:
    delayed = RecipientReport("delay", "late@example.com", "4.4.1", 421, "421 try later")
    result = convert(report("bounce", failed("a@example.com"), delayed, failed("b@example.com")))
    assert [e.record["email"] for e in result.events] == ["a@example.com", "b@example.com"]
    assert result.notes == ("delay",)


@pytest.mark.parametrize(
    ("status", "code", "bounce"),
    [("5.1.1", 550, "hard"), ("5.2.2", 550, "soft"), ("4.4.7", 450, "soft"), (None, 550, "soft"),
     ("garbage", 550, "soft")],
)
def test_status_only_reports_get_the_reply_class_the_status_implies(
    status: str | None, code: int, bounce: str
) -> None:
    recipient = RecipientReport("bounce", "jane@example.com", status, None, None)
    [event] = convert(report("bounce", recipient)).events
    record = event.record
    assert record["smtp_code"] == code
    assert record["enhanced_code"] == (status if status != "garbage" else None)
    assert classify(record["email"], code, record["enhanced_code"], None, None).bounce == bounce


@pytest.mark.parametrize(
    ("enhanced", "text", "command", "published", "bounce"),
    [
        (None, "550 no such user here", "RCPT", "5.1.1", "hard"),
        ("5.0.0", "550 5.0.0 User unknown", "RCPT", "5.1.1", "hard"),
        ("5.2.1", "550 5.2.1 <j@example.com>... User Unknown", "RCPT", "5.1.1", "hard"),
        (None, "550 no such user here", "DATA", None, "soft"),
        (None, "550 no such user here", None, None, "soft"),
        (None, "550 Unrouteable address", "DATA", "5.1.2", "hard"),  # host words need none
    ],
)
def test_a_verdict_resting_on_the_smtp_command_travels_as_its_status(
    enhanced: str | None, text: str, command: str | None, published: str | None, bounce: str
) -> None:
    """The record has no command field: the consumer reads the status it implies."""
    recipient = failed(enhanced_code=enhanced, smtp_message=text, smtp_command=command)
    [event] = convert(report("bounce", recipient)).events
    record = event.record
    assert record["enhanced_code"] == published
    verdict = classify(record["email"], 550, record["enhanced_code"], text, None)
    assert verdict == classify(record["email"], 550, enhanced, text, None, command=command)
    assert verdict.bounce == bounce


def test_a_transport_error_is_kept_without_inventing_a_code() -> None:
    recipient = RecipientReport("bounce", "j@example.com", None, None, None, error="timeout")
    [event] = convert(report("bounce", recipient)).events
    assert (event.record["smtp_code"], event.record["error"]) == (None, "timeout")


def test_delay_notices_are_counted_never_published() -> None:
    delayed = RecipientReport("delay", "jane@example.com", "4.4.7", 451, "451 4.4.7 delayed")
    for envelope in ((), (verp("jane@example.com"),)):
        result = convert(report("delay", delayed), envelope)
        assert (result.events, result.notes) == ((), ("delay",))


def test_delivered_is_published_as_a_250_that_classify_drops() -> None:
    ok = RecipientReport("delivered", "jane@example.com", "2.0.0", None, None)
    [event] = convert(report("delivered", ok)).events
    assert (event.record["smtp_code"], event.mail_kind) == (250, "delivered")
    assert classify("jane@example.com", 250, "2.0.0", None, None).bounce == "none"


def test_verp_names_the_recipient_when_the_text_names_none() -> None:
    anonymous = RecipientReport("bounce", None, "5.1.1", 550, "550 5.1.1 no such user")
    result = convert(report("bounce", anonymous), (verp("jane@example.com"),))
    [event] = result.events
    assert (event.record["email"], event.record["campaign_id"], event.record["meta"]) == (
        "jane@example.com", "c-verp", "m-verp")
    assert event.record["enhanced_code"] == "5.1.1"


def test_verp_wins_over_a_forwarding_address_and_gives_one_event() -> None:
    forwarded = failed("jane.forward@elsewhere.example")
    result = convert(report("bounce", forwarded, failed("other@elsewhere.example")),
                     (verp("jane@example.com"),))
    assert [e.record["email"] for e in result.events] == ["jane@example.com"]


def test_verp_in_the_returned_originals_return_path_or_the_to_header() -> None:
    original = replace(ORIGINAL, return_path=verp("jane@example.com"))
    by_original = convert(report("bounce", failed(None), original=original))
    by_to = convert(report("bounce", failed(None), to_header=(verp("jane@example.com"),)))
    for result in (by_original, by_to):
        assert [e.record["email"] for e in result.events] == ["jane@example.com"]


def test_verp_without_any_recipient_report_uses_the_messages_kind() -> None:
    [event] = convert(report("bounce"), (verp("jane@example.com", None, None),)).events
    assert (event.record["email"], event.record["smtp_code"]) == ("jane@example.com", 550)
    assert event.record["campaign_id"] == "camp-from-header"  # the token had none


@pytest.mark.parametrize("ring", [OTHER_RING], ids=["other-key"])
def test_a_forged_token_attributes_nothing_and_is_counted(ring: Keyring) -> None:
    forged = verp("victim@example.com", ring=ring)
    named = convert(report("bounce", failed("jane@example.com")), (forged,))
    assert [e.record["email"] for e in named.events] == ["jane@example.com"]
    assert named.events[0].record["campaign_id"] == "camp-from-header"
    assert named.notes == ("forged_token",)
    tampered = forged[:20] + ("a" if forged[20] != "a" else "b") + forged[21:]
    unnamed = convert(report("bounce", failed(None)), (tampered,))
    assert (unnamed.events, unnamed.notes) == ((), ("forged_token", "no_recipient"))


def test_without_keys_a_token_is_unverified_and_the_text_decides() -> None:
    result = convert(report("bounce", failed()), (verp("x@example.com"),), ring=None)
    assert [e.record["email"] for e in result.events] == ["jane@example.com"]
    assert result.notes == ("unverified_token",)


def test_mailto_publishes_an_unsubscribe_for_the_tokens_address() -> None:
    result = convert(report("unsubscribe", sender="someone@else.example"),
                     (mailto("jane@example.com"),))
    [event] = result.events
    assert (event.kind, event.mail_kind) == ("unsubscribe", "unsubscribe")
    assert event.record["source"] == "mailto"
    assert (event.record["email"], event.record["campaign_id"]) == ("jane@example.com", "c-unsub")


@pytest.mark.parametrize(
    "address",
    [f"unsubscribe@{DOMAIN}", mailto("jane@example.com", OTHER_RING),
     verp("jane@example.com").replace("bounce+", "unsubscribe+", 1)],
    ids=["no-token", "forged", "bounce-token-as-mailto"],
)
def test_mailto_without_a_valid_token_publishes_nothing(address: str) -> None:
    result = convert(report("unsubscribe"), (address,))
    assert result.events == ()
    assert "unsigned_unsubscribe" in result.notes


def test_an_auto_reply_to_the_mailto_address_is_no_unsubscribe() -> None:
    result = convert(report("auto_reply"), (mailto("jane@example.com"),))
    assert (result.events, result.notes) == ((), ("auto_reply",))


def test_a_complaint_unsubscribes_the_recipient_by_default() -> None:
    complainer = RecipientReport("complaint", "jane@example.com", event_time_ms=DATE_MS)
    result = convert(report("complaint", complainer))
    [event] = result.events
    assert (event.kind, event.record["source"], event.record["email"]) == (
        "unsubscribe", "complaint", "jane@example.com")
    assert event.record["campaign_id"] == "camp-from-header"
    assert event.record["event_time"] == DATE_MS
    assert result.notes == ("complaint",)


def test_a_redacted_complaint_finds_its_recipient_by_verp_or_the_originals_to() -> None:
    original = replace(ORIGINAL, return_path=verp("jane@example.com"))
    [by_verp] = convert(report("complaint", original=original)).events
    assert (by_verp.record["email"], by_verp.record["campaign_id"]) == (
        "jane@example.com", "c-verp")
    [by_to] = convert(report("complaint", original=replace(ORIGINAL, to="bob@example.com"))).events
    assert by_to.record["email"] == "bob@example.com"
    nobody = convert(report("complaint"))
    assert (nobody.events, nobody.notes) == ((), ("complaint", "no_recipient"))


def test_complaint_unsubscribes_can_be_turned_off_and_are_still_counted() -> None:
    result = convert(report("complaint", RecipientReport("complaint", "j@example.com")),
                     complaint_unsubscribes=False)
    assert (result.events, result.notes) == ((), ("complaint", "complaint_unsubscribe_off"))


@pytest.mark.parametrize("kind", ["auto_reply", "unknown"])
def test_auto_replies_and_unknown_mail_are_only_counted(kind: str) -> None:
    result = convert(report(kind, failed()))
    assert (result.kind, result.events, result.notes) == (kind, (), (kind,))


def test_an_unusable_address_is_counted_not_raised() -> None:
    result = convert(report("bounce", failed("a\x00b@example.com"), failed("ok@example.com")))
    assert [e.record["email"] for e in result.events] == ["ok@example.com"]
    assert result.notes == ("invalid_event",)


def test_oversized_texts_are_cut_to_the_contracts_limits() -> None:
    huge = failed(smtp_message="x" * 100_000, remote_mta="h" * 1000)
    [event] = convert(report("bounce", huge)).events
    assert len(event.record["smtp_message"].encode()) == 64 * 1024
    assert len(event.record["remote_mta"]) == 255


def test_event_ids_are_stable_per_message_recipient_and_kind() -> None:
    r = report("bounce", failed("a@example.com"), failed("b@example.com"))
    first, second = convert(r), convert(r)
    ids = [e.record["event_id"] for e in first.events]
    assert ids == [e.record["event_id"] for e in second.events]
    assert len(set(ids)) == 2 and all(uuid.UUID(i).version == 5 for i in ids)
    # Without a Message-ID the bytes identify the message.
    anonymous = replace(r, message_id=None)
    key_a, key_b = message_key(anonymous, b"one"), message_key(anonymous, b"two")
    assert key_a != key_b and key_a == message_key(anonymous, b"one")


def test_times_outside_sane_bounds_fall_back_to_the_date_then_now() -> None:
    [event] = convert(report("bounce", failed(event_time_ms=-5), date_ms=None)).events
    assert event.record["event_time"] == NOW_MS
    [event] = convert(report("bounce", failed(event_time_ms=None), date_ms=DATE_MS)).events
    assert event.record["event_time"] == DATE_MS


_text = st.none() | st.text(max_size=80)
_recipients = st.builds(
    RecipientReport,
    kind=st.sampled_from(MAIL_KINDS),
    email=st.none() | st.emails() | st.text(max_size=40),
    enhanced_code=st.none() | st.sampled_from(["5.1.1", "4.2.2", "2.0.0", "9.9.9", "5.1"]) | _text,
    smtp_code=st.none() | st.integers(-5, 1000),
    smtp_message=_text,
    remote_mta=_text,
    event_time_ms=st.none() | st.integers(-(2**40), 2**45),
    error=st.none() | st.sampled_from(["timeout", "dns_failure", "bogus"]),
)
_addresses = st.lists(
    st.sampled_from([verp("v@example.com"), mailto("m@example.com"),
                     verp("f@example.com", ring=OTHER_RING), "postmaster@example.com"])
    | st.text(max_size=30),
    max_size=3,
)


@settings(max_examples=300)
@given(
    kind=st.sampled_from(MAIL_KINDS),
    recipients=st.lists(_recipients, max_size=4),
    envelope=_addresses,
    to_header=_addresses,
    complaints=st.booleans(),
)
def test_any_report_converts_without_raising_into_valid_events(
    kind: str, recipients: list[RecipientReport], envelope: list[str], to_header: list[str],
    complaints: bool,
) -> None:
    r = MailReport(kind, tuple(recipients), ORIGINAL, to_header=tuple(to_header))  # type: ignore[arg-type]
    result = convert(r, tuple(envelope), complaint_unsubscribes=complaints)
    assert set(result.notes) <= set(NOTES)
    for event in result.events:
        assert event.kind in ("send_result", "unsubscribe")
        if event.kind == "send_result":
            assert event.mail_kind in ("bounce", "delivered")  # never a delay
        else:
            assert event.record["source"] in ("mailto", "complaint")
    assert not any(e.mail_kind == "delay" for e in result.events)
