"""deploy/prometheus: promtool accepts the rules and the config, the rule unit tests pass (and
fail when a rule is broken), and every alert carries a summary, a runbook and its tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.tools import DEPLOY, require_tool

PROMETHEUS_DIR = DEPLOY / "prometheus"
RULES = PROMETHEUS_DIR / "bouncewire-rules.yml"
RULE_TESTS = PROMETHEUS_DIR / "bouncewire-rules.test.yml"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
PROMTOOL_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_tool("promtool")


def run_promtool(promtool: str, *args: str, cwd: Path = PROMETHEUS_DIR,
                 ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=PROMTOOL_TIMEOUT_S, check=False)


def rule_groups() -> list[dict[str, Any]]:
    return list(yaml.safe_load(RULES.read_text())["groups"])


def alerts() -> list[dict[str, Any]]:
    return [r for g in rule_groups() for r in g["rules"] if "alert" in r]


def unit_tests() -> list[dict[str, Any]]:
    return list(yaml.safe_load(RULE_TESTS.read_text())["tests"])


def test_promtool_check_rules(promtool: str) -> None:
    result = run_promtool(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config(promtool: str) -> None:
    result = run_promtool(promtool, "check", "config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass(promtool: str) -> None:
    result = run_promtool(promtool, "test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("original", "broken"), [
    ("bouncewire:hard_bounce_ratio:rate1h > 0.02", "bouncewire:hard_bounce_ratio:rate1h > 0.5"),
    ('status_class="2xx"', 'status_class="5xx"'),
    ("bouncewire_oldest_undelivered_unsubscribe_age_seconds) > 86400",
     "bouncewire_oldest_undelivered_unsubscribe_age_seconds) > 864000"),
    ("max by (job, topic, partition) (bouncewire_consumer_lag)",
     "sum by (job, topic, partition) (bouncewire_consumer_lag)"),
    ('reply="4xx"}[10m])) > 0', 'reply="5xx"}[10m])) > 0'),
    ("bouncewire:mail_parse_failure_ratio:rate1h > 0.2",
     "bouncewire:mail_parse_failure_ratio:rate1h > 0.6"),
    ("increase(bouncewire_mail_messages_total[1h])) >= 20",
     "increase(bouncewire_mail_messages_total[1h])) >= 1"),
    ('up{job="bouncewire-mail-serve"} == 0', 'up{job="mail-serve"} == 0'),
    ("max by (job) (bouncewire_mta_log_seconds_behind) > 300",
     "max by (job) (bouncewire_mta_log_seconds_behind) > 3000"),
    ('increase(bouncewire_mta_log_lines_skipped_total{reason=~"malformed_delivery|unknown_status|'
     'expired_without_recipients|invalid_event|partial_line"}[30m])',
     "increase(bouncewire_mta_log_lines_skipped_total[30m])"),
    ('up{job="bouncewire-mta-log"} == 0', 'up{job="mta-log"} == 0'),
    ("bouncewire:gateway_upstream_failure_ratio:rate5m > 0.1",
     "bouncewire:gateway_upstream_failure_ratio:rate5m > 0.6"),
    ("increase(bouncewire_gateway_recipients_total[5m])) >= 10",
     "increase(bouncewire_gateway_recipients_total[5m])) >= 0"),
    ("increase(bouncewire_gateway_auth_failures_total[5m])) > 20",
     "increase(bouncewire_gateway_auth_failures_total[5m])) > 0"),
    ("unpublished_transactions_total[10m])) > 0", "unpublished_transactions_total[10m])) > 50"),
    ('up{job="bouncewire-smtp-gateway"} == 0', 'up{job="smtp-gateway"} == 0'),
])
def test_rule_unit_tests_catch_a_broken_rule(promtool: str, tmp_path: Path, original: str,
                                             broken: str) -> None:
    text = RULES.read_text()
    assert original in text
    (tmp_path / RULES.name).write_text(text.replace(original, broken, 1))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = run_promtool(promtool, "test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr


def test_every_alert_has_severity_summary_and_a_one_line_runbook() -> None:
    for alert in alerts():
        assert alert["labels"]["severity"] in {"warning", "critical"}, alert["alert"]
        annotations = alert["annotations"]
        assert annotations["summary"].strip(), alert["alert"]
        runbook = annotations["runbook"]
        assert "\n" not in runbook.strip() and len(runbook) > 40, alert["alert"]


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    cases = [case for test in unit_tests() for case in test.get("alert_rule_test", [])]
    fired = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    names = {a["alert"] for a in alerts()}
    assert names - fired == set(), "never seen firing"
    assert names - quiet == set(), "never seen quiet"


def test_every_recording_rule_has_its_value_tested() -> None:
    recorded = {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}
    tested = {case["expr"].split("{")[0] for test in unit_tests()
              for case in test.get("promql_expr_test", [])}
    assert recorded - tested == set()


def test_the_issue_asks_for_these_alerts() -> None:
    """bounce rate, callbacks failing, dead letters, lag, unsubscribe age, consumer down."""
    exprs = {a["alert"]: a["expr"] for a in alerts()}
    assert "bouncewire:hard_bounce_ratio" in exprs["BouncewireHardBounceRateHigh"]
    assert "callback_success_ratio" in exprs["BouncewireCallbacksFailing"]
    assert "bouncewire_dead_letters_total" in exprs["BouncewireDeadLettersGrowing"]
    assert "consumer_lag" in exprs["BouncewireConsumerLagGrowing"]
    assert "> 86400" in exprs["BouncewireUnsubscribeUndeliveredTooLong"]
    assert "up{" in exprs["BouncewireConsumerDown"]
    assert exprs["BouncewireConsumerAbsent"].startswith("absent(")


def test_the_event_sources_have_their_alerts() -> None:
    """mail serve deferring / not understanding mail, mta-log behind or skipping lines, the
    gateway's relay failing, AUTH failure bursts and results not recorded, and each source
    down. No absent() alert for them: each is optional, and a Prometheus that never scraped
    one would page forever."""
    exprs = {a["alert"]: a["expr"] for a in alerts()}
    assert 'reply="4xx"' in exprs["BouncewireMailDeferring"]
    assert "mail_parse_failure_ratio" in exprs["BouncewireMailParseFailuresHigh"]
    assert 'up{job="bouncewire-mail-serve"}' in exprs["BouncewireMailServeDown"]
    assert "bouncewire_mta_log_seconds_behind" in exprs["BouncewireMtaLogBehind"]
    assert "lines_skipped" in exprs["BouncewireMtaLogLinesNotUnderstood"]
    assert 'up{job="bouncewire-mta-log"}' in exprs["BouncewireMtaLogDown"]
    assert "gateway_upstream_failure_ratio" in exprs["BouncewireGatewayUpstreamFailing"]
    assert "bouncewire_gateway_auth_failures_total" in exprs["BouncewireGatewayAuthFailureBurst"]
    assert "unpublished_transactions" in exprs["BouncewireGatewayUnpublished"]
    assert 'up{job="bouncewire-smtp-gateway"}' in exprs["BouncewireGatewayDown"]
    assert [name for name, expr in exprs.items() if "absent(" in expr] == \
        ["BouncewireConsumerAbsent"]
