"""Classification of real SMTP replies, plus the policy's invariants as properties."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.schemas.addresses import address_problem
from bouncewire.schemas.classification import (
    REASONS,
    TEXT_SCAN_LIMIT,
    Classification,
    classify,
    implied_enhanced_code,
)

EMAIL = "someone@example.com"
HARD_USER = ("hard", "invalid_email_id", "user_unknown")
HARD_HOST = ("hard", "dispatching_failed", "host_unknown")
HARD_NULL_MX = ("hard", "dispatching_failed", "null_mx")
NO_BOUNCE_AUTH = ("none", "connection_error", "auth_failure")


def soft(reason: str) -> tuple[str, str, str]:
    return ("soft", "dispatching_failed", reason)


# (id, smtp_code, enhanced_code, smtp_message, expected (bounce, error_class, reason))
REAL_REPLIES = [
    # --- Gmail ---
    ("gmail-delivered", 250, "2.0.0", "250 2.0.0 OK  1700000000 a1si1234567qkb.12 - gsmtp",
     ("none", None, "delivered")),
    ("gmail-no-such-user", 550, "5.1.1",
     "550-5.1.1 The email account that you tried to reach does not exist. Please try\n"
     "550-5.1.1 double-checking the recipient's email address for typos or\n"
     "550-5.1.1 unnecessary spaces. Learn more at\n"
     "550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a1si1234567qkb.12 - gsmtp",
     HARD_USER),
    ("gmail-no-such-user-code-only-in-text", 550, None,
     "550-5.1.1 The email account that you tried to reach does not exist. Please try\n"
     "550 5.1.1 double-checking the recipient's email address for typos", HARD_USER),
    ("gmail-over-quota-temp", 452, "4.2.2",
     "452-4.2.2 The email account that you tried to reach is over quota. Please direct\n"
     "452-4.2.2 the recipient to\n"
     "452 4.2.2  https://support.google.com/mail/?p=OverQuotaTemp a1si1 - gsmtp",
     soft("mailbox_full")),
    ("gmail-over-quota-perm", 552, "5.2.2",
     "552-5.2.2 The email account that you tried to reach is over quota and inactive.",
     soft("mailbox_full")),
    ("gmail-disabled", 550, "5.2.1",
     "550-5.2.1 The email account that you tried to reach is disabled. Learn more at\n"
     "550 5.2.1  https://support.google.com/mail/?p=DisabledUser a1si1 - gsmtp",
     soft("mailbox_disabled")),
    ("gmail-receiving-too-quickly", 450, "4.2.1",
     "450-4.2.1 The user you are trying to contact is receiving mail too quickly. Please\n"
     "450 4.2.1 resend your message at a later time. a1si1 - gsmtp", soft("rate_limited")),
    ("gmail-unauthenticated", 550, "5.7.26",
     "550-5.7.26 This mail has been blocked because the sender is unauthenticated.\n"
     "550-5.7.26 Gmail requires all senders to authenticate with either SPF or DKIM.",
     soft("policy")),
    ("gmail-no-ptr", 550, "5.7.25",
     "550-5.7.25 [203.0.113.5] The IP address sending this message does not have a\n"
     "550-5.7.25 PTR record setup, or the corresponding forward DNS entry does not\n"
     "550 5.7.25 point to the sending IP.", soft("policy")),
    ("gmail-unusual-rate", 421, "4.7.0",
     "421-4.7.0 [203.0.113.5] Our system has detected an unusual rate of\n"
     "421-4.7.0 unsolicited mail originating from your IP address. To protect our\n"
     "421-4.7.0 users from spam, mail sent from your IP address has been temporarily\n"
     "421 4.7.0 rate limited.", soft("rate_limited")),
    ("gmail-unsolicited", 550, "5.7.1",
     "550-5.7.1 [203.0.113.5] Our system has detected that this message is\n"
     "550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\n"
     "550-5.7.1 this message has been blocked.", soft("spam")),
    ("gmail-policy-prohibited", 550, "5.7.1",
     "550-5.7.1 The user or domain that you are sending to (or from) has a policy that\n"
     "550 5.7.1 prohibited the mail that you sent.", soft("policy")),
    ("gmail-too-large", 552, "5.2.3",
     "552-5.2.3 Your message exceeded Google's message size limits.",
     soft("message_too_large")),
    ("gmail-relay-auth", 535, "5.7.8",
     "535-5.7.8 Username and Password not accepted.", NO_BOUNCE_AUTH),
    # --- Microsoft 365 / Outlook.com ---
    ("m365-recipient-not-found", 550, "5.1.10",
     "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
     HARD_USER),
    ("m365-recip-not-found", 550, "5.1.1",
     "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found", HARD_USER),
    ("m365-banned-ip", 550, "5.7.606",
     "550 5.7.606 Access denied, banned sending IP [203.0.113.5]. To request removal from "
     "this list please visit https://sender.office.com/ and follow the directions.",
     soft("blocked")),
    ("outlook-block-list", 550, "5.7.1",
     "550 5.7.1 Unfortunately, messages from [203.0.113.5] weren't sent. Please contact your "
     "Internet service provider since part of their network is on our block list (S3140).",
     soft("blocked")),
    ("m365-edge-access-denied", 550, "5.4.1",
     "550 5.4.1 Recipient address rejected: Access denied. AS(201806281) "
     "[BN1NAM02FT012.eop-nam02.prod.protection.outlook.com]", soft("blocked")),
    ("outlook-mailbox-unavailable", 550, "5.5.0",
     "550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). "
     "[AM5EUR02FT012.eop-EUR02.prod.protection.outlook.com]", soft("mailbox_unavailable")),
    ("m365-server-busy", 451, "4.7.500",
     "451 4.7.500 Server busy. Please try again later from [203.0.113.5]. (S77719)",
     soft("rate_limited")),
    ("m365-dns-domain-missing", 550, "5.4.310",
     "550 5.4.310 DNS domain nxdomain.example does not exist "
     "[Message=InfoDomainNonexistent] [LastAttemptedServerName=nxdomain.example]", HARD_HOST),
    ("m365-nonexistent-domain", 550, "5.4.4",
     "550 5.4.4 SMTPSEND.DNS.NonExistentDomain; nonexistent domain", HARD_HOST),
    ("m365-quota", 554, "5.2.2",
     "554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException."
     "MapiExceptionShutoffQuotaExceeded", soft("mailbox_full")),
    ("m365-relay-non-accepted-domain", 550, "5.7.54",
     "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain", soft("relay_denied")),
    ("m365-smtp-auth-disabled", 535, "5.7.139",
     "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
     "Tenant.", NO_BOUNCE_AUTH),
    ("m365-client-not-authenticated", 530, "5.7.57",
     "530 5.7.57 Client not authenticated to send mail.", NO_BOUNCE_AUTH),
    # --- Yahoo / AOL ---
    # Yahoo says it at the end of DATA: words alone, no RCPT (Sisimai: filtered).
    ("yahoo-no-account", 554, None,
     "554 delivery error: dd This user doesn't have a yahoo.com account (someone@yahoo.com) "
     "[0] - mta1234.mail.bf1.yahoo.com", soft("user_unknown")),
    ("yahoo-aborted", 554, None,
     "554 delivery error: dd Requested mail action aborted - mta1234.mail.bf1.yahoo.com",
     soft("unknown")),
    ("yahoo-tss04", 421, "4.7.0",
     "421 4.7.0 [TSS04] Messages from 203.0.113.5 temporarily deferred due to unexpected "
     "volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
     soft("rate_limited")),
    ("yahoo-spamhaus", 553, "5.7.1",
     "553 5.7.1 [BL21] Connections will not be accepted from 203.0.113.5, because the ip is "
     "in Spamhaus's list; see https://postmaster.yahooinc.com/error-codes", soft("blocked")),
    ("yahoo-policy", 554, "5.7.9",
     "554 5.7.9 Message not accepted for policy reasons.  See "
     "https://postmaster.yahooinc.com/error-codes", soft("policy")),
    ("yahoo-deferred", 451, None, "451 Message temporarily deferred - [160]",
     soft("temporary_failure")),
    # --- iCloud ---
    ("icloud-no-user", 550, "5.1.1", "550 5.1.1 <someone@icloud.com>: user does not exist",
     HARD_USER),
    ("icloud-policy", 554, "5.7.1",
     "554 5.7.1 [CS01] Message rejected due to local policy. Please visit "
     "https://support.apple.com/en-us/HT204137", soft("policy")),
    ("icloud-over-quota", 552, "5.2.2", "552 5.2.2 <someone@icloud.com>: user is over quota",
     soft("mailbox_full")),
    # --- Postfix ---
    ("postfix-virtual-unknown", 550, "5.1.1",
     "550 5.1.1 <u@example.com>: Recipient address rejected: User unknown in virtual "
     "mailbox table", HARD_USER),
    ("postfix-local-unknown-text-code", 550, None,
     "550 5.1.1 <u@example.com>: Recipient address rejected: User unknown in local "
     "recipient table", HARD_USER),
    ("postfix-relay-recipient-unknown", 550, None,
     "550 <u@example.com>: Recipient address rejected: User unknown in relay recipient table",
     HARD_USER),
    ("postfix-relay-denied", 554, "5.7.1", "554 5.7.1 <u@example.org>: Relay access denied",
     soft("relay_denied")),
    ("postfix-recipient-domain-not-found", 450, "4.1.2",
     "450 4.1.2 <u@nxdomain.example>: Recipient address rejected: Domain not found",
     soft("host_unknown")),
    ("postfix-sender-domain-not-found", 450, "4.1.8",
     "450 4.1.8 <s@ourco.example>: Sender address rejected: Domain not found",
     soft("sender_rejected")),
    ("postfix-sender-domain-not-found-5xx", 550, "5.1.8",
     "550 5.1.8 <s@ourco.example>: Sender address rejected: Domain not found",
     soft("sender_rejected")),
    ("postfix-greylisted", 450, "4.2.0",
     "450 4.2.0 <u@example.com>: Recipient address rejected: Greylisted, see "
     "http://postgrey.schweikert.ch/help/example.com.html", soft("greylisted")),
    ("postfix-rbl", 554, "5.7.1",
     "554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using zen.spamhaus.org;"
     " https://www.spamhaus.org/query/ip/203.0.113.5", soft("blocked")),
    ("postfix-size", 552, "5.3.4", "552 5.3.4 Message size exceeds fixed limit",
     soft("message_too_large")),
    ("postfix-bad-syntax", 501, "5.1.3", "501 5.1.3 Bad recipient address syntax",
     ("hard", "invalid_email_id", "invalid_syntax")),
    ("postfix-too-many-recipients", 452, "4.5.3", "452 4.5.3 Error: too many recipients",
     soft("rate_limited")),
    ("postfix-timeout", 421, "4.4.2", "421 4.4.2 mx.example.com Error: timeout exceeded",
     soft("timeout")),
    ("postfix-access-map-nonexistent-user", 554, "5.7.1",
     "554 5.7.1 <u@example.com>: Recipient address rejected: Nonexistent user", HARD_USER),
    ("postfix-access-map-policy", 554, "5.7.1",
     "554 5.7.1 <u@example.com>: Recipient address rejected: Access denied", soft("blocked")),
    ("postfix-dns-try-again", 550, None,
     "Name service error for domain example.org: Host not found, try again",
     soft("dns_failure")),
    ("postfix-dsn-host-not-found", 550, "5.4.4",
     "Host or domain name not found. Name service error for name=nxdomain.example type=A: "
     "Host not found", HARD_HOST),
    # --- Exim ---
    ("exim-unrouteable", 550, None, "550 Unrouteable address", HARD_HOST),
    ("exim-sender-verify", 550, None,
     "550-Verification failed for <s@ourco.example>\n550-Unrouteable address\n"
     "550 Sender verify failed", soft("sender_rejected")),
    ("exim-cpanel-no-such-user", 550, None, "550 No Such User Here", HARD_USER),
    ("exim-admin-prohibition", 550, None, "550 Administrative prohibition", soft("blocked")),
    ("exim-relay-not-permitted", 550, None, "550 relay not permitted", soft("relay_denied")),
    ("exim-temporary", 451, None, "451 Temporary local problem - please try later",
     soft("temporary_failure")),
    # --- sendmail ---
    ("sendmail-user-unknown", 550, "5.1.1", "550 5.1.1 <u@example.com>... User unknown",
     HARD_USER),
    ("sendmail-invalid-address", 553, "5.1.3", "553 5.1.3 <u@example.com>... Invalid address",
     ("hard", "invalid_email_id", "invalid_syntax")),
    ("sendmail-relaying-denied", 550, "5.7.1",
     "550 5.7.1 <u@example.com>... Relaying denied", soft("relay_denied")),
    ("sendmail-sender-domain", 553, None,
     "553 5.1.8 <s@ourco.example>... Domain of sender address s@ourco.example does not exist",
     soft("sender_rejected")),
    ("sendmail-disk-space", 452, "4.4.5", "452 4.4.5 Insufficient disk space; try again later",
     soft("system_error")),
    ("sendmail-shutting-down", 421, None, "421 4.3.2 Service shutting down",
     soft("system_error")),
    ("sendmail-unknown-under-x21", 550, "5.2.1", "550 5.2.1 <u@example.com>... User unknown",
     HARD_USER),
    ("sendmail-disabled-under-x21", 550, "5.2.1",
     "550 5.2.1 <u@example.com>... Mailbox disabled for this recipient",
     soft("mailbox_disabled")),
    ("sendmail-no-such-user-x30", 553, "5.3.0", "553 5.3.0 <u@example.com>... No such user",
     HARD_USER),
    ("sendmail-addressee-unknown-x30", 553, "5.3.0",
     "553 5.3.0 <u@example.com>... Addressee unknown, relay=[192.0.2.7]", HARD_USER),
    ("sendmail-forwarding-loop", 554, "5.4.6",
     "554 5.4.6 u@example.com... aliasing/forwarding loop broken (9 aliases deep; 8 max)",
     soft("routing_failure")),
    # --- IMail, Exchange 2003: their own verdicts, no SMTP stage; words alone are soft (their
    # format modules read them as 5.1.1: tests/producers/mail/test_fixtures.py) ---
    ("imail-final-delivery-userid", 550, None, "550 Invalid final delivery userid",
     soft("user_unknown")),
    ("exchange2003-unknown-recipient", 550, None, "550 Unknown Recipient", soft("user_unknown")),
    # --- qmail ---
    ("qmail-rcpthosts", 553, None,
     "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
     soft("relay_denied")),
    ("qmail-no-mailbox", 550, None, "550 sorry, no mailbox here by that name. (#5.1.1)",
     HARD_USER),
    ("qmail-no-mailbox-owner-changed-code", 550, None,
     "550 sorry, no mailbox here by that name. (#5.7.17)", HARD_USER),
    ("qmail-databytes", 552, None,
     "552 sorry, that message size exceeds my databytes limit (#5.3.4)",
     soft("message_too_large")),
    ("qmail-qq-temporary", 451, None, "451 qq temporary problem (#4.3.0)",
     soft("system_error")),
    # --- null MX (RFC 7505) ---
    ("null-mx", 556, "5.1.10", "556 5.1.10 Recipient address has null MX", HARD_NULL_MX),
    ("null-mx-basic-code-only", 556, None, "556 Domain does not accept mail", HARD_NULL_MX),
    ("null-mx-x110-without-text", 550, "5.1.10", None, HARD_NULL_MX),
    ("sender-null-mx", 550, "5.7.27", "550 5.7.27 Sender address has null MX",
     soft("sender_rejected")),
]


# The rows whose servers give that reply to RCPT (Postfix's "Recipient address rejected" is
# smtpd_recipient_restrictions; sendmail, cPanel's Exim and qmail's chkuser check the mailbox
# at RCPT): classify is told so. Every other row's command is unknown (None).
ANSWERS_RCPT = frozenset(
    {
        "postfix-relay-recipient-unknown",
        "postfix-access-map-nonexistent-user",
        "postfix-access-map-policy",
        "exim-cpanel-no-such-user",
        "sendmail-unknown-under-x21",
        "sendmail-disabled-under-x21",
        "sendmail-no-such-user-x30",
        "sendmail-addressee-unknown-x30",
        "qmail-no-mailbox",
        "qmail-no-mailbox-owner-changed-code",
    }
)


def command_of(row_id: str) -> str | None:
    return "RCPT" if row_id in ANSWERS_RCPT else None


@pytest.mark.parametrize(
    ("smtp_code", "enhanced_code", "smtp_message", "expected", "command"),
    [pytest.param(*row[1:], command_of(row[0]), id=row[0]) for row in REAL_REPLIES],
)
def test_real_replies(
    smtp_code: int,
    enhanced_code: str | None,
    smtp_message: str | None,
    expected: tuple[str, ...],
    command: str | None,
) -> None:
    result = classify(EMAIL, smtp_code, enhanced_code, smtp_message, None, command=command)
    assert (result.bounce, result.error_class, result.reason) == expected


def test_table_is_big_and_covers_every_provider() -> None:
    ids = " ".join(row[0] for row in REAL_REPLIES)
    assert len(REAL_REPLIES) >= 40
    for source in ("gmail", "m365", "yahoo", "icloud", "postfix", "exim", "sendmail", "qmail"):
        assert source in ids


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("timeout", ("soft", "timeout", "timeout")),
        ("connection_refused", ("soft", "connection_error", "connection_refused")),
        ("connection_reset", ("soft", "connection_error", "connection_reset")),
        ("dns_failure", ("soft", "connection_error", "dns_failure")),
        ("tls_failure", ("soft", "connection_error", "tls_failure")),
        ("auth_failure", NO_BOUNCE_AUTH),
        (" TIMEOUT\n", ("soft", "timeout", "timeout")),
        ("unknown", ("soft", "connection_error", "unknown")),
        ("kernel_panic", ("soft", "connection_error", "unknown")),
        ("", ("soft", "connection_error", "unknown")),
        (None, soft("unknown")),
    ],
)
def test_no_reply_errors(error: str | None, expected: tuple[str, ...]) -> None:
    result = classify(EMAIL, None, None, None, error)
    assert (result.bounce, result.error_class, result.reason) == expected


@pytest.mark.parametrize(
    ("smtp_code", "enhanced_code", "smtp_message"),
    [
        pytest.param(550, None, "550 user unknown", id="plain"),
        pytest.param(550, "5.0.0", "550 5.0.0 <u@example.com>... User unknown",
                     id="generic-enhanced-lets-text-decide"),
        pytest.param(550, "5.7.1", "550 5.7.1 user unknown", id="x71-user-unknown-text-decides"),
        pytest.param(550, "5.2.1", "550 5.2.1 <u@example.com>... User Unknown", id="x21"),
        pytest.param(550, "5.3.0", "550 5.3.0 no such recipient",
                     id="other-or-undefined-detail-lets-text-decide"),
        pytest.param(550, None, "550 (u@example.com) user not known here", id="user-not-known"),
        pytest.param(550, None, "550 Non-existent mailbox, sorry", id="non-existent-mailbox"),
        pytest.param(550, None, "550 there is no user by that name on this host",
                     id="no-user-by-that-name"),
        pytest.param(550, None, "550 Address unknown (state 14).", id="address-unknown"),
        pytest.param(550, None, "550 Benutzer unbekannt \ud800 user unknown",
                     id="non-ascii-and-lone-surrogate"),
        pytest.param(550, None, "550 USER UNKNOWN", id="upper-case"),
        pytest.param(550, None, "550 Requested action not taken: mailbox unavailable",
                     id="rfc5321-550-text"),
    ],
)
def test_user_unknown_words_are_hard_only_in_a_reply_to_rcpt(
    smtp_code: int, enhanced_code: str | None, smtp_message: str
) -> None:
    """Words alone prove a missing mailbox only as the answer to the command naming it;
    after DATA, or when nobody knows, they may be a content filter's (Sisimai: filtered)."""
    hard = Classification(*HARD_USER)
    for rcpt in ("RCPT", " rcpt "):
        assert classify(EMAIL, smtp_code, enhanced_code, smtp_message, None, command=rcpt) == hard
    for other in (None, "DATA", "MAIL", "EHLO", "CONN", "", "RCPT TO"):
        result = classify(EMAIL, smtp_code, enhanced_code, smtp_message, None, command=other)
        assert result.bounce == "soft", other


@pytest.mark.parametrize(
    ("smtp_code", "enhanced_code", "smtp_message", "expected"),
    [
        # Codes decide whatever the command: 5.1.1 after DATA is still a missing mailbox.
        pytest.param(550, "5.1.1", "550 5.1.1 whatever", HARD_USER, id="x11"),
        pytest.param(550, "5.1.2", "550 5.1.2 bad destination system", HARD_HOST, id="x12"),
        pytest.param(556, None, "556 Domain does not accept mail", HARD_NULL_MX, id="556"),
        # Host-unknown words decide at any stage (Sisimai's HostUnknown needs no command).
        pytest.param(550, None, "550 Unrouteable address", HARD_HOST, id="host-text"),
        pytest.param(550, "5.4.4", "550 5.4.4 Host or domain name not found", HARD_HOST,
                     id="host-text-x44"),
        # "mailbox unavailable" under a code saying more is that code's, even at RCPT.
        pytest.param(550, "5.7.1", "550 5.7.1 Requested action not taken: mailbox unavailable",
                     soft("mailbox_unavailable"), id="mailbox-unavailable-under-x71"),
        pytest.param(550, None, "550 mailbox unavailable, try again later",
                     soft("mailbox_unavailable"), id="mailbox-unavailable-temporary"),
    ],
)
@pytest.mark.parametrize("command", [None, "RCPT", "DATA", "MAIL"])
def test_codes_and_host_words_do_not_depend_on_the_command(
    smtp_code: int,
    enhanced_code: str | None,
    smtp_message: str,
    expected: tuple[str, ...],
    command: str | None,
) -> None:
    result = classify(EMAIL, smtp_code, enhanced_code, smtp_message, None, command=command)
    assert (result.bounce, result.error_class, result.reason) == expected


@pytest.mark.parametrize(
    ("email", "smtp_code", "enhanced_code", "smtp_message", "error", "expected"),
    [
        # A reply code beats the error kind when both are present.
        pytest.param(EMAIL, 550, "5.1.1", "User unknown", "timeout", HARD_USER, id="code-wins"),
        pytest.param(EMAIL, 250, None, None, "auth_failure", ("none", None, "delivered"),
                     id="2xx-beats-error"),
        # An invalid address is hard whatever else the result says, except a 2xx.
        pytest.param("no-at-sign", 421, "4.7.0", "try later", None,
                     ("hard", "invalid_email_id", "invalid_syntax"), id="invalid-address-4xx"),
        pytest.param("a" * 65 + "@example.com", None, None, None, "auth_failure",
                     ("hard", "invalid_email_id", "invalid_syntax"), id="local-part-65"),
        pytest.param("a@" + "b" * 250 + ".com", 550, "5.7.1", "blocked", None,
                     ("hard", "invalid_email_id", "invalid_syntax"), id="address-too-long"),
        pytest.param("no-at-sign", 250, None, None, None, ("none", None, "delivered"),
                     id="invalid-address-but-delivered"),
        # The enhanced field wins over the text's code.
        pytest.param(EMAIL, 550, "5.7.1", "550 5.1.1 rejected", None, soft("blocked"),
                     id="field-beats-text"),
        # A code whose class contradicts the reply code is ignored: 4xx is never hard.
        pytest.param(EMAIL, 450, "5.1.1", None, None, soft("temporary_failure"),
                     id="4xx-with-5.1.1-field"),
        pytest.param(EMAIL, 450, None, "450 5.1.1 user unknown", None, soft("user_unknown"),
                     id="4xx-with-5.1.1-text"),
        pytest.param(EMAIL, 550, "4.1.1", "550 5.1.1 rejected", None, HARD_USER,
                     id="disagreeing-field-falls-back-to-text"),
        pytest.param(EMAIL, 550, "4.1.1", None, None, soft("unknown"),
                     id="disagreeing-field-alone"),
        # Garbage in, an answer out.
        pytest.param(EMAIL, 999, None, None, None, soft("unknown"), id="code-out-of-range"),
        pytest.param(EMAIL, 999, None, None, "timeout", ("soft", "timeout", "timeout"),
                     id="bad-code-falls-back-to-error"),
        pytest.param(EMAIL, 354, None, "354 go ahead", None, soft("unknown"), id="3xx"),
        pytest.param(EMAIL, 550, "5.1", "550 oops", None, soft("unknown"), id="short-enhanced"),
        pytest.param(EMAIL, 550, "\uff15.\uff11.\uff11", None, None, soft("unknown"),
                     id="fullwidth-digits-are-not-a-code"),
        pytest.param(EMAIL, 550, None, "550 rejected [5.1.1.7]", None, soft("unknown"),
                     id="ip-address-is-not-a-code"),
        pytest.param(EMAIL, 550, None, "x" * TEXT_SCAN_LIMIT + " user unknown", None,
                     soft("unknown"), id="text-beyond-scan-limit-ignored"),
        pytest.param(EMAIL, 550, None, "550 mailbox unavailable", None,
                     soft("mailbox_unavailable"), id="generic-550-is-soft"),
        pytest.param(EMAIL, 550, "5.7.26", "550 5.7.26 user unknown", None, soft("user_unknown"),
                     id="sender-auth-code-is-never-hard-by-text"),
        pytest.param(EMAIL, 550, "5.7.1", "550 5.7.1 Unrouteable address", None,
                     soft("host_unknown"), id="x71-host-text-does-not-decide"),
        pytest.param(EMAIL, 552, "5.2.2", "552 5.2.2 user unknown or over quota", None,
                     soft("user_unknown"), id="mailbox-full-code-is-never-hard-by-text"),
        pytest.param(EMAIL, 550, "5.6.1", "550 5.6.1 recipient unknown", None,
                     soft("user_unknown"), id="content-code-is-never-hard-by-text"),
        pytest.param(EMAIL, 550, "5.7.0", "550 5.7.0 Unrouteable address", None, HARD_HOST,
                     id="x70-lets-host-text-decide"),
        pytest.param(EMAIL, 550, None, "550 Sender address does not exist", None,
                     soft("sender_rejected"), id="sender-address-does-not-exist"),
        pytest.param(EMAIL, 554, "5.0.0", "554 5.0.0 Too many hops 26 (25 max): to u@example.com",
                     None, soft("routing_failure"), id="too-many-hops"),
        # Temporary wording, a mail loop or a DNS try-again veto hard.
        pytest.param(EMAIL, 550, None, "550 no such user, please try again later", None,
                     soft("user_unknown"), id="try-again-vetoes-hard-by-text"),
        pytest.param(EMAIL, 550, None, "550 mailbox unknown (temporary lookup problem)", None,
                     soft("user_unknown"), id="temporary-vetoes-hard-by-text"),
        pytest.param(EMAIL, 550, "5.1.1", "550 5.1.1 user unknown, try again later", None,
                     HARD_USER, id="try-again-does-not-override-x11"),
        pytest.param(EMAIL, 554, "5.1.1",
                     "554 5.1.1 u@example.com... mail loop detected; u@example.com... "
                     "User unknown", None, soft("routing_failure"), id="loop-vetoes-hard-code"),
        pytest.param(EMAIL, 550, "5.4.4",
                     "550 5.4.4 Host or domain name not found. Name service error for "
                     "name=example.org type=MX: Host not found, try again", None,
                     soft("dns_failure"), id="dns-try-again-is-not-host-unknown"),
        pytest.param(EMAIL, 550, "5.1.2", "550 5.1.2 Host not found, try again", None,
                     soft("dns_failure"), id="dns-try-again-vetoes-hard-code"),
        pytest.param(EMAIL, 550, None, "550 Recipient domain has a null MX record", None,
                     HARD_NULL_MX, id="null-mx-text-without-code"),
        pytest.param(EMAIL, 550, "5.7.1", "550 5.7.1 Recipient domain has a null MX", None,
                     soft("null_mx"), id="null-mx-text-under-policy-code"),
        pytest.param(EMAIL, 550, "5.4.310", "550 5.4.310 DNS domain x.example does not exist",
                     None, HARD_HOST, id="phrase-in-two-parts"),
        pytest.param(EMAIL, 550, "5.4.310", "550 5.4.310 does not exist: DNS domain x.example",
                     None, soft("routing_failure"), id="phrase-parts-out-of-order"),
        pytest.param(EMAIL, 550, None, "550 superuser unknownish", None, soft("unknown"),
                     id="whole-words-only"),
        pytest.param(EMAIL, 550, None, "550 Sender address rejected: User unknown", None,
                     soft("sender_rejected"), id="sender-text-vetoes-hard"),
        pytest.param(EMAIL, 550, "5.1.1", "550 5.1.1 Sender verify failed", None,
                     soft("sender_rejected"), id="sender-text-vetoes-hard-code"),
    ],
)
def test_edge_cases(
    email: str,
    smtp_code: int | None,
    enhanced_code: str | None,
    smtp_message: str | None,
    error: str | None,
    expected: tuple[str, ...],
) -> None:
    result = classify(email, smtp_code, enhanced_code, smtp_message, error)
    assert (result.bounce, result.error_class, result.reason) == expected


HARD_ROWS = [row for row in REAL_REPLIES if row[4][0] == "hard"]
_ENHANCED_IN_TEXT = re.compile(r"\b5\.[0-9]{1,3}\.[0-9]{1,3}\b")


@pytest.mark.parametrize(
    ("smtp_code", "enhanced_code", "smtp_message"),
    [pytest.param(*row[1:4], id=row[0]) for row in HARD_ROWS],
)
def test_loop_or_dns_try_again_wording_vetoes_every_hard_reply(
    smtp_code: int, enhanced_code: str | None, smtp_message: str | None
) -> None:
    for cause in ("mail forwarding loop for u@example.com;", "Host not found, try again;"):
        text = f"{cause} {smtp_message}"
        result = classify(EMAIL, smtp_code, enhanced_code, text, None, command="RCPT")
        assert result.bounce == "soft", cause


@pytest.mark.parametrize(
    ("smtp_code", "smtp_message"),
    [
        pytest.param(row[1], row[3], id=row[0])
        for row in HARD_ROWS
        if row[2] is None and row[1] != 556 and not _ENHANCED_IN_TEXT.search(row[3] or "")
    ],
)
def test_temporary_wording_vetoes_hard_by_text_alone(smtp_code: int, smtp_message: str) -> None:
    assert classify(EMAIL, smtp_code, None, smtp_message, None, command="RCPT").bounce == "hard"
    for words in ("please try again later", "try later", "temporarily"):
        text = f"{smtp_message} ({words})"
        result = classify(EMAIL, smtp_code, None, text, None, command="RCPT")
        assert result.bounce == "soft", words


def test_result_is_immutable() -> None:
    result = classify(EMAIL, 250, None, None, None)
    with pytest.raises(AttributeError):
        result.bounce = "hard"  # type: ignore[misc]


# --- properties -------------------------------------------------------------------------

anything = st.one_of(
    st.none(), st.integers(), st.text(), st.binary(), st.floats(), st.booleans()
)
reply_texts = st.one_of(
    st.none(),
    st.text(max_size=2000),
    st.sampled_from([row[3] for row in REAL_REPLIES if row[3] is not None]),
)
enhanced_codes = st.one_of(
    st.none(),
    st.from_regex(r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}", fullmatch=True),
    st.sampled_from([row[2] for row in REAL_REPLIES if row[2] is not None]),
    st.text(max_size=12),
)
valid_emails = st.from_regex(r"[a-z0-9]{1,20}(\.[a-z0-9]{1,10})?@[a-z]{1,20}\.(com|org|de)",
                             fullmatch=True)
errors = st.one_of(
    st.none(),
    st.sampled_from(["timeout", "connection_refused", "connection_reset", "dns_failure",
                     "tls_failure", "auth_failure", "unknown"]),
    st.text(max_size=20),
)
SNAKE = re.compile(r"[a-z][a-z0-9_]*")


@given(anything, anything, anything, anything, anything)
def test_never_raises_on_any_input(
    email: object, code: object, enhanced: object, message: object, error: object
) -> None:
    result = classify(email, code, enhanced, message, error)  # type: ignore[arg-type]
    assert isinstance(result, Classification)
    assert result.reason in REASONS


@given(st.text(max_size=300), st.one_of(st.none(), st.integers(100, 700)), enhanced_codes,
       reply_texts, errors)
def test_result_is_well_formed_and_deterministic(
    email: str, code: int | None, enhanced: str | None, message: str | None, error: str | None
) -> None:
    first = classify(email, code, enhanced, message, error)
    assert first == classify(email, code, enhanced, message, error)
    assert first.reason in REASONS and SNAKE.fullmatch(first.reason)
    assert first.bounce in ("hard", "soft", "none")
    if first.bounce == "none":
        assert first.reason in ("delivered", "auth_failure")
    if first.bounce == "hard":
        assert first.error_class in ("invalid_email_id", "dispatching_failed")


@given(valid_emails, st.integers(400, 499), enhanced_codes, reply_texts, errors)
def test_4xx_is_never_hard(
    email: str, code: int, enhanced: str | None, message: str | None, error: str | None
) -> None:
    result = classify(email, code, enhanced, message, error)
    assert (result.bounce, result.error_class) == ("soft", "dispatching_failed")


@given(st.text(max_size=300), st.integers(200, 299), enhanced_codes, reply_texts, errors)
def test_2xx_is_always_delivered(
    email: str, code: int, enhanced: str | None, message: str | None, error: str | None
) -> None:
    assert classify(email, code, enhanced, message, error) == Classification(
        "none", None, "delivered"
    )


invalid_emails = st.one_of(
    st.text(max_size=80).filter(lambda text: "@" not in text),
    st.from_regex(r"[a-z]{65,70}@example\.com", fullmatch=True),
    st.from_regex(r"[a-z ]{0,5} [a-z]{1,5}@example\.com", fullmatch=True),
    st.text(max_size=300),
)


@given(invalid_emails, st.one_of(st.none(), st.integers(300, 599)), enhanced_codes,
       reply_texts, errors)
def test_invalid_address_is_hard_unless_delivered(
    email: str, code: int | None, enhanced: str | None, message: str | None, error: str | None
) -> None:
    if address_problem(email) is None:
        return  # st.text() sometimes draws a valid address
    result = classify(email, code, enhanced, message, error)
    assert result == Classification("hard", "invalid_email_id", "invalid_syntax")


@given(valid_emails, errors)
def test_without_a_reply_a_valid_address_is_never_hard(email: str, error: str | None) -> None:
    result = classify(email, None, None, None, error)
    assert result.bounce != "hard"
    if error is not None:
        assert result.error_class in ("timeout", "connection_error")


@given(valid_emails, st.integers(200, 599), enhanced_codes, reply_texts, st.text(max_size=500))
def test_text_beyond_the_scan_limit_changes_nothing(
    email: str, code: int, enhanced: str | None, message: str | None, tail: str
) -> None:
    padded = (message or "").ljust(TEXT_SCAN_LIMIT)[:TEXT_SCAN_LIMIT]
    assert classify(email, code, enhanced, padded, None) == classify(
        email, code, enhanced, padded + tail, None
    )


@pytest.mark.parametrize(
    ("code", "enhanced", "text", "command", "implied"),
    [
        (550, None, "No such user here", "RCPT", "5.1.1"),
        (550, "5.0.0", "Unknown user", "RCPT", "5.1.1"),
        (550, None, "No such user here", None, None),  # words alone, stage unknown: soft
        (550, None, "No such user here", "DATA", None),
        (550, None, "Host unknown", None, "5.1.2"),
        (550, None, "Host unknown", "DATA", "5.1.2"),
        # A stated code stays unless the verdict rests on the command: then the code the
        # verdict stands for replaces it, or a record without the command would read soft.
        (550, "5.3.0", "No such user here", None, None),
        (550, "5.3.0", "No such user here", "RCPT", "5.1.1"),
        (550, "5.2.1", "User unknown", "RCPT", "5.1.1"),
        (550, "5.1.1", "whatever", "RCPT", None),
        (550, "5.1.1", "whatever", None, None),
        (550, None, "Requested action not taken: mailbox unavailable", None, None),  # soft
        (550, None, "Requested action not taken: mailbox unavailable", "RCPT", "5.1.1"),
        (450, None, "user unknown, try again later", "RCPT", None),
        (None, None, None, "RCPT", None),
    ],
)
def test_implied_enhanced_code_follows_the_verdict(
    code: int | None, enhanced: str | None, text: str | None, command: str | None,
    implied: str | None
) -> None:
    assert implied_enhanced_code(code, enhanced, text, None, command=command) == implied
    if implied is not None:  # filled in, a record without the command reads the same
        assert classify("a@example.com", code, implied, text, None) == classify(
            "a@example.com", code, enhanced, text, None, command=command
        )


commands = st.one_of(
    st.none(),
    st.sampled_from(["RCPT", "rcpt", "MAIL", "DATA", "EHLO", "CONN", "STARTTLS", "AUTH"]),
    st.text(max_size=8),
)


@given(valid_emails, st.one_of(st.none(), st.integers(200, 599)), enhanced_codes, reply_texts,
       errors, commands)
def test_a_record_filled_with_the_implied_code_reads_as_the_reply_with_its_command(
    email: str, code: int | None, enhanced: str | None, message: str | None, error: str | None,
    command: str | None,
) -> None:
    """What the producers do for the consumer, which classifies records without a command:
    classify(record after filling, command=None) == classify(original, command=cmd)."""
    implied = implied_enhanced_code(code, enhanced, message, error, command=command)
    assert classify(email, code, implied or enhanced, message, error) == classify(
        email, code, enhanced, message, error, command=command
    )


@given(valid_emails, st.integers(500, 599), enhanced_codes, reply_texts, errors, commands)
def test_a_command_other_than_rcpt_never_makes_a_bounce_harder(
    email: str, code: int, enhanced: str | None, message: str | None, error: str | None,
    command: str | None,
) -> None:
    with_command = classify(email, code, enhanced, message, error, command=command)
    without = classify(email, code, enhanced, message, error)
    if command is None or command.strip().upper() != "RCPT":
        assert with_command == without
    elif with_command != without:  # RCPT only ever turns a soft verdict into user_unknown
        assert (without.bounce, with_command.reason) == ("soft", "user_unknown")
