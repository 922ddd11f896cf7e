"""`mail serve` throughput: bounce messages per second, the broker acknowledging each one.

A real `bouncewire mail serve` process on loopback; client processes act as sending MTAs, each
holding one SMTP session and sending its share of DSNs (to signed VERP addresses) one after the
other, as an MTA reuses a connection. Every 250 means that message's send result was
acknowledged by the broker: the rate is of acknowledged messages, first to last.

    python -m bench.mail_serve_bench --bootstrap HOST:PORT [--messages 2000] [--clients 4]
"""

# ruff: noqa: S603 -- the bench starts its own helper processes with fixed argv lists

from __future__ import annotations

import argparse
import os
import smtplib
import socket
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson

from bench.common import BenchEnv, bouncewire, process_cpu_seconds
from bouncewire.producers.signed_addresses import signed_address
from bouncewire.producers.unsubscribe.tokens import Claims, Keyring
from reliability.support import free_port, wait_until

DOMAIN = "bounces.bench.test"
KEYS = "b1:" + "bench-mail-secret-" + "b" * 16
_DSN = """\
From: MAILER-DAEMON@mta.bench.test (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
Message-ID: <bench-{n}@mta.bench.test>
Date: Thu, 04 Dec 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

This is the mail system at host mta.bench.test. Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mta.bench.test

Final-Recipient: rfc822; {rcpt}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.recipient.bench.test
Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown

--B
Content-Type: text/rfc822-headers

From: news@sender.bench.test
To: {rcpt}
Subject: News
Message-ID: <orig-{n}@sender.bench.test>

--B--
"""


def _messages(first: int, count: int) -> list[tuple[str, bytes]]:
    keyring = Keyring.parse(KEYS)
    out = []
    for n in range(first, first + count):
        rcpt = f"user{n}@recipient.bench.test"
        to = signed_address(keyring, Claims(rcpt, "bench-campaign"), DOMAIN, "bounce")
        raw = _DSN.format(to=to, rcpt=rcpt, n=n).replace("\n", "\r\n").encode()
        out.append((to, raw))
    return out


def _client(port: int, first: int, count: int) -> tuple[float, float, int]:
    """One MTA: builds its messages, then sends them over one session; (start, end, 250s)."""
    batch = _messages(first, count)
    accepted = 0
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
        started = time.time()
        for to, raw in batch:
            smtp.sendmail("", [to], raw)  # raises on anything but 250
            accepted += 1
        return started, time.time(), accepted


def _listening(port: int) -> bool:
    with closing(socket.socket()) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run(env: BenchEnv, messages: int, clients: int = 8) -> dict[str, Any]:
    send_results, unsubscribes = env.topic("mail-send-results"), env.topic("mail-unsubscribes")
    env.create(send_results, unsubscribes)
    port = free_port()
    argv = bouncewire(
        "mail", "serve", "--port", str(port), "--domain", DOMAIN,
        "--bootstrap-servers", env.bootstrap, "--send-results-topic", send_results,
        "--unsubscribes-topic", unsubscribes, "--log-level", "warning",
    )  # fmt: skip
    server_env = {**os.environ, "BOUNCEWIRE_UNSUBSCRIBE_SECRET": KEYS}
    with subprocess.Popen(argv, env=server_env, stderr=env.log_file("mail_serve.log")) as server:
        try:
            if not wait_until(lambda: _listening(port), 60):
                raise RuntimeError("mail serve did not start; see logs/mail_serve.log")
            return _measure(port, server.pid, messages, clients)
        finally:
            server.terminate()
            server.wait(30)


def _measure(port: int, pid: int, messages: int, clients: int) -> dict[str, Any]:
    share = messages // clients
    cpu_before = process_cpu_seconds(pid)
    with ProcessPoolExecutor(clients) as pool:
        futures = [pool.submit(_client, port, i * share, share) for i in range(clients)]
        done = [f.result() for f in futures]
    cpu = process_cpu_seconds(pid) - cpu_before
    accepted = sum(n for _, _, n in done)
    seconds = max(end for _, end, _ in done) - min(start for start, _, _ in done)
    return {
        "records": accepted,  # messages, each answered 250 after its acknowledgement
        "clients": clients,
        "seconds": round(seconds, 3),
        "rate": accepted / seconds,
        "cpu_seconds": round(cpu, 3),  # the server process's
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--prefix", default=f"mail-bench-{os.getpid()}")
    p.add_argument("--out", type=Path, default=Path("bench-results"))
    args = p.parse_args()
    env = BenchEnv(args.bootstrap, args.out, prefix=args.prefix)
    print(orjson.dumps(run(env, args.messages, args.clients)).decode())


if __name__ == "__main__":
    main()
