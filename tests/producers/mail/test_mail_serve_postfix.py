"""A real Postfix bounces a message and delivers its DSN to `mail serve` (the MX of the bounce
domain): the bounce is attributed through the signed VERP return path. Needs root and
Debian's postfix (deploy/scripts/install-tools.sh); skipped otherwise."""

from __future__ import annotations

import smtplib
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.producers.mail.conftest import make_topics, serving, verp_address
from tests.producers.unsubscribe.unsubscribe_harness import free_port

# The throwaway Postfix of the MTA-log tests (its own branch until merged).
harness = pytest.importorskip("tests.producers.mta_log.postfix_harness")
internet, postfix_usable, throwaway_postfix = (
    harness.internet, harness.postfix_usable, harness.throwaway_postfix)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(postfix_usable() is not None, reason=str(postfix_usable())),
]
RECIPIENT_DOMAIN = "recipient.test"


def test_postfix_delivers_its_bounce_to_mail_serve_attributed_by_verp(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics = make_topics(kafka_bootstrap)
    recipient = f"nouser-{uuid.uuid4().hex[:8]}@{RECIPIENT_DOMAIN}"
    return_path = verp_address(recipient, "camp-postfix", "meta-postfix")
    mx_port, smtpd_port = free_port(), free_port()
    with serving(kafka_bootstrap, topics, tmp_path / "quarantine") as live, \
            internet(mx_port), \
            throwaway_postfix(smtpd_port, live.port, RECIPIENT_DOMAIN, mx_port):
        start = live.offsets()
        message = EmailMessage()
        message["From"] = "news@sender.test"
        message["To"] = recipient
        message["Subject"] = "News"
        message["X-CleverTap_META"] = "meta-postfix"
        message.set_content("Hello.\n")
        with smtplib.SMTP("127.0.0.1", smtpd_port, timeout=30) as smtp:
            smtp.send_message(message, from_addr=return_path, to_addrs=[recipient])
        # Postfix gets 550 at RCPT, writes its DSN, relays it to mail serve: bounded wait.
        deadline = time.monotonic() + 60
        while not (published := live.published_since(start)["send_result"]):
            assert time.monotonic() < deadline, "no bounce reached mail serve within 60 s"
            time.sleep(0.5)
    [record] = published
    assert (record["email"], record["campaign_id"], record["meta"]) == (
        recipient, "camp-postfix", "meta-postfix")
    assert (record["smtp_code"], record["enhanced_code"]) == (550, "5.1.1")
    assert live.metric("bouncewire_mail_messages_total", kind="bounce") == 1
