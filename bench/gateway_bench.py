"""The SMTP gateway's row: messages/s through `bouncewire smtp-gateway` to a local upstream,
and the latency it adds to a transaction compared with sending to that upstream directly.

    python -m bench.gateway_bench --bootstrap HOST:PORT [--messages 2000]   # alone
    python -m bench.gateway_bench upstream PORT                            # (the upstream)

A transaction is timed from MAIL FROM to the DATA reply (smtplib `send_message`) on a
connection already open and authenticated: through the gateway that is STARTTLS'd client
traffic, a relay step per command and one Kafka acknowledgement before the DATA reply.
The upstream (an aiosmtpd server accepting everything) runs in a process of its own. The
serial rows take turns in chunks (direct, gateway, direct, ...) so the machine's slow spells
fall on both.
"""

# ruff: noqa: S603 -- the bench starts its own helper processes with fixed argv lists

from __future__ import annotations

import argparse
import secrets
import shutil
import signal
import smtplib
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from bench.common import PYTHON, BenchEnv, python_module
from bouncewire._process import running_process
from reliability.support import free_port, wait_until

USER = "bench"
CONNECTIONS = 4  # the parallel run: CleverTap sends over several connections at once
ROUNDS = 10  # the serial rows take turns in this many chunks


def _message(index: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "news@bench.example.com"
    message["To"] = f"user{index}@mail.example.org"
    message["Subject"] = "bench"
    message["X-CleverTap_META"] = f"meta-{index}"
    # Unique like every real send: the gateway answers a repeat of the same bytes unrelayed.
    message["Message-ID"] = make_msgid(domain="bench.example.com")
    message.set_content("x" * 2000)  # a small campaign mail's size
    return message


def _timed(client: smtplib.SMTP, count: int, offset: int = 0) -> list[float]:
    """Per-transaction seconds for `count` messages on one open connection."""
    times = []
    for index in range(offset, offset + count):
        message = _message(index)
        started = time.perf_counter()
        client.send_message(message)
        times.append(time.perf_counter() - started)
    return times


def _gateway_client(port: int, password: str) -> smtplib.SMTP:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    client = smtplib.SMTP("127.0.0.1", port, timeout=30)
    client.starttls(context=context)
    client.login(USER, password)
    return client


def _summary(times: list[float], wall: float) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    return {
        "messages": len(ms),
        "rate": len(ms) / wall,
        "p50_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        "max_ms": ms[-1],
    }


def _run(connect: Callable[[], smtplib.SMTP], count: int, connections: int) -> dict[str, float]:
    """`count` messages over `connections` connections at once (each sequential)."""
    clients = [connect() for _ in range(connections)]
    per = count // connections
    times: list[list[float]] = [[] for _ in clients]
    threads = [
        threading.Thread(target=lambda i=i: times[i].extend(_timed(clients[i], per, i * per)))
        for i in range(connections)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    for client in clients:
        client.quit()
    return _summary([t for chunk in times for t in chunk], wall)


def _interleaved(
    connect: dict[str, Callable[[], smtplib.SMTP]], count: int, rounds: int = ROUNDS
) -> dict[str, dict[str, float]]:
    """`count` messages on one connection per path, the paths taking turns in `rounds`
    chunks: a slow spell of the machine then falls on both alike, not on one row's p99."""
    clients = {name: make() for name, make in connect.items()}
    times: dict[str, list[float]] = {name: [] for name in clients}
    walls = dict.fromkeys(clients, 0.0)
    per = max(count // rounds, 1)
    for round_ in range(rounds):
        for name, client in clients.items():
            started = time.perf_counter()
            times[name].extend(_timed(client, per, round_ * per))
            walls[name] += time.perf_counter() - started
    for client in clients.values():
        client.quit()
    return {name: _summary(times[name], walls[name]) for name in clients}


def _answers(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=2) as client:
            client.noop()
        return True
    except OSError:
        return False


def _certificate(directory: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    assert openssl is not None, "the gateway bench needs openssl for a certificate"
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def gateway_bench(env: BenchEnv, topic: str, messages: int) -> dict[str, Any]:
    from bouncewire.producers.gateway.users import set_user

    upstream_port, gateway_port = free_port(), free_port()
    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as tmp, env.log_file("gateway.log") as log:
        cert, key = _certificate(Path(tmp))
        set_user(Path(tmp) / "users", USER, password)
        upstream = python_module("bench.gateway_bench") + ["upstream", str(upstream_port)]
        gateway = [
            PYTHON, "-m", "bouncewire", "smtp-gateway", "--port", str(gateway_port),
            "--tls-cert", str(cert), "--tls-key", str(key), "--users-file", f"{tmp}/users",
            "--upstream", f"127.0.0.1:{upstream_port}", "--upstream-security", "none",
            "--bootstrap-servers", env.bootstrap, "--send-results-topic", topic,
            "--log-level", "warning",
        ]  # fmt: skip
        with (
            running_process(upstream, stdout=log, stderr=subprocess.STDOUT),
            running_process(gateway, stdout=log, stderr=subprocess.STDOUT),
        ):
            assert wait_until(lambda: _answers(upstream_port), timeout=30, interval=0.2)
            assert wait_until(lambda: _answers(gateway_port), timeout=30, interval=0.2)
            direct = lambda: smtplib.SMTP("127.0.0.1", upstream_port, timeout=30)  # noqa: E731
            through = lambda: _gateway_client(gateway_port, password)  # noqa: E731
            _run(through, min(50, messages), 1)  # warm: connections, broker metadata
            results: dict[str, Any] = _interleaved({"direct": direct, "gateway": through}, messages)
            results |= {
                "direct_parallel": _run(direct, messages, CONNECTIONS),
                "gateway_parallel": _run(through, messages, CONNECTIONS),
            }
    results["added_p99_ms"] = results["gateway"]["p99_ms"] - results["direct"]["p99_ms"]
    results["added_p50_ms"] = results["gateway"]["p50_ms"] - results["direct"]["p50_ms"]
    results["connections"] = CONNECTIONS
    return results


def serve_upstream(port: int) -> None:
    """An upstream accepting everything, until SIGTERM."""
    from aiosmtpd.controller import Controller

    class Accept:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            return "250 2.0.0 Ok: queued"

    controller = Controller(Accept(), hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["upstream"]:
        serve_upstream(int(args[1]))
        return 0
    p = argparse.ArgumentParser(description="smtp-gateway bench, alone")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--out", type=Path, default=Path("bench-results"))
    parsed = p.parse_args(args)
    env = BenchEnv(parsed.bootstrap, parsed.out, prefix=f"gw-bench-{secrets.token_hex(3)}")
    env.create(env.topic("gateway"))
    print(gateway_bench(env, env.topic("gateway"), parsed.messages))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
