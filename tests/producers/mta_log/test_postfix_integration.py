"""A real Postfix relaying to a scripted internet; its real `maillog_file` read by
`bouncewire mta-log postfix --follow --checkpoint` into the real broker. Every final attempt
arrives once with the right verdict, across a restart (mail logged while the reader was down)
and a `postfix logrotate` (rename, then the old file gzipped) in the middle."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from bouncewire.kafka_client import KafkaSettings, create_topics
from bouncewire.schemas import Codec, SchemaStore
from bouncewire.schemas.classification import classify
from tests.producers.mta_log.postfix_harness import (
    QUEUE_LIFETIME_S,
    Postfix,
    internet,
    postfix_usable,
    throwaway_postfix,
)
from tests.producers.smtp_server import free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(postfix_usable() is not None, reason=str(postfix_usable())),
]

WAIT_S = 30.0
SENDER = "news@shop.test"


class Topic:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.name = f"mta-log-{uuid.uuid4().hex[:8]}"
        create_topics(KafkaSettings(bootstrap_servers=bootstrap), [self.name], partitions=1)
        self.codec = Codec(SchemaStore.load())

    def records(self, until: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        """Everything on the topic once `until` holds (bounded wait), plus a last look for
        anything more (a duplicate would show up there)."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "unused",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition(self.name, 0, 0)])
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + WAIT_S
        try:
            while not until(found) and time.monotonic() < deadline:
                found.extend(self._decode(consumer.consume(100, 0.5)))
            found.extend(self._decode(consumer.consume(100, 1.0)))
        finally:
            consumer.close()
        return found

    def _decode(self, messages: list[Any]) -> list[dict[str, Any]]:
        return [self.codec.decode(m.value()).record for m in messages if m.error() is None]


class Reader:
    """`bouncewire mta-log postfix --follow` as a process."""

    def __init__(self, postfix: Postfix, topic: Topic, checkpoint: Path) -> None:
        self.metrics_port = free_port()
        self.argv = [
            sys.executable, "-m", "bouncewire", "mta-log", "postfix", str(postfix.maillog),
            "--follow", "--checkpoint", str(checkpoint), "--poll-interval", "0.1",
            "--flush-interval", "0.2", "--metrics-port", str(self.metrics_port),
            "--bootstrap-servers", topic.bootstrap, "--send-results-topic", topic.name,
            "--strict",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, stderr=subprocess.PIPE)  # noqa: S603

    def stop(self) -> str:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=WAIT_S)
        assert self.process.returncode == 0, err.decode()
        return err.decode()

    def metrics(self) -> str:
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics").text
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def send(postfix: Postfix, message_id: str, *recipients: str) -> None:
    subprocess.run(  # noqa: S603
        ["swaks", "--server", "127.0.0.1", "--port", str(postfix.smtpd_port),  # noqa: S607
         "--from", SENDER, "--to", ",".join(recipients), "--header",
         f"Message-Id: {message_id}", "--timeout", "10"],
        check=True, capture_output=True, timeout=WAIT_S,
    )


def emails(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(r["email"] for r in records)


@pytest.fixture
def stack(kafka_bootstrap: str) -> Iterator[tuple[Postfix, Topic]]:
    topic = Topic(kafka_bootstrap)
    relay_port, closed_port, smtpd_port = free_port(), free_port(), free_port()
    with internet(relay_port), throwaway_postfix(smtpd_port, relay_port, "refused.test",
                                                 closed_port) as postfix:
        yield postfix, topic


def test_every_final_attempt_reaches_kafka_once_across_restart_and_rotation(
    stack: tuple[Postfix, Topic], tmp_path: Path
) -> None:
    postfix, topic = stack
    reader = Reader(postfix, topic, tmp_path / "checkpoint.json")
    reader.start()
    send(postfix, "<a1@shop.test>", "ok1@accept.test", "nouser@accept.test",
         "grey@accept.test", "gone@refused.test")
    first = topic.records(lambda found: {"ok1@accept.test", "nouser@accept.test",
                                         "grey@accept.test"} <= set(emails(found)))
    assert "bouncewire_mta_log_attempts_total{status=\"deferred\"}" in reader.metrics()
    reader.stop()

    send(postfix, "<a2@shop.test>", "ok2@accept.test")  # logged while the reader is down
    time.sleep(1.0)
    reader.start()
    topic.records(lambda found: "ok2@accept.test" in emails(found))
    postfix.postfix("logrotate")  # rename to maillog.<date>, postlogd reopens, old one gzipped
    send(postfix, "<a3@shop.test>", "ok3@accept.test")
    expected = {"ok1@accept.test", "nouser@accept.test", "grey@accept.test",
                "gone@refused.test", "ok2@accept.test", "ok3@accept.test"}
    records = topic.records(lambda found: expected <= set(emails(found)))
    # The bounce Postfix sends our sender for the expired message is no result of ours.
    notified = _wait(lambda: _sample(reader.metrics(), "bouncewire_mta_log_lines_skipped_total",
                                     "own_notification") >= 1)
    reader.stop()

    assert emails(records) == Counter(expected), "each recipient's result exactly once"
    assert len({r["event_id"] for r in records}) == len(records)
    assert first == records[: len(first)]
    verdicts = {r["email"]: _verdict(r) for r in records}
    assert verdicts == {
        "ok1@accept.test": ("none", "delivered"),
        "ok2@accept.test": ("none", "delivered"),
        "ok3@accept.test": ("none", "delivered"),
        "grey@accept.test": ("none", "delivered"),  # deferred with 451 first: not published
        "nouser@accept.test": ("hard", "user_unknown"),
        "gone@refused.test": ("soft", "connection_refused"),  # expired after its deferrals
    }
    by_email = {r["email"]: r for r in records}
    assert by_email["nouser@accept.test"]["enhanced_code"] == "5.1.1"
    assert by_email["nouser@accept.test"]["remote_mta"] == "127.0.0.1"
    assert by_email["gone@refused.test"]["error"] == "connection_refused"
    assert {r["message_id"] for r in records} == {"<a1@shop.test>", "<a2@shop.test>",
                                                  "<a3@shop.test>"}
    assert notified
    assert list(postfix.directory.glob("maillog.*")), "postfix logrotate left no rotated file"


def _verdict(record: dict[str, Any]) -> tuple[str, str]:
    verdict = classify(record["email"], record["smtp_code"], record["enhanced_code"],
                       record["smtp_message"], record["error"])
    return verdict.bounce, verdict.reason


def _wait(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _sample(metrics: str, name: str, label: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name) and f'"{label}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


assert QUEUE_LIFETIME_S < WAIT_S / 2  # the expired result must arrive within the wait
