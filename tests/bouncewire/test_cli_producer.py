"""The producer side of the CLI as users run it: real processes, the real broker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from bouncewire.kafka_client import TopicNames
from tests.consumers.pipeline_harness import read_all
from tests.schemas.schema_helpers import spec_read_single_object

pytestmark = pytest.mark.integration

SEND_RESULTS = [
    {"email": "Hard.Person@Example.com", "ts": 1435322805, "smtp_code": 550,
     "enhanced_code": "5.1.1", "smtp_message": "550 5.1.1 The email account does not exist.",
     "message_id": "<m1@mta>", "campaign_id": "c-1", "meta": "ct-meta-1",
     "remote_mta": "mx.example.com"},
    {"email": "soft@example.com", "ts": "2015-06-26T12:46:45Z", "smtp_code": 452,
     "enhanced_code": "4.2.2", "smtp_message": "mailbox full"},
    {"email": "nobody@@example.com", "error": "timeout"},
]


def run_cli(
    *args: str, stdin: bytes = b"", timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "bouncewire", *args], input=stdin,
                          capture_output=True, timeout=timeout, check=False)


def topic_flags(bootstrap: str, topics: TopicNames) -> list[str]:
    return ["--bootstrap-servers", bootstrap, "--send-results-topic", topics.send_results,
            "--unsubscribes-topic", topics.unsubscribes, "--dlq-topic", topics.dlq]


@pytest.fixture
def topics(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> TopicNames:
    topics = TopicNames(unique_name("sr"), unique_name("un"), unique_name("dlq"))
    created = run_cli("topics", "create", "--partitions", "3",
                      *topic_flags(kafka_bootstrap, topics))
    assert created.returncode == 0, created.stderr
    assert created.stdout.decode().count("created") == 3
    again = run_cli("topics", "create", *topic_flags(kafka_bootstrap, topics))
    assert again.returncode == 0 and again.stdout.decode().count("exists") == 3
    return topics


def test_json_lines_read_back_with_only_fastavro_and_the_avsc_files(
    kafka_bootstrap: str, topics: TopicNames, tmp_path: Path
) -> None:
    lines = tmp_path / "results.jsonl"
    lines.write_bytes(b"\n".join(orjson.dumps(r) for r in SEND_RESULTS) + b"\n")
    done = run_cli("produce", "send-results", str(lines), *topic_flags(kafka_bootstrap, topics))
    assert done.returncode == 0, done.stderr
    assert b"published 3" in done.stderr
    records = read_all(kafka_bootstrap, topics.send_results, 3)
    decoded = {r.key(): (r, spec_read_single_object(r.value())) for r in records}
    assert set(decoded) == {b"hard.person@example.com", b"soft@example.com",
                            b"nobody@@example.com"}
    msg, hard = decoded[b"hard.person@example.com"]
    assert msg.timestamp()[1] == 1435322805000  # record timestamp = event time
    for field in ("email", "smtp_code", "enhanced_code", "smtp_message", "message_id",
                  "campaign_id", "meta", "remote_mta"):
        assert hard[field] == SEND_RESULTS[0][field]
    _, soft = decoded[b"soft@example.com"]
    assert soft["smtp_code"] == 452 and soft["error"] is None
    _, timeout = decoded[b"nobody@@example.com"]
    assert timeout["error"] == "timeout" and timeout["smtp_code"] is None


def test_bad_lines_are_reported_by_number_and_the_rest_published(
    kafka_bootstrap: str, topics: TopicNames
) -> None:
    stdin = b"\n".join([
        b'{"email": "u1@example.com"}',
        b'{"email": "u2@@example.com"}',
        b"not json",
        b'{"email": "u3@example.com", "source": "one_click"}',
    ])
    done = run_cli("produce", "unsubscribes", "-", *topic_flags(kafka_bootstrap, topics),
                   stdin=stdin)
    assert done.returncode == 1
    err = done.stderr.decode()
    assert "line 2: email" in err and "line 3: not valid JSON" in err
    assert "u2@@example.com" not in err
    records = read_all(kafka_bootstrap, topics.unsubscribes, 2)
    assert sorted(r.key() for r in records) == [b"u1@example.com", b"u3@example.com"]


def test_unreachable_broker_fails_fast_with_a_clear_error() -> None:
    started = time.monotonic()
    done = run_cli("produce", "send-results", "-", "--bootstrap-servers", "127.0.0.1:1",
                   "--broker-timeout", "3", stdin=orjson.dumps(SEND_RESULTS[0]))
    assert done.returncode == 2
    assert b"no broker of 127.0.0.1:1 answered" in done.stderr
    assert b"nothing published" in done.stderr
    assert time.monotonic() - started < 30


def test_classify_prints_one_object_per_line() -> None:
    stdin = b"\n".join(orjson.dumps(r) for r in SEND_RESULTS) + b"\n{oops\n"
    done = run_cli("classify", stdin=stdin)
    assert done.returncode == 1
    out = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [(o.get("bounce"), o.get("error_class")) for o in out[:3]] == [
        ("hard", "invalid_email_id"), ("soft", "dispatching_failed"),
        ("hard", "invalid_email_id")]
    assert out[3]["line"] == 4 and "error" in out[3]


def test_simulate_publishes_both_kinds(kafka_bootstrap: str, topics: TopicNames) -> None:
    done = run_cli("simulate", "--rate", "400", "--duration", "2",
                   *topic_flags(kafka_bootstrap, topics))
    assert done.returncode == 0, done.stderr
    results = read_all(kafka_bootstrap, topics.send_results, 500)
    unsubs = read_all(kafka_bootstrap, topics.unsubscribes, 5)
    assert len(results) >= 500 and len(unsubs) >= 5


def test_every_flag_reads_its_environment_variable(kafka_bootstrap: str) -> None:
    env_run = subprocess.run(
        [sys.executable, "-m", "bouncewire", "produce", "send-results", "-"],
        input=b"", capture_output=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "BOUNCEWIRE_BOOTSTRAP_SERVERS": "127.0.0.1:1",
             "BOUNCEWIRE_BROKER_TIMEOUT": "2"})
    assert env_run.returncode == 2 and b"127.0.0.1:1" in env_run.stderr
