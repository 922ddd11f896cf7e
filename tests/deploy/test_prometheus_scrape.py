"""A real Prometheus (Debian's package) scrapes a real `bouncewire consume` process fed known
traffic, evaluates deploy/prometheus/bouncewire-rules.yml, and the recorded bounce rates read
back through Prometheus' HTTP API are the traffic's: bounces / all send results. And through a
callback outage the committed lag rises by every event produced and its alert goes pending.

Why two rounds of traffic: Prometheus only computes a rate from samples it scraped (the
consumer's known series exist at 0 from start-up, but a rate window needs two samples of the
traffic). Prometheus starts only once the consumer has counted round one, so its first
samples are round one's totals; round two is what the rate windows see. Rounds have the same
mix, so the recorded rate is that mix exactly (all series share sample times, so the rate
extrapolation scales them alike).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bouncewire.kafka_client import TopicNames
from bouncewire.receiver import CallbackReceiver, FaultPlan
from reliability.support import free_port
from tests.consumers.pipeline_harness import (
    bounce,
    consumer_process,
    delivered,
    publish,
    soft,
    topics_for,
    wait_until,
)
from tests.deploy.tools import DEPLOY, require_tool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

RULES = DEPLOY / "prometheus" / "bouncewire-rules.yml"
JOB = "bouncewire-consumer"
HARD, SOFT, DELIVERED = 40, 60, 100
ROUND = HARD + SOFT + DELIVERED
STEP_TIMEOUT_S = 30.0



def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 -- loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def send_results_counted(metrics_url: str) -> float:
    """Sum of bouncewire_send_results_total on the consumer's own /metrics."""
    status, text = http_get(metrics_url)
    if status != 200:
        return 0.0
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name == "bouncewire_send_results_total")


@dataclass
class PrometheusServer:
    url: str

    def query(self, promql: str) -> list[dict[str, Any]]:
        status, body = http_get(f"{self.url}/api/v1/query?"
                                + urllib.parse.urlencode({"query": promql}))
        if status != 200:
            return []
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def value(self, promql: str) -> tuple[float, float] | None:
        """(sample time, value) of a query answering one series, else None."""
        result = self.query(promql)
        if len(result) != 1:
            return None
        ts, value = result[0]["value"]
        return float(ts), float(value)


def prometheus_config(targets: Mapping[str, str]) -> str:
    """Scrapes {job: target} every second and evaluates bouncewire's rules."""
    return json.dumps({  # JSON is YAML: no YAML writer needed
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}
                           for job, target in targets.items()],
    })


Launch = Callable[[Mapping[str, str]], PrometheusServer]


@contextmanager
def prometheus_launcher(tmp_path: Path) -> Iterator[Launch]:
    """`launch({job: target})` starts a real Prometheus on loopback and waits until it is ready;
    every one launched is killed on leaving."""
    binary = require_tool("prometheus")
    procs: list[subprocess.Popen[bytes]] = []
    log_path = tmp_path / "prometheus.log"

    def launch(targets: Mapping[str, str]) -> PrometheusServer:
        config = tmp_path / "prometheus.yml"
        config.write_text(prometheus_config(targets))
        port = free_port()
        with log_path.open("wb") as log:
            procs.append(subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT))
        server = PrometheusServer(f"http://127.0.0.1:{port}")
        assert wait_until(lambda: http_get(f"{server.url}/-/ready")[0] == 200, STEP_TIMEOUT_S), \
            log_path.read_text()[-2000:]
        return server

    try:
        yield launch
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[[str], PrometheusServer]]:
    with prometheus_launcher(tmp_path) as launch:
        yield lambda target: launch({JOB: target})


def one_round(tag: str) -> list[dict[str, Any]]:
    return ([bounce(f"hard-{tag}-{i}@example.com") for i in range(HARD)]
            + [soft(f"soft-{tag}-{i}@example.com") for i in range(SOFT)]
            + [delivered(f"ok-{tag}-{i}@example.com") for i in range(DELIVERED)])


@pytest.fixture
def topics(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> TopicNames:
    return topics_for(kafka_bootstrap, unique_name)


def test_prometheus_records_the_bounce_rate_of_the_traffic(
    kafka_bootstrap: str, topics: TopicNames,
    start_prometheus: Callable[[str], PrometheusServer],
) -> None:
    port = free_port()
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    with CallbackReceiver() as receiver, consumer_process(
        kafka_bootstrap, topics, f"g-{uuid.uuid4().hex[:8]}", receiver.url, receiver.url,
        "--metrics-port", str(port),
    ) as proc:
        assert wait_until(lambda: http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200,
                          STEP_TIMEOUT_S), "consumer never ready"
        publish(kafka_bootstrap, topics, "send_result", one_round("a"))
        assert wait_until(lambda: send_results_counted(metrics_url) == ROUND, STEP_TIMEOUT_S)

        prometheus = start_prometheus(f"127.0.0.1:{port}")
        total = f'sum(bouncewire_send_results_total{{job="{JOB}"}})'
        assert wait_until(lambda: (prometheus.value(total) or (0, 0))[1] == ROUND,
                          STEP_TIMEOUT_S), "Prometheus never scraped round one"

        publish(kafka_bootstrap, topics, "send_result", one_round("b"))
        assert wait_until(lambda: (prometheus.value(total) or (0, 0))[1] == 2 * ROUND,
                          STEP_TIMEOUT_S), "Prometheus never scraped round two"
        scraped_at = time.time()

        # The recorded series must come from an evaluation after the last scrape.
        def recorded_since_scrape(rule: str) -> bool:
            sample = prometheus.value(f'{rule}{{job="{JOB}"}}')
            return sample is not None and sample[0] > scraped_at + 1

        rules = ("bouncewire:hard_bounce_ratio:rate5m", "bouncewire:soft_bounce_ratio:rate5m",
                 "bouncewire:hard_bounce_ratio:rate1h")
        assert wait_until(lambda: all(recorded_since_scrape(r) for r in rules), STEP_TIMEOUT_S)
        recorded = {r: prometheus.value(f'{r}{{job="{JOB}"}}') for r in rules}
        shares = {s["metric"]["error_class"]: float(s["value"][1]) for s in prometheus.query(
            f'bouncewire:error_class_share:rate5m{{job="{JOB}"}}')}
        up = prometheus.value(f'up{{job="{JOB}"}}')
        assert proc.poll() is None, "consumer died"

    assert {r: v[1] for r, v in recorded.items() if v} == {
        "bouncewire:hard_bounce_ratio:rate5m": pytest.approx(HARD / ROUND, rel=1e-9),
        "bouncewire:soft_bounce_ratio:rate5m": pytest.approx(SOFT / ROUND, rel=1e-9),
        "bouncewire:hard_bounce_ratio:rate1h": pytest.approx(HARD / ROUND, rel=1e-9),
    }
    assert shares == {
        "invalid_email_id": pytest.approx(HARD / ROUND, rel=1e-9),
        "dispatching_failed": pytest.approx(SOFT / ROUND, rel=1e-9),
        "none": pytest.approx(DELIVERED / ROUND, rel=1e-9),
        # Primed at zero by ConsumerMetrics.prime(): present, with no traffic of theirs.
        "connection_error": 0.0,
        "timeout": 0.0,
    }
    assert up is not None and up[1] == 1


OUTAGE_BEFORE_PAUSE, OUTAGE_WHILE_PAUSED = 600, 900
LAG_ALERT = "BouncewireConsumerLagGrowing"


def gauge_sum(metrics_url: str, name: str) -> float | None:
    """Sum of one gauge's samples on the consumer's own /metrics (None if unreachable)."""
    status, text = http_get(metrics_url)
    if status != 200:
        return None
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name == name)


def delivered_events(receiver: CallbackReceiver) -> list[object]:
    return [e for post in receiver.received for e in post.processed_events]


def test_a_callback_outage_shows_as_committed_lag_and_its_alert_goes_pending(
    kafka_bootstrap: str, topics: TopicNames,
    start_prometheus: Callable[[str], PrometheusServer],
) -> None:
    """The old gauge (high watermark - fetch position) read ~0 here: the consumer reads ahead,
    pauses and holds the events. The committed lag counts every event not done, including
    those produced while the partitions were paused (the client's cached end offset no longer
    moves then), and the read-ahead shows the part held in memory."""
    port = free_port()
    metrics_url = f"http://127.0.0.1:{port}/metrics"

    def lag() -> float | None:
        return gauge_sum(metrics_url, "bouncewire_consumer_lag")

    with CallbackReceiver() as receiver, consumer_process(
        kafka_bootstrap, topics, f"g-{uuid.uuid4().hex[:8]}", receiver.url, receiver.url,
        "--metrics-port", str(port), "--max-batch-events", "100",
    ) as proc:
        assert wait_until(lambda: http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200,
                          STEP_TIMEOUT_S), "consumer never ready"
        publish(kafka_bootstrap, topics, "send_result",
                [bounce(f"before-{i}@example.com") for i in range(100)])
        # Delivered (not only counted) before the outage begins, or they would wait in it too.
        assert wait_until(lambda: len(delivered_events(receiver)) == 100, STEP_TIMEOUT_S)
        assert wait_until(lambda: lag() == 0, STEP_TIMEOUT_S)
        prometheus = start_prometheus(f"127.0.0.1:{port}")

        # The outage: every POST answered 503 and retried. (Stopping the receiver would not
        # do: its handler threads keep serving the consumer's keep-alive connection.)
        receiver.set_faults(FaultPlan(status=503, count=-1))
        publish(kafka_bootstrap, topics, "send_result",
                [bounce(f"out-{i}@example.com") for i in range(OUTAGE_BEFORE_PAUSE)])
        assert wait_until(lambda: (gauge_sum(metrics_url, "bouncewire_paused_partitions")
                                   or 0) > 0, STEP_TIMEOUT_S), "never paused"
        publish(kafka_bootstrap, topics, "send_result",
                [bounce(f"paused-{i}@example.com") for i in range(OUTAGE_WHILE_PAUSED)])
        waiting = OUTAGE_BEFORE_PAUSE + OUTAGE_WHILE_PAUSED
        assert wait_until(lambda: lag() == waiting, STEP_TIMEOUT_S), f"lag {lag()}"
        read_ahead = gauge_sum(metrics_url, "bouncewire_consumer_read_ahead")
        assert read_ahead is not None and 0 < read_ahead <= OUTAGE_BEFORE_PAUSE

        alert = (f'ALERTS{{alertname="{LAG_ALERT}",job="{JOB}",'
                 f'topic="{topics.send_results}"}}')
        assert wait_until(lambda: len(prometheus.query(alert)) == 1, STEP_TIMEOUT_S)
        (pending,) = prometheus.query(alert)
        recorded = prometheus.value(
            f'bouncewire:consumer_lag:sum{{job="{JOB}",topic="{topics.send_results}"}}')

        receiver.set_faults(FaultPlan())  # the outage ends: all is delivered and committed
        assert wait_until(lambda: lag() == 0, 2 * STEP_TIMEOUT_S), f"lag {lag()}"
        assert proc.poll() is None, "consumer died"

    assert pending["metric"]["alertstate"] == "pending"  # `for: 15m` has not passed yet
    assert recorded is not None and recorded[1] == waiting
