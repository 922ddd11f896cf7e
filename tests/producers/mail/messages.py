"""Small mail fixtures written here: a Postfix-style RFC 3464 DSN, an ARF complaint, a mailto
request and a message no format knows. Bytes with CRLF line ends, as they travel."""

from __future__ import annotations

import uuid

DATE = "Thu, 04 Dec 2026 10:00:00 +0000"


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def dsn(recipient: str, *, to: str, action: str = "failed", status: str = "5.1.1",
        diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown",
        message_id: str | None = None, return_path: str | None = None) -> bytes:
    message_id = message_id or f"<{uuid.uuid4().hex}@mta.example>"
    final = f"Final-Recipient: rfc822; {recipient}\n" if recipient else ""
    original_return_path = f"Return-Path: <{return_path}>\n" if return_path else ""
    return _crlf(f"""\
From: MAILER-DAEMON@mta.example (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
Message-ID: {message_id}
Date: {DATE}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mta.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mta.example
Arrival-Date: {DATE}

{final}Action: {action}
Status: {status}
Remote-MTA: dns; mx.recipient.example
Diagnostic-Code: {diagnostic.format(r=recipient)}

--BOUNDARY
Content-Type: text/rfc822-headers

{original_return_path}From: news@sender.example
To: {recipient}
Subject: Our news
Message-ID: <orig-{uuid.uuid4().hex[:8]}@sender.example>
X-CleverTap_META: meta-from-header

--BOUNDARY--
""")


def arf(original_to: str, *, to: str, return_path: str | None = None) -> bytes:
    original_return_path = f"Return-Path: <{return_path}>\n" if return_path else ""
    return _crlf(f"""\
From: feedback@fbl.example
To: {to}
Subject: Complaint about message
Message-ID: <{uuid.uuid4().hex}@fbl.example>
Date: {DATE}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ARF"

--ARF
Content-Type: text/plain

This is an email abuse report for an email message received from IP 192.0.2.1.

--ARF
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: FBL/1.0
Version: 1
Original-Rcpt-To: {original_to}

--ARF
Content-Type: text/rfc822-headers

{original_return_path}From: news@sender.example
To: {original_to}
Subject: Our news
Message-ID: <orig-{uuid.uuid4().hex[:8]}@sender.example>

--ARF--
""")


def unsubscribe_request(sender: str, *, to: str) -> bytes:
    return _crlf(f"""\
From: {sender}
To: {to}
Subject: unsubscribe
Message-ID: <{uuid.uuid4().hex}@reader.example>
Date: {DATE}

Please unsubscribe me.
""")


def unrecognised(*, to: str) -> bytes:
    return _crlf(f"""\
From: someone@else.example
To: {to}
Subject: hello
Message-ID: <{uuid.uuid4().hex}@else.example>
Date: {DATE}

Just saying hello.
""")
