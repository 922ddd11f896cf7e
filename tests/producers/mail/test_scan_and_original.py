"""The shared text scanner and the returned original, on small texts."""

from __future__ import annotations

from bouncewire.producers.mail import parse_message
from bouncewire.producers.mail.message import load
from bouncewire.producers.mail.original import original_of
from bouncewire.producers.mail.scan import Region, scan


def emails_and_texts(text: str, exclude: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    return [(f.email or "", f.diagnosis or "") for f in scan(Region(text, exclude))]


def test_each_address_gets_the_text_up_to_the_next_one() -> None:
    text = (
        "<a@x.example>: host mx.x.example[192.0.2.1] said: 550 5.1.1 no such user\n"
        "<b@y.example>: host mx.y.example[192.0.2.2] said: 452 4.2.2 mailbox full\n"
    )
    found = emails_and_texts(text)
    assert [email for email, _ in found] == ["a@x.example", "b@y.example"]
    assert "550 5.1.1" in found[0][1] and "452" not in found[0][1]
    assert "452 4.2.2" in found[1][1]


def test_aliases_senders_urls_and_daemons_are_no_recipients() -> None:
    text = (
        "<r@x.example> (expanded from <alias@x.example>): 550 5.1.1 unknown\n"
        "MAIL FROM:<sender@ours.example>\n"
        "See https://help.example/?u=someone@help.example for help, or postmaster@x.example\n"
    )
    assert [email for email, _ in emails_and_texts(text)] == ["r@x.example"]


def test_an_alias_is_the_recipient_when_nobody_else_is_named() -> None:
    text = "  an undisclosed address\n    (generated from list@x.example)\n    550 5.1.1 unknown"
    assert [email for email, _ in emails_and_texts(text)] == ["list@x.example"]


def test_excluded_addresses_are_left_out() -> None:
    text = "Your message from me@ours.example to you@x.example failed: 550 5.1.1 unknown"
    assert [e for e, _ in emails_and_texts(text, frozenset({"me@ours.example"}))] == [
        "you@x.example"
    ]


def test_a_reply_quoted_before_the_list_is_shared() -> None:
    text = (
        "Could not be delivered because of\n\n550 5.1.1 User unknown\n\nAffected:\n  a@x.example\n"
    )
    assert "550 5.1.1 User unknown" in emails_and_texts(text)[0][1]


def test_inline_original_headers_after_a_marker() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example\nSubject: failure notice\n\n"
        b"<a@x.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
        b"--- Below this line is a copy of the message.\n\n"
        b"Return-Path: <bounces+v1.k2.abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop"
        b"qrstuvwxyz0123456789@bounce.sender.example>\n"
        b"Message-ID: abc.123@sender.example\nX-CleverTap-Campaign-Id: c-9\n"
        b'X-CleverTap_META: {"k": 1}\nTo: a@x.example\n\nbody\n'
    )
    original = original_of(load(raw))
    assert original.message_id == "<abc.123@sender.example>"
    assert original.campaign_id == "c-9"
    assert original.meta == '{"k": 1}'
    assert original.to == "a@x.example"
    assert original.return_path is not None and original.return_path.startswith("bounces+v1.k2.")


def test_a_plain_question_is_unknown_with_its_sender() -> None:
    report = parse_message(b"From: A <a@home.example>\nSubject: hello\n\nWhere is my order?\n")
    assert (report.kind, report.sender, report.recipients) == ("unknown", "a@home.example", ())
