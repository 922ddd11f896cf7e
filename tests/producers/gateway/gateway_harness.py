"""A real `bouncewire smtp-gateway` process between real clients and a scripted upstream.

`running_gateway` starts the CLI (its log captured to a file for the secret scan), waits for
its greeting, and stops it with SIGTERM. `ResultTopic` reads back what reached Kafka.
`swaks` runs the Debian client and splits its transcript into the server's replies.
"""

from __future__ import annotations

import os
import re
import shutil
import smtplib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bouncewire._process import running_process
from bouncewire.kafka_client import KafkaSettings, create_topics
from bouncewire.schemas import Codec, SchemaStore
from tests.kafka_cluster import end_offset, values_since
from tests.producers.smtp_server import SelfSignedCert, free_port

USER = "clevertap"
PASSWORD = "gw-Pa55-word-never-in-logs"
SENDER = "news@shop.example.com"
SWAKS = shutil.which("swaks")


@dataclass
class ResultTopic:
    """A one-partition send-results topic; `since(offset)` reads what landed after it."""

    bootstrap: str
    name: str
    codec: Codec = field(default_factory=lambda: Codec(SchemaStore.load()))

    @classmethod
    def create(cls, bootstrap: str) -> ResultTopic:
        name = f"gateway-{uuid.uuid4().hex[:8]}"
        create_topics(KafkaSettings(bootstrap_servers=bootstrap), [name], partitions=1)
        return cls(bootstrap, name)

    def end(self) -> int:
        return end_offset(self.bootstrap, self.name)

    def since(self, start: int) -> list[dict[str, Any]]:
        values = values_since(self.bootstrap, self.name, start)
        return [self.codec.decode(value).record for value in values]


def make_users_file(path: Path, user: str = USER, password: str = PASSWORD) -> Path:
    """Through the real command, password on stdin."""
    subprocess.run(
        [sys.executable, "-m", "bouncewire", "smtp-gateway-user", user, "--users-file", str(path)],
        input=password + "\n", text=True, check=True, capture_output=True, timeout=60,
    )
    return path


@dataclass
class LiveGateway:
    port: int
    implicit_tls_port: int
    metrics_port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_gateway(
    tmp: Path, *, bootstrap: str, topic: str, upstream_port: int, cert: SelfSignedCert,
    users_file: Path, extra: tuple[str, ...] = (), env: dict[str, str] | None = None,
) -> Iterator[LiveGateway]:
    port, implicit, metrics = free_port(), free_port(), free_port()
    log_path = tmp / f"gateway-{port}.log"
    argv = [
        sys.executable, "-m", "bouncewire", "smtp-gateway",
        "--port", str(port), "--implicit-tls-port", str(implicit),
        "--metrics-port", str(metrics), "--hostname", "gateway.test",
        "--tls-cert", str(cert.certfile), "--tls-key", str(cert.keyfile),
        "--users-file", str(users_file),
        "--upstream", f"127.0.0.1:{upstream_port}", "--upstream-security", "none",
        "--upstream-timeout", "1", "--publish-timeout", "3",
        "--bootstrap-servers", bootstrap, "--send-results-topic", topic,
        "--log-level", "debug", *extra,
    ]
    with (open(log_path, "wb") as log,
          running_process(argv, stop_timeout_s=15, stdout=log, stderr=subprocess.STDOUT,
                          env={**os.environ, **(env or {})}) as process):
        wait_for_greeting(port, process, log_path)
        yield LiveGateway(port, implicit, metrics, log_path, process)


def wait_for_greeting(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("gateway exited:\n" + log_path.read_text(errors="replace"))
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=2) as client:
                client.noop()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("gateway did not greet within 30 s")


@dataclass
class SwaksRun:
    returncode: int
    transcript: str

    def replies(self) -> list[str]:
        """The server's reply lines, in order ("250 2.1.5 OK"), TLS or not."""
        return [m[1] for m in re.finditer(r"^ *<[~-][* ] (.*)$", self.transcript, re.MULTILINE)]

    def reply_to(self, command: str) -> str:
        """The last line of the reply that followed the client's `command` line."""
        lines = self.transcript.splitlines()
        for index, line in enumerate(lines):
            if re.match(rf"^ *[~-]> {re.escape(command)}", line):
                for after in lines[index + 1:]:
                    found = re.match(r"^ *<[~-][* ] (\d{3} .*)$", after)
                    if found:
                        return found[1]
        raise AssertionError(f"no reply to {command!r} in:\n{self.transcript}")


def swaks(port: int, *args: str, timeout: float = 60) -> SwaksRun:
    assert SWAKS is not None, "swaks is not installed (make install-tools)"
    done = subprocess.run(
        [SWAKS, "--server", "127.0.0.1", "--port", str(port), "--helo", "clevertap.test",
         "--from", SENDER, "--timeout", "20", *args],
        capture_output=True, text=True, timeout=timeout,
    )
    return SwaksRun(done.returncode, done.stdout + done.stderr)


def auth_args(mechanism: str = "PLAIN", password: str = PASSWORD) -> tuple[str, ...]:
    return ("--auth", mechanism, "--auth-user", USER, "--auth-password", password)
