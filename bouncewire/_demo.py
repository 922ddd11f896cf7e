"""`bouncewire demo`: broker, topics, a stand-in CleverTap, the consumer and simulated traffic on
this machine for a while, then a summary. Leaves nothing running that it started."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bouncewire._demo_gateway import DemoGateway, demo_gateway
from bouncewire._process import running_process
from bouncewire._produce import build_codec
from bouncewire.kafka_client import KafkaProducer, KafkaSettings, TopicNames, create_topics
from bouncewire.producers import EventPublisher, TrafficGenerator, paced
from bouncewire.producers.events import PARSERS
from bouncewire.producers.gateway.traffic import GatewayTraffic
from bouncewire.receiver import CallbackReceiver

KAFKA_SH = Path(__file__).resolve().parents[1] / "deploy" / "kafka" / "kafka.sh"
DEMO_GROUP = "bouncewire-demo"
# Prometheus samples by (name, sorted labels).
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_broker() -> Iterator[str]:
    """The checkout's broker: reused when running, else started here and stopped at the end."""
    port = os.environ.get("KAFKA_PORT", "9092")
    running = subprocess.run(["bash", str(KAFKA_SH), "status"], capture_output=True).returncode == 0
    if not running:
        subprocess.run(["bash", str(KAFKA_SH), "up"], check=True, stdout=subprocess.DEVNULL)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        if not running:
            subprocess.run(["bash", str(KAFKA_SH), "down"], check=False)


@contextmanager
def consumer(
    bootstrap: str, bounce_url: str, unsubscribe_url: str, metrics_port: int
) -> Iterator[subprocess.Popen[bytes]]:
    argv = [
        sys.executable,
        "-m",
        "bouncewire",
        "consume",
        "--bootstrap-servers",
        bootstrap,
        "--group-id",
        DEMO_GROUP,
        "--bounce-callback-url",
        bounce_url,
        "--unsubscribe-callback-url",
        unsubscribe_url,
        "--metrics-port",
        str(metrics_port),
        "--log-level",
        "warning",
    ]
    with running_process(argv, stop_timeout_s=40) as proc:
        yield proc


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 -- our own loopback
            return int(resp.status), resp.read().decode()
    except OSError:
        return 0, ""


def _wait(predicate_url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _get(predicate_url)[0] == 200:
            return True
        time.sleep(0.5)
    return False


def _simulate(
    bootstrap: str, args: argparse.Namespace, gateway: DemoGateway | None = None
) -> dict[str, int]:
    """Publish the traffic; with `gateway`, send results go as mail through it instead."""
    counts = {"send_result": 0, "unsubscribe": 0}
    producer = KafkaProducer(KafkaSettings(bootstrap_servers=bootstrap))
    duration = args.seconds if args.seconds > 0 else float("inf")
    traffic = GatewayTraffic(gateway.login) if gateway is not None else None
    with EventPublisher(producer, build_codec(args), TopicNames()) as publisher:
        with suppress(KeyboardInterrupt):
            for chunk in paced(
                TrafficGenerator(seed=int(time.time())).events(), args.rate, duration
            ):
                now_ms = time.time_ns() // 1_000_000
                for event in chunk:
                    if traffic is not None and event.kind == "send_result":
                        traffic.submit(event)
                        continue
                    publisher.publish(event.kind, PARSERS[event.kind](event.fields, now_ms=now_ms))
                    counts[event.kind] += 1
    if traffic is not None and gateway is not None:
        traffic.close()
        # The gateway published one result per recipient it relayed (not the ones it refused
        # itself, such as a malformed address): its own count is what the consumer will read.
        samples = _metric_samples(gateway.metrics_url + "/metrics")
        counts["send_result"] = int(_total(samples, "bouncewire_gateway_recipients_total"))
        print(f"demo: through the gateway, client replies {dict(sorted(traffic.replies.items()))}")
    return counts


def _metric_samples(metrics_url: str) -> Samples:
    _status, text = _get(metrics_url)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        v for (n, lbl), v in samples.items() if n == name and labels.items() <= dict(lbl).items()
    )


def _caught_up(metrics_url: str, published: int, seconds: float) -> None:
    """Wait until every published event was read and every callback it asks for is done.

    Counters only: they move per batch, while gauges (pending events) refresh every few
    seconds and could report a stale zero.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples = _metric_samples(metrics_url)
        needed = (
            _total(samples, "bouncewire_send_results_total", bounce="hard")
            + _total(samples, "bouncewire_send_results_total", bounce="soft")
            + _total(samples, "bouncewire_events_consumed_total", event_type="unsubscribe")
        )
        done = _total(samples, "bouncewire_callback_events_total") + _total(
            samples, "bouncewire_dead_letters_total"
        )
        if _total(samples, "bouncewire_events_consumed_total") >= published and done >= needed:
            return
        time.sleep(0.5)


def summarize(
    published: dict[str, int],
    stats: dict[str, object],
    samples: Samples,
) -> str:
    results: dict[str, float] = {}
    for (name, labels), value in samples.items():
        if name == "bouncewire_send_results_total":
            key = dict(labels)["bounce"]
            results[key] = results.get(key, 0.0) + value
    total = sum(results.values()) or 1.0
    dead = {
        dict(lbl)["reason"]: v
        for (n, lbl), v in samples.items()
        if n == "bouncewire_dead_letters_total" and v  # every reason is exported, zeros too
    }
    lines = [
        "── bouncewire demo summary ──",
        f"events in:       {published['send_result']} send results, "
        f"{published['unsubscribe']} unsubscribes",
        f"callbacks out:   {stats['accepted']} POSTs accepted of {stats['posts']}; events "
        + ", ".join(f"{k}={v}" for k, v in dict(stats["events_by_type"]).items()),  # type: ignore[call-overload]
        f"bounce rate:     hard {results.get('hard', 0) / total:.2%}, "
        f"soft {results.get('soft', 0) / total:.2%} of {int(total)} send results",
        "dead letters:    " + (", ".join(f"{k}={int(v)}" for k, v in dead.items()) or "none"),
    ]
    return "\n".join(lines)


def _interrupt(signum: int, _frame: object) -> None:
    """The first Ctrl-C/SIGTERM ends the traffic; later ones must not cut the cleanup short."""
    signal.signal(signal.SIGINT, _already_stopping)
    signal.signal(signal.SIGTERM, _already_stopping)
    raise KeyboardInterrupt


def _already_stopping(signum: int, _frame: object) -> None:
    print("demo: stopping, cleaning up what the demo started", file=sys.stderr, flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    # Explicit handlers: a shell may start us with SIGINT ignored (background job), and SIGTERM
    # must also end the traffic and still run the cleanup that stops what the demo started.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    args.schema_registry_url = None
    try:
        return _run_demo(args)
    except KeyboardInterrupt:
        print("demo: interrupted before the traffic started; everything stopped", file=sys.stderr)
        return 130


def _run_demo(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        bootstrap = stack.enter_context(local_broker())
        topics = TopicNames()
        create_topics(
            KafkaSettings(bootstrap_servers=bootstrap),
            [topics.send_results, topics.unsubscribes, topics.dlq],
        )
        # Answers after --callback-delay-ms, concurrently: CleverTap is a round trip away.
        receiver = stack.enter_context(
            CallbackReceiver(echo=sys.stdout, latency_s=args.callback_delay_ms / 1000)
        )
        metrics_port = _free_port()
        stack.enter_context(
            consumer(
                bootstrap,
                receiver.base_url + "/bounce?token=demo-token",
                receiver.base_url + "/unsubscribe?token=demo-token",
                metrics_port,
            )
        )
        base = f"http://127.0.0.1:{metrics_port}"
        if not _wait(base + "/readyz", 60):
            print("bouncewire demo: the consumer did not become ready", file=sys.stderr)
            return 1
        print(
            f"demo: consumer ready, metrics at {base}/metrics; simulating {args.rate:.0f} "
            f"events/s for {args.seconds or 'ever (Ctrl-C to stop)'} s",
            flush=True,
        )
        gateway = None
        if getattr(args, "via_gateway", False):
            gateway = stack.enter_context(demo_gateway(bootstrap))
            print(
                f"demo: SMTP gateway on 127.0.0.1:{gateway.login.port} in front of a "
                "stand-in relay; send results travel as mail",
                flush=True,
            )
        published = _simulate(bootstrap, args, gateway)
        _caught_up(base + "/metrics", sum(published.values()), 30)
        print(summarize(published, receiver.stats(), _metric_samples(base + "/metrics")))
    return 0
