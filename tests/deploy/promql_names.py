"""What each bouncewire process exports, and what PromQL expressions use: metric names and
label names.

A small, deliberately conservative reading of PromQL (regular expressions, no full parser):
identifiers starting `bouncewire_` or `bouncewire:`, label matchers inside `{...}`, label
lists of `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`, `label_values(m, l)`
(Grafana) and `{{label}}` in legends. Enough for the expressions this repository writes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from bouncewire._mta_log import MtaLogMetrics
from bouncewire.consumers.metrics import ConsumerMetrics
from bouncewire.producers.gateway.metrics import GatewayMetrics
from bouncewire.producers.mail.metrics import MailMetrics

# Labels Prometheus attaches to every scraped series (static config, PodMonitor, SD).
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "container", "service"})

_IDENT = re.compile(r"\b(bouncewire[_:][A-Za-z0-9_:]*)")
_SELECTOR = re.compile(r"\b((?:bouncewire[_:]|up\b)[A-Za-z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z0-9_:]+)\s*,\s*([A-Za-z0-9_]+)\s*\)")
_LEGEND = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


@dataclass(frozen=True)
class Exported:
    """Sample names a process exports, each with its label names."""

    labels: Mapping[str, frozenset[str]]

    def has(self, name: str) -> bool:
        return name in self.labels


def _consumer(registry: CollectorRegistry) -> object:
    return ConsumerMetrics.create(registry)


def _mail_serve(registry: CollectorRegistry) -> object:
    return MailMetrics.create(registry)


def _mta_log(registry: CollectorRegistry) -> object:
    return MtaLogMetrics(registry)


def _smtp_gateway(registry: CollectorRegistry) -> object:
    return GatewayMetrics(registry)


# The processes Prometheus scrapes, by the job name the scrape configs give them, each with
# the code that declares its metrics on a registry.
SOURCES: Mapping[str, Callable[[CollectorRegistry], object]] = {
    "bouncewire-consumer": _consumer,
    "bouncewire-mail-serve": _mail_serve,
    "bouncewire-mta-log": _mta_log,
    "bouncewire-smtp-gateway": _smtp_gateway,
}


def declared(registry: CollectorRegistry) -> list[Counter | Gauge | Histogram]:
    return [c for c in registry._collector_to_names  # the registry keeps collectors only here
            if isinstance(c, Counter | Gauge | Histogram)]


def exports_of(create: Callable[[CollectorRegistry], object]) -> Exported:
    """Every sample name the metrics `create` declares can export, with its labels.

    Labelled series appear only once used, so names come from each metric's kind (Counter
    → `_total`, Histogram → `_bucket/_sum/_count`) and labels from its declaration.
    """
    registry = CollectorRegistry()
    create(registry)
    names: dict[str, frozenset[str]] = {}
    for metric in declared(registry):
        base, labels = metric._name, frozenset(metric._labelnames)  # declared, not yet used
        if isinstance(metric, Counter):
            names[f"{base}_total"] = labels
        elif isinstance(metric, Histogram):
            names[f"{base}_bucket"] = labels | {"le"}
            names[f"{base}_sum"] = names[f"{base}_count"] = labels
        else:
            names[base] = labels
    return Exported(names)


def consumer_exports() -> Exported:
    return exports_of(_consumer)


def all_exports() -> Exported:
    """What every bouncewire process exports (metric names do not collide across them)."""
    merged: dict[str, frozenset[str]] = {}
    for create in SOURCES.values():
        merged.update(exports_of(create).labels)
    return Exported(merged)


def identifiers(expr: str) -> set[str]:
    return set(_IDENT.findall(_STRING.sub('""', expr)))


def grouping_labels(expr: str) -> set[str]:
    return {label.strip() for group in _GROUPING.findall(expr)
            for label in group.split(",") if label.strip()}


def selector_labels(expr: str) -> list[tuple[str, set[str]]]:
    """(metric, label names matched) for every `metric{...}` selector."""
    return [(name, set(_MATCHER.findall(_STRING.sub('""', body))))
            for name, body in _SELECTOR.findall(expr)]


def label_values_refs(expr: str) -> list[tuple[str, str]]:
    return list(_LABEL_VALUES.findall(expr))


def legend_labels(legend: str) -> set[str]:
    return set(_LEGEND.findall(legend))


def recorded_labels(records: Mapping[str, str]) -> dict[str, frozenset[str]]:
    """Labels of each recording rule's series: what its `by (...)` clauses keep (le is
    consumed by histogram_quantile)."""
    return {name: frozenset(grouping_labels(expr) - {"le"}) for name, expr in records.items()}


def problems(expr: str, known: Mapping[str, frozenset[str]], legend: str = "") -> list[str]:
    """What in `expr` is not exported: unknown series, labels no series of it carries."""
    found: list[str] = []
    used = identifiers(expr)
    found += [f"unknown series {name}" for name in sorted(used - set(known))]
    for name, labels in selector_labels(expr):
        allowed = known.get(name, frozenset()) | TARGET_LABELS
        found += [f"{name} has no label {label}" for label in sorted(labels - allowed)]
    for name, label in label_values_refs(expr):
        if label not in known.get(name, frozenset()) | TARGET_LABELS:
            found.append(f"{name} has no label {label}")
    anywhere = frozenset().union(*(known.get(n, frozenset()) for n in used)) | TARGET_LABELS
    found += [f"no series of the expression has label {label}"
              for label in sorted((grouping_labels(expr) | legend_labels(legend)) - anywhere)]
    return found
