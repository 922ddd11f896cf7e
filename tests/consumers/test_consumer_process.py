"""`bouncewire consume` as a real process: SIGKILL and restart, SIGTERM drain, group members
leaving mid-flow. Nothing may be lost; duplicates stay within the in-flight bound."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bouncewire.kafka_client import TopicNames
from bouncewire.receiver import CallbackReceiver, FaultPlan
from reliability.support import free_port
from tests.consumers.pipeline_harness import (
    bounce,
    committed_offsets,
    consumer_process,
    end_offsets,
    publish,
    wait_until,
)

pytestmark = pytest.mark.integration
BATCH = 200
IN_FLIGHT = 4



def received_counts(receiver: CallbackReceiver) -> collections.Counter[str]:
    return collections.Counter(e.email for p in receiver.received for e in p.processed_events)


def _delivery_child(pid: int) -> int:
    """The spawned delivery process of consumer `pid` (its other child is multiprocessing's
    resource tracker)."""
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
    raise AssertionError("no delivery child")


def _kill(victim: str, consumer: subprocess.Popen[bytes]) -> None:
    if victim == "consumer":
        consumer.send_signal(signal.SIGKILL)
        consumer.wait(10)
        return
    os.kill(_delivery_child(consumer.pid), signal.SIGKILL)
    assert consumer.wait(30) == 2  # the loop notices and stops, committing nothing in flight
    assert consumer.stderr is not None
    assert b"delivery process exited" in consumer.stderr.read()


@pytest.mark.parametrize("victim", ["consumer", "delivery child"])
def test_sigkill_mid_batch_then_restart_loses_nothing(
    victim: str, kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver
) -> None:
    records = [bounce(f"k{i}@example.com") for i in range(3000)]
    publish(kafka_bootstrap, topics, "send_result", records)
    receiver.set_faults(FaultPlan(delay_s=0.3, count=-1))  # keep batches in flight
    group = f"g-{uuid.uuid4().hex[:8]}"
    # The child must exist to be killed, whatever CPUs `--delivery auto` would see here.
    delivery = ("--delivery", "process") if victim == "delivery child" else ()
    args = (kafka_bootstrap, topics, group, receiver.url, receiver.url,
            "--max-batch-events", str(BATCH), "--max-in-flight", str(IN_FLIGHT), *delivery)
    with consumer_process(*args) as first:
        assert wait_until(lambda: len(receiver.received) >= 4, 60)
        _kill(victim, first)
    receiver.set_faults(FaultPlan())
    with consumer_process(*args):
        assert wait_until(lambda: len(received_counts(receiver)) == 3000, 90)
        assert wait_until(lambda: committed_offsets(kafka_bootstrap, group,
                                                    topics.send_results, 3)
                          == end_offsets(kafka_bootstrap, topics.send_results, 3), 20)
    counts = received_counts(receiver)
    duplicates = sum(counts.values()) - len(counts)
    # The promise (docs/reliability.md): a kill re-sends at most 2 x --max-in-flight batches
    # per destination: the window of batches in flight or finished behind an unfinished one,
    # and as many again finished whose commit had not landed.
    bound = 2 * IN_FLIGHT * BATCH
    print(f"sigkill-restart ({victim}): 3000 events, {duplicates} duplicates (bound {bound})")
    assert duplicates <= bound


def _consumed(metrics_port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return 0.0
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "bouncewire_events_consumed_total")


@pytest.mark.parametrize("group_protocol", ["classic", "consumer"])
def test_sigterm_drains_exits_zero_and_leaves_nothing_to_redo(
    group_protocol: str, kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver
) -> None:
    """The same drain under both group protocols (consumer = KIP-848: the broker assigns)."""
    publish(kafka_bootstrap, topics, "send_result", [bounce(f"t{i}@x.org") for i in range(50)])
    group = f"g-{uuid.uuid4().hex[:8]}"
    args = (kafka_bootstrap, topics, group, receiver.url, receiver.url,
            "--group-protocol", group_protocol)
    port = free_port()
    with consumer_process(*args, "--linger-ms", "60000", "--metrics-port", str(port)) as proc:
        assert wait_until(lambda: _consumed(port) == 50, 30)
        assert receiver.received == []  # all 50 wait in an open batch
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert len(received_counts(receiver)) == 50
    assert committed_offsets(kafka_bootstrap, group, topics.send_results, 3) == end_offsets(
        kafka_bootstrap, topics.send_results, 3)
    posts_before = len(receiver.received)
    port = free_port()
    with consumer_process(*args, "--linger-ms", "200", "--metrics-port", str(port)) as again:
        assert wait_until(lambda: _get_ready(port), 30)
        health = subprocess.run([sys.executable, "-m", "bouncewire", "health", "--metrics-port",
                                 str(port)], capture_output=True, timeout=30, check=False)
        assert health.returncode == 0 and b"partitions assigned" in health.stdout
        again.send_signal(signal.SIGTERM)
        assert again.wait(30) == 0
    assert len(receiver.received) == posts_before  # zero duplicates after a clean drain


def _get_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def test_two_members_one_stopped_mid_flow_loses_nothing(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    args = (kafka_bootstrap, topics, group, receiver.url, receiver.url)
    receiver.set_faults(FaultPlan(delay_s=0.05, count=-1))
    with consumer_process(*args) as first, consumer_process(*args):
        publish(kafka_bootstrap, topics, "send_result",
                [bounce(f"a{i}@example.com") for i in range(1000)])
        assert wait_until(lambda: len(received_counts(receiver)) >= 300, 60)
        first.send_signal(signal.SIGKILL)
        publish(kafka_bootstrap, topics, "send_result",
                [bounce(f"b{i}@example.com") for i in range(1000)])
        assert wait_until(lambda: len(received_counts(receiver)) == 2000, 120)
