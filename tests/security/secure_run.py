"""One end-to-end run over SASL_SSL that touches every place a secret could leak: the CLI
producer (with a bad line holding an address), a real `bouncewire receiver` answering one
partial success (its body echoes an address into a dead letter), `bouncewire consume` at
debug level with token-bearing callback URLs, its metrics and health pages, runs with a
wrong password and an untrusted CA, the dead-letter headers, and the reprs and messages of
the objects the code builds from such settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer
from prometheus_client import CollectorRegistry

from bouncewire.consumers.batching import Batch
from bouncewire.consumers.delivery import RetryPolicy, build_http_client
from bouncewire.consumers.metrics import ConsumerMetrics
from bouncewire.consumers.payloads import CallbackEvent, EventRef
from bouncewire.consumers.pipeline import CallbackPipeline, PipelineConfig
from bouncewire.kafka_client import (
    KafkaClientError,
    KafkaConsumer,
    KafkaProducer,
    KafkaSettings,
    Secret,
    TopicNames,
    wait_for_broker,
)
from bouncewire.producers import EventPublisher
from bouncewire.schemas import Codec, SchemaStore
from reliability.support import free_port, wait_until
from tests.security.conftest import PipelineRun, SecureKafka

BW = [sys.executable, "-m", "bouncewire"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEWIRE_")}
    return {**env, **extra}


def make_secrets(tmp: Path, kafka: SecureKafka) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    wrong = tmp / "wrong.password"
    wrong.write_text(f"wrong-{tag}-pw\n")
    return {
        "token": f"tok{tag}Z9",
        "unsubscribe_token": f"utk{tag}Q7",
        "account_path": f"acct-{tag}",
        "sasl_password": kafka.password,
        "wrong_password": wrong.read_text().strip(),
        **{f"email_{n}": f"{n}.{tag}+scan@example.com"
           for n in ("alice", "bob", "carol", "dave", "erin")},
    }


def write_inputs(tmp: Path, s: dict[str, str]) -> tuple[Path, Path]:
    bounces = tmp / "send-results.jsonl"
    lines = [{"email": s["email_alice"], "smtp_code": 550, "enhanced_code": "5.1.1",
              "smtp_message": f"550 5.1.1 <{s['email_alice']}>: user unknown"},
             {"email": s["email_bob"], "smtp_code": 452, "enhanced_code": "4.2.2"},
             {"email": s["email_dave"], "smtp_code": 250},
             {"email": s["email_carol"], "smtp_code": "not-a-code"}]  # a bad line
    bounces.write_text("".join(json.dumps(line) + "\n" for line in lines))
    unsubscribes = tmp / "unsubscribes.jsonl"
    unsubscribes.write_text(json.dumps({"email": s["email_erin"]}) + "\n")
    return bounces, unsubscribes


def topic_flags(topics: TopicNames) -> list[str]:
    return ["--send-results-topic", topics.send_results, "--unsubscribes-topic",
            topics.unsubscribes, "--dlq-topic", topics.dlq]


def run_cli(argv: list[str], env: dict[str, str], timeout: float = 60,
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BW, *argv], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 -- loopback
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:
        return str(exc.read().decode())
    except OSError as exc:
        return f"unreachable: {exc}"


def produce_inputs(kafka: SecureKafka, topics: TopicNames, s: dict[str, str],
                   inputs: tuple[Path, Path], art: dict[str, str]) -> None:
    # The password through the environment here, through a file everywhere else.
    env = clean_env(BOUNCEWIRE_SASL_PASSWORD=s["sasl_password"])
    no_file = [f for f in kafka.flags() if f not in ("--sasl-password-file",
                                                      str(kafka.password_file))]
    for kind, path in zip(("send-results", "unsubscribes"), inputs, strict=True):
        done = run_cli(["produce", kind, str(path), "--log-level", "debug", *no_file,
                        *topic_flags(topics)], env)
        art[f"produce {kind} stderr"] = done.stderr + done.stdout
        assert done.returncode in (0, 1), done.stderr  # 1: the bad line was rejected


def start_receiver(tmp: Path) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    receiver = subprocess.Popen(
        [*BW, "receiver", "--port", str(port), "--partial-unprocessed", "1", "--fail-count", "1"],
        env=clean_env(), stdout=(tmp / "receiver.out").open("w"), stderr=subprocess.STDOUT,
        text=True)
    assert wait_until(lambda: fetch(f"http://127.0.0.1:{port}/_stats").startswith("{"), 20)
    return receiver, port


def run_consumer(kafka: SecureKafka, topics: TopicNames, s: dict[str, str], port: int,
                 tmp: Path, art: dict[str, str]) -> tuple[int, dict[str, Any]]:
    base = f"http://127.0.0.1:{port}/{s['account_path']}"
    metrics_port = free_port()
    argv = [*BW, "consume", *kafka.flags(), *topic_flags(topics), "--log-level", "debug",
            "--group-id", f"sec-{uuid.uuid4().hex[:6]}", "--metrics-port", str(metrics_port),
            "--bounce-callback-url", f"{base}/bounce?token={s['token']}",
            "--unsubscribe-callback-url", f"{base}/unsub?key={s['unsubscribe_token']}",
            "--linger-ms", "200"]
    log = tmp / "consume.err"
    consumer = subprocess.Popen(argv, env=clean_env(), stdout=subprocess.DEVNULL,
                                stderr=log.open("w"))
    stats_url = f"http://127.0.0.1:{port}/_stats"

    def stats() -> dict[str, Any]:
        text = fetch(stats_url)
        return dict(json.loads(text)) if text.startswith("{") else {}

    try:
        wait_until(lambda: stats().get("unique_events", 0) >= 2
                   and stats().get("unprocessed_events", 0) >= 1, 60, 0.3)
        wait_until(lambda: "bouncewire_dead_letters_total{reason=\"partial_unprocessed\"} 1.0"
                   in fetch(f"http://127.0.0.1:{metrics_port}/metrics"), 30, 0.3)
        for page in ("metrics", "healthz", "readyz"):
            art[f"consumer /{page}"] = fetch(f"http://127.0.0.1:{metrics_port}/{page}")
        consumer.send_signal(signal.SIGTERM)
        exit_code = consumer.wait(60)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait(10)
    art["consume stderr"] = log.read_text()
    return exit_code, stats()


def bad_credential_runs(kafka: SecureKafka, topics: TopicNames, tmp: Path,
                        art: dict[str, str]) -> None:
    """A wrong password and an untrusted CA, for the producer and (briefly) the consumer."""
    other_ca = untrusted_ca(tmp)
    wrong = tmp / "wrong.password"
    for name, flags in (("wrong password", kafka.flags(password_file=wrong)),
                        ("untrusted CA", kafka.flags(ca=str(other_ca)))):
        done = run_cli(["produce", "send-results", str(tmp / "send-results.jsonl"),
                        "--broker-timeout", "5", *flags, *topic_flags(topics)], clean_env())
        art[f"produce with {name}"] = done.stderr + done.stdout
    consumer = subprocess.Popen(
        [*BW, "consume", *kafka.flags(password_file=wrong), *topic_flags(topics),
         "--bounce-callback-url", "http://127.0.0.1:9/x", "--unsubscribe-callback-url",
         "http://127.0.0.1:9/x"], env=clean_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    try:
        _, err = consumer.communicate(timeout=8)
    except subprocess.TimeoutExpired:
        consumer.send_signal(signal.SIGTERM)
        _, err = consumer.communicate(timeout=30)
    art["consume with wrong password"] = err


def untrusted_ca(tmp: Path) -> Path:
    """A CA certificate that did not sign the broker's certificate."""
    key, cert = tmp / "other-ca.key", tmp / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=not the broker's CA", "-keyout", str(key), "-out", str(cert)],
                   capture_output=True, check=True, timeout=60)
    return cert


def dead_letter_headers(kafka: SecureKafka, topics: TopicNames) -> list[str]:
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap, security_protocol="SASL_SSL",
                             sasl_mechanism="SCRAM-SHA-512", sasl_username=kafka.username,
                             sasl_password=Secret(kafka.password),
                             ssl_ca_location=kafka.ca_location)
    consumer = Consumer({**settings.as_librdkafka(), "group.id": f"r-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topics.dlq])
    found: list[str] = []
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline and not found:
            found += [repr(m.headers()) for m in consumer.consume(10, 1.0) if m.error() is None]
    finally:
        consumer.close()
    return found


def object_reprs(kafka: SecureKafka, s: dict[str, str]) -> dict[str, str]:
    """reprs of the config and runtime objects built from secret-bearing settings, and the
    messages of the errors they raise."""
    url = Secret(f"http://127.0.0.1:9/{s['account_path']}/bounce?token={s['token']}")
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap, security_protocol="SASL_SSL",
                             sasl_mechanism="SCRAM-SHA-512", sasl_username=kafka.username,
                             sasl_password=Secret(s["sasl_password"]),
                             ssl_ca_location=kafka.ca_location)
    config = PipelineConfig(bounce_url=url, unsubscribe_url=url,
                            retry=RetryPolicy(request_timeout_s=1))
    pipeline = CallbackPipeline(config, KafkaConsumer(settings, "g"), KafkaProducer(settings),
                                Codec(SchemaStore.load()), build_http_client(config.retry),
                                ConsumerMetrics.create(CollectorRegistry()))
    event = CallbackEvent("id-1", "hardbounce", s["email_alice"], 1, f"meta {s['email_bob']}",
                          EventRef("t", 0, 1), 1000)
    batch = Batch("bounce", [event], [event.ref], 10, 0.0)
    pipeline.senders["bounce"].submit(batch)  # a batch in the sender's queue, never sent
    reprs = {f"repr pipeline.{k}": repr(v) for k, v in vars(pipeline).items()}
    reprs.update({"repr settings": repr(settings), "str secret": str(url),
                  "repr config": repr(config), "repr event": repr(event),
                  "repr batch": repr(batch), "repr publisher": repr(EventPublisher(
                      KafkaProducer(settings), Codec(SchemaStore.load()), TopicNames()))})
    reprs.update(error_messages(settings, s))
    return reprs


def error_messages(settings: KafkaSettings, s: dict[str, str]) -> dict[str, str]:
    wrong = KafkaSettings(bootstrap_servers=settings.bootstrap_servers,
                          security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                          sasl_username=settings.sasl_username,
                          sasl_password=Secret(s["wrong_password"]),
                          ssl_ca_location=settings.ssl_ca_location)
    try:
        wait_for_broker(wrong, timeout=3)
    except KafkaClientError as exc:
        return {"error wait_for_broker": f"{exc!s} {exc!r} {exc.__cause__!r}"}
    return {"error wait_for_broker": "no error raised"}


def full_run(kafka: SecureKafka, tmp: Path) -> PipelineRun:
    secrets = make_secrets(tmp, kafka)
    tag = uuid.uuid4().hex[:8]
    topics = TopicNames(f"sec-sr-{tag}", f"sec-un-{tag}", f"sec-dlq-{tag}")
    art: dict[str, str] = {}
    created = run_cli(["topics", "create", "--partitions", "1", *kafka.flags(),
                       *topic_flags(topics)], clean_env())
    art["topics create"] = created.stderr + created.stdout
    assert created.returncode == 0, created.stderr
    inputs = write_inputs(tmp, secrets)
    receiver, port = start_receiver(tmp)
    try:
        produce_inputs(kafka, topics, secrets, inputs, art)
        exit_code, stats = run_consumer(kafka, topics, secrets, port, tmp, art)
    finally:
        receiver.send_signal(signal.SIGINT)
        receiver.wait(20)
    art["receiver output"] = (tmp / "receiver.out").read_text()
    headers = dead_letter_headers(kafka, topics)
    art["dead-letter headers"] = "\n".join(headers)
    bad_credential_runs(kafka, topics, tmp, art)
    art.update(object_reprs(kafka, secrets))
    return PipelineRun(secrets, art, stats, exit_code, len(headers))
