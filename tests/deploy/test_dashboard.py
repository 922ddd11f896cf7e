"""The Grafana dashboard and the Prometheus rules use only series bouncewire's processes export
(the consumer, mail serve, mta-log), with labels those series carry; no label can hold an
address; the dashboard imports cleanly and shows what operators need."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bouncewire.producers.mta_log.notes import NOT_UNDERSTOOD
from tests.deploy.promql_names import (
    SOURCES,
    TARGET_LABELS,
    all_exports,
    declared,
    exports_of,
    identifiers,
    label_values_refs,
    problems,
    recorded_labels,
)
from tests.deploy.tools import DEPLOY

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "bouncewire.json"
RULES = DEPLOY / "prometheus" / "bouncewire-rules.yml"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def load_dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def recording_rules() -> dict[str, str]:
    return {r["record"]: r["expr"] for r in rules() if "record" in r}


def known_series() -> dict[str, frozenset[str]]:
    """Exported series plus the recorded ones (and Prometheus' own `up`)."""
    return {**all_exports().labels, **recorded_labels(recording_rules()),
            "up": frozenset()}


def panels() -> list[dict[str, Any]]:
    return [p for p in load_dashboard()["panels"] if p["type"] != "row"]


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(where, expr, legend) for every panel target and templating query."""
    found = [(f"panel {p['title']!r}", t["expr"], t.get("legendFormat", ""))
             for p in panels() for t in p["targets"]]
    for var in load_dashboard()["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            found.append((f"variable {var['name']!r}", query, ""))
    return found


def rule_queries() -> list[tuple[str, str, str]]:
    return [(r.get("record") or r["alert"], r["expr"], "") for r in rules()]


# --- the checker itself: it must catch what it is there to catch -----------------------------

@pytest.mark.parametrize(("expr", "legend", "expected"), [
    ("sum by (bounce) (rate(bouncewire_send_results_total[5m]))", "{{bounce}}", []),
    ('rate(bouncewire_callback_duration_seconds_bucket{destination="bounce"}[5m])', "", []),
    ("histogram_quantile(0.9, sum by (le) (rate(bouncewire_batch_events_bucket[1m])))", "", []),
    ('bouncewire:hard_bounce_ratio:rate5m{job=~"$job"}', "{{job}}", []),
    ("rate(bouncewire_send_results[5m])", "", ["unknown series bouncewire_send_results"]),
    ("bouncewire_callback_duration_seconds", "",
     ["unknown series bouncewire_callback_duration_seconds"]),
    ('bouncewire_callbacks_total{status="500"}', "",
     ["bouncewire_callbacks_total has no label status"]),
    ("sum by (email) (bouncewire_send_results_total)", "",
     ["no series of the expression has label email"]),
    ("sum(bouncewire_dead_letters_total)", "{{destination}}",
     ["no series of the expression has label destination"]),
    ("label_values(bouncewire_consumer_lag, url)", "",
     ["bouncewire_consumer_lag has no label url"]),
    ('bouncewire:hard_bounce_ratio:rate5m{error_class="x"}', "",
     ["bouncewire:hard_bounce_ratio:rate5m has no label error_class"]),
])
def test_checker_flags_unknown_series_and_labels(expr: str, legend: str,
                                                 expected: list[str]) -> None:
    assert problems(expr, known_series(), legend) == expected


@pytest.mark.parametrize("job", sorted(SOURCES))
def test_derived_names_match_what_the_registry_really_exposes(job: str) -> None:
    """exports_of() reads declarations; fill every label and compare with /metrics."""
    registry = CollectorRegistry()
    SOURCES[job](registry)
    for metric in declared(registry):
        if metric._labelnames:
            metric.labels(*["x"] * len(metric._labelnames))
    exposed = {sample.name: frozenset(sample.labels)
               for family in text_string_to_metric_families(generate_latest(registry).decode())
               for sample in family.samples if not sample.name.endswith("_created")}
    assert exposed == exports_of(SOURCES[job]).labels


# Label names that would carry an address, a user or a host: unbounded and personal data.
ADDRESS_LIKE = frozenset({"email", "address", "recipient", "rcpt", "sender", "mail_from", "from",
                          "to", "user", "username", "login", "host", "hostname", "ip", "peer",
                          "client", "remote_mta", "queue_id", "message_id"})


def test_no_exported_label_can_hold_an_address() -> None:
    labels = frozenset().union(*all_exports().labels.values())
    assert labels & ADDRESS_LIKE == set()


def test_mta_log_alert_selects_exactly_the_reasons_not_understood() -> None:
    [expr] = [r["expr"] for r in rules() if r.get("alert") == "BouncewireMtaLogLinesNotUnderstood"]
    for regex in re.findall(r'reason=~"([^"]*)"', expr):
        assert set(regex.split("|")) == NOT_UNDERSTOOD


# --- the real files --------------------------------------------------------------------------

def test_every_series_and_label_the_rules_use_is_exported() -> None:
    known = known_series()
    assert {where: problems(expr, known) for where, expr, _ in rule_queries()
            if problems(expr, known)} == {}


def test_every_series_and_label_the_dashboard_uses_is_exported() -> None:
    known = known_series()
    found = {f"{where}: {expr}": problems(expr, known, legend)
             for where, expr, legend in dashboard_queries()}
    assert {k: v for k, v in found.items() if v} == {}


def test_recorded_series_the_dashboard_uses_are_defined_by_the_rules() -> None:
    used = set().union(*(identifiers(expr) for _, expr, _ in dashboard_queries()))
    assert {n for n in used if ":" in n} <= set(recording_rules())


def test_rules_aggregate_only_over_exported_or_target_labels() -> None:
    exported_labels = frozenset().union(*all_exports().labels.values())
    for name, labels in recorded_labels(recording_rules()).items():
        assert labels <= exported_labels | TARGET_LABELS, name


def test_dashboard_imports_with_a_datasource_input() -> None:
    dashboard = load_dashboard()
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"  # resolves when provisioned too
    for panel in panels():
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert all(t["datasource"] == DATASOURCE for t in panel["targets"]), panel["title"]
    assert "uid" in dashboard and dashboard["title"] == "bouncewire"


def test_dashboard_layout_is_well_formed() -> None:
    dashboard = load_dashboard()
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["w"] > 0 and grid["h"] > 0, panel["title"]
        assert panel["title"]
    assert all(p["targets"] for p in panels())


@pytest.mark.parametrize(("topic", "needle"), [
    ("bounce rates", "bouncewire:hard_bounce_ratio:rate5m"),
    ("bounce rates", "bouncewire:soft_bounce_ratio:rate1h"),
    ("error classes", "bouncewire:error_class_share:rate5m"),
    ("callback outcomes", "bouncewire_callbacks_total"),
    ("callback latency",
     "histogram_quantile(0.99, sum by (destination, le) "
     '(rate(bouncewire_callback_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))'),
    ("lag", "bouncewire:consumer_lag:sum"),
    ("read-ahead beside the lag", "bouncewire:consumer_read_ahead:sum"),
    ("dead letters by reason", "sum by (reason) (increase(bouncewire_dead_letters_total"),
    ("unsubscribe age", "bouncewire_oldest_undelivered_unsubscribe_age_seconds"),
    ("mail serve deferring (451)", "bouncewire:mail_data_replies:rate5m"),
    ("mail not understood", "bouncewire:mail_parse_failure_ratio:rate1h"),
    ("mail serve ack latency", "bouncewire:mail_receipt_to_ack_seconds:p99_5m"),
    ("mail counted, not published", "bouncewire_mail_counted_total"),
    ("mta-log behind the end of the file", "bouncewire_mta_log_seconds_behind"),
    ("mta-log lines skipped", "sum by (reason) (increase(bouncewire_mta_log_lines_skipped_total"),
    ("mta-log attempts read", "bouncewire:mta_log_attempts:rate5m"),
    ("gateway relay failing", "bouncewire:gateway_upstream_failure_ratio:rate5m"),
    ("gateway recipients by result", "bouncewire:gateway_recipients:rate5m"),
    ("gateway AUTH failures", "bouncewire_gateway_auth_failures_total"),
    ("gateway 451 for results not recorded", "bouncewire_gateway_unpublished_transactions_total"),
    ("gateway relay latency", "bouncewire:gateway_relay_seconds:p99_5m"),
])
def test_dashboard_shows_what_operators_need(topic: str, needle: str) -> None:
    assert any(needle in expr for _, expr, _ in dashboard_queries()), topic


@pytest.mark.parametrize(("job", "name"), [("bouncewire-mail-serve", "mail_job"),
                                           ("bouncewire-mta-log", "mta_log_job"),
                                           ("bouncewire-smtp-gateway", "gateway_job")])
def test_each_event_source_has_a_row_and_a_job_variable(job: str, name: str) -> None:
    """Each source's panels filter on a variable of its own jobs (the consumer's $job lists
    consumers only), read from a series that exists from start-up, before any traffic."""
    variables = {v["name"]: v for v in load_dashboard()["templating"]["list"]}
    query = variables[name]["query"]["query"]
    [(metric, label)] = label_values_refs(query)
    assert label == "job" and not exports_of(SOURCES[job]).labels[metric]  # unlabelled
    queries = [expr for where, expr, _ in dashboard_queries() if where.startswith("panel")]
    assert sum(f'job=~"${name}"' in expr for expr in queries) >= 5
    assert any(expr == f'sum(up{{job=~"${name}"}})' for expr in queries)
