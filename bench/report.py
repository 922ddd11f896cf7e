"""Turn a results dict into ratios, targets, a markdown report, JSON and a PNG."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

LINGER_MS = 500  # bouncewire consume's default --linger-ms, which the bench keeps


def _rate(section: dict[str, Any], name: str, key: str = "rate") -> float:
    entry = section.get(name) or {}
    return float(entry.get(key, math.nan))


def _kcat_rate(results: dict[str, Any]) -> float:
    kcat = results["consumer"].get("kcat")
    return results["config"]["records"] / kcat["seconds"] if kcat else math.nan


GATEWAY_ADDED_P99_MS = 5.0


def ratio(ours: float, baseline: float) -> float:
    """ours / baseline; NaN where the baseline is 0 (a toy run can use no measurable CPU)."""
    return ours / baseline if baseline else math.nan


def _steady_or_overall(entry: dict[str, Any]) -> float:
    steady = float(entry.get("steady_rate", math.nan))
    return float(entry["rate"]) if math.isnan(steady) else steady


def median_run(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """The trial with the median steady rate (the lower middle one of an even count), with
    every trial's rates, CPU seconds and the others' CPU use beside it under "trials"."""
    middle = sorted(trials, key=_steady_or_overall)[(len(trials) - 1) // 2]
    keys = (
        "rate",
        "steady_rate",
        "cpu_seconds",
        "window_cpu_seconds",
        # Who else used the CPUs meanwhile: what tells a slow spell from a slow trial.
        "broker_cpu_seconds",
        "sink_cpu_seconds",
        "machine_busy_share",
    )
    return {**middle, "trials": [{k: t[k] for k in keys if k in t} for t in trials]}


# The consumer scenarios' deployments: result key suffix, name. The unsuffixed one holds each
# process (bare loop, consumer) to a CPU of its own; "_free" lets them run anywhere.
DEPLOYMENTS: tuple[tuple[str, str], ...] = (("", "one CPU per process"), ("_free", "no pinning"))


def deployments(results: dict[str, Any]) -> list[tuple[str, str]]:
    """The deployments that ran ("" unpinned too when taskset or a second CPU was missing)."""
    if not results["consumer"].get("pinned_cpus"):
        return [("", "no pinning")]
    ran = results["consumer"]
    return [(suffix, name) for suffix, name in DEPLOYMENTS if f"one_process{suffix}" in ran]


def ratios(results: dict[str, Any]) -> dict[str, float]:
    """Consumer ratios compare steady rates (10th to 90th percentile of records or callbacks:
    no group join, no linger wait for the last partial batch, no drain of a slower process);
    the `_first_to_last` ones compare whole runs. `_free` ones: the unpinned deployment."""
    consumer, producer = results["consumer"], results["producer"]
    one = _rate(consumer, "one_process")
    cli = _rate(producer, "cli")
    per_deployment: dict[str, float] = {}
    for suffix, _ in deployments(results):
        per_deployment.update(_consumer_ratios(results, suffix))
    return {
        **per_deployment,
        "consumer_vs_bare_no_decode": ratio(one, _rate(consumer, "bare_no_decode")),
        "consumer_vs_kcat": ratio(one, _kcat_rate(results)),
        "bare_decode_vs_kcat": ratio(_rate(consumer, "bare_decode"), _kcat_rate(results)),
        "producer_cli_vs_bare": ratio(cli, _rate(producer, "bare")),
        "producer_cli_vs_perf_test": ratio(cli, _rate(producer, "perf_test")),
        "producer_bare_vs_perf_test": ratio(_rate(producer, "bare"), _rate(producer, "perf_test")),
        **cpu_ratios(results),
        **_delivery().ratios(results.get("delivery") or {}),
    }


def _consumer_ratios(results: dict[str, Any], suffix: str) -> dict[str, float]:
    consumer, records = results["consumer"], results["config"]["records"]

    def entry(name: str) -> dict[str, Any]:
        return consumer.get(name + suffix) or {"rate": math.nan}

    def steady(name: str) -> float:
        return _steady_or_overall(entry(name))

    def first_to_last(name: str) -> float:
        return float(entry(name)["rate"])

    def cpu(name: str) -> float:
        return _cpu_us(entry(name), records)

    return {
        f"consumer_vs_bare_decode{suffix}": ratio(steady("one_process"), steady("bare_decode")),
        f"consumer_vs_bare_decode_first_to_last{suffix}": ratio(
            first_to_last("one_process"), first_to_last("bare_decode")
        ),
        f"consumer_vs_bare_decode_cpu{suffix}": ratio(cpu("bare_decode"), cpu("one_process")),
        f"two_vs_one_process{suffix}": ratio(steady("two_processes"), steady("one_process")),
        f"two_vs_one_process_first_to_last{suffix}": ratio(
            first_to_last("two_processes"), first_to_last("one_process")
        ),
        # What 2 processes would reach with a whole CPU each: 2 x one's CPU per record over
        # theirs. Below 2 only by work the second process adds (contention, rebalance churn,
        # duplicates), not by the CPU the broker and the sink take from them on this machine.
        f"two_vs_one_process_cpu{suffix}": 2 * ratio(cpu("one_process"), cpu("two_processes")),
        # The same for the bare decode loop: what two processes can gain on this machine at all.
        f"bare_decode_two_vs_one_process{suffix}": ratio(
            steady("bare_decode_x2"), steady("bare_decode")
        ),
    }


def _cpu_us(entry: dict[str, Any], records: int) -> float:
    """CPU µs per record: from the first record or callback on where the scenario measured it
    so (the consumers), else the whole process."""
    seconds = entry.get("window_cpu_seconds", entry.get("cpu_seconds", math.nan))
    return float(seconds) / float(entry.get("records", records)) * 1e6


def targets(results: dict[str, Any], r: dict[str, float]) -> list[dict[str, Any]]:
    consumer = results["consumer"]
    best = max(
        (_rate(consumer, f"{key}{suffix}") for suffix, _ in deployments(results)
         for key in ("one_process", "two_processes")),
        default=math.nan,
    )  # fmt: skip
    p99 = next(
        (
            row["p99"]
            for row in results.get("latency", [])
            if row["offered_rate"] == max(x["offered_rate"] for x in results["latency"])
        ),
        math.nan,
    )
    outage = results.get("outage") or {}
    rows = []
    for suffix, name in deployments(results):
        rows += [
            (f"consumer / bare consume+decode, steady ({name})",
             r[f"consumer_vs_bare_decode{suffix}"], ">= 0.7x", 0.7),
            ("same, first to last", r[f"consumer_vs_bare_decode_first_to_last{suffix}"],
             ">= 0.7x", 0.7),
            ("same, by CPU per record", r[f"consumer_vs_bare_decode_cpu{suffix}"], ">= 0.7x", 0.7),
            (f"2 processes / 1 process, steady ({name})", r[f"two_vs_one_process{suffix}"],
             ">= 1.7x", 1.7),
            ("same, first to last", r[f"two_vs_one_process_first_to_last{suffix}"], ">= 1.7x",
             1.7),
            ("same, by CPU per record", r[f"two_vs_one_process_cpu{suffix}"], ">= 1.7x", 1.7),
        ]  # fmt: skip
    rows += [
        ("consumer events/s (best of 1, 2 processes)", best, ">= 100000/s", 100_000),
        ("producer CLI / bare parse+encode+produce", r["producer_cli_vs_bare"], ">= 0.6x", 0.6),
        ("same, by CPU per record", r["producer_cli_vs_bare_cpu"], ">= 0.6x", 0.6),
        ("mail parse: RFC 3464 DSNs/s on one core",
         results.get("mail_parse", {}).get("dsn", {}).get("rate", math.nan), ">= 2000/s", 2000),
        ("mta-log --dry-run log lines per CPU second",
         _rate(results.get("mta_log", {}), "dry_run", "cpu_rate"), ">= 100000/s", 100_000),
    ]  # fmt: skip
    table = [
        {"target": name, "value": value, "goal": goal, "met": value >= floor}
        for name, value, goal, floor in rows
    ]
    top_rate = max((x["offered_rate"] for x in results.get("latency", [])), default=0)
    table.append(
        {
            "target": f"p99 event-to-callback at {top_rate:g}/s (ms)",
            "value": p99,
            "goal": f"<= linger + 100 = {LINGER_MS + 100} ms",
            "met": p99 <= LINGER_MS + 100,
        }
    )
    added = (results.get("gateway") or {}).get("added_p99_ms", math.nan)
    table.append(
        {
            "target": "smtp-gateway: p99 added to a transaction vs direct (ms)",
            "value": added,
            "goal": f"<= {GATEWAY_ADDED_P99_MS} ms",
            "met": added <= GATEWAY_ADDED_P99_MS,
        }
    )
    table.append(
        {
            "target": "RSS flat through the outage (2nd half peak / 1st half peak)",
            "value": outage.get("second_half_vs_first_half", math.nan),
            "goal": "<= 1.05",
            "met": bool(outage.get("flat")),
        }
    )
    delivery_targets: list[dict[str, Any]] = _delivery().targets(results.get("delivery") or {})
    return table + delivery_targets


def _delivery() -> Any:
    """bench.delivery_bench (it imports this module: imported when first needed)."""
    from bench import delivery_bench

    return delivery_bench


def _deployment_line(results: dict[str, Any]) -> str:
    cpus = results["consumer"].get("pinned_cpus")
    if not cpus:
        return "Consumer scenarios: no pinning (taskset or a second CPU missing)."
    return (
        f"Consumer scenarios run twice. *One CPU per process*: each bare loop and consumer "
        f"process held to a CPU of its own with taskset (CPUs {cpus}; `--delivery auto` then "
        "posts from threads). *No pinning*: the scheduler places them (`auto` then spawns the "
        "delivery child). The broker and the sink are never pinned."
    )


def _fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"
    return str(value)


def markdown(results: dict[str, Any]) -> str:
    r, machine, cfg = results["ratios"], results["machine"], results["config"]
    lines = [
        f"# bouncewire bench — {results['started']}",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB, "
        f"Python {machine['python']}; broker, consumer(s), producer and sink all on it. "
        f"Load average before/after: {results['load_before']} / {results['load_after']}.",
        f"Records: {cfg['records']:,} send results, {cfg['partitions']} partitions; "
        f"mix {results['mix']}.",
        _deployment_line(results),
        "",
        "## Targets",
        "",
        "| target | value | goal | met |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {t['target']} | {_fmt(t['value'])} | {t['goal']} | {'yes' if t['met'] else '**no**'} |"
        for t in results["targets"]
    ]
    lines += [
        "",
        "## Throughput and CPU per record",
        "",
        "CPU: user + system seconds of the process (all its threads, librdkafka's included) "
        "and its children (bouncewire's delivery child) over the records it handled; for the "
        "consumers from the first record (bare loops) or callback (bouncewire) on, so start-up "
        "is left out. Unlike records/s it does not depend on how much of the machine other "
        "processes took meanwhile.",
        "",
        "| scenario | records/s | CPU µs/record | note |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {_fmt(rate)} | {_fmt(cpu, 1)} | {note} |"
        for name, rate, cpu, note in _rows(results)
    ]
    lines += [
        "",
        "## Ratios (ours / baseline)",
        "",
        "`_cpu` ratios are baseline CPU per record / ours (higher is better, like the rest); "
        "`two_vs_one_process_cpu` is 2 x one process's CPU per record / two processes': what "
        "two would reach with a whole CPU each.",
        "",
        "| ratio | value |",
        "|---|---|",
    ]
    lines += [f"| {name} | {_fmt(value)} |" for name, value in r.items()]
    lines += _latency_lines(results) + _gateway_lines(results) + _outage_lines(results)
    lines += _delivery().markdown(results.get("delivery") or {}) + _profile_lines(results)
    return "\n".join(lines) + "\n"


# (section, key, label, how it was timed); green in the plot when the label is ours.
# The consumer scenarios each deployment runs (key, label, note), in the order they run.
_PER_DEPLOYMENT: tuple[tuple[str, str, str], ...] = (
    ("bare_decode", "bare consume() + fastavro decode", "first to last record"),
    ("bare_decode_x2", "bare consume() + fastavro decode, 2 processes", "both loops"),
    ("one_process", "bouncewire consume, 1 process", "first to last callback"),
    ("two_processes", "bouncewire consume, 2 processes", "first to last callback"),
)
SCENARIOS: tuple[tuple[str, str, str, str], ...] = (
    ("consumer", "kcat", "kcat -C (whole topic to /dev/null)", "wall clock incl. connect"),
    ("consumer", "bare_no_decode", "bare consume(), no decode", "first to last record"),
    *(("consumer", key, label, note) for key, label, note in _PER_DEPLOYMENT),
    *(("consumer", f"{key}_free", f"{label}, no pinning", note)
      for key, label, note in _PER_DEPLOYMENT),
    ("producer", "perf_test", "ProducerPerformance (Java)", "its own summary line"),
    ("producer", "bare", "bare parse+encode+produce", "process wall clock"),
    ("producer", "cli", "bouncewire produce (CLI)", "process wall clock"),
    ("mail_parse", "dsn", "bouncewire mail parse, RFC 3464 DSNs (messages, 1 core)",
     "CPU time, fixture DSNs in memory"),
    ("mail_parse", "all", "bouncewire mail parse, every fixture format (messages, 1 core)",
     "CPU time, all fixtures in memory"),
    ("mta_log", "dry_run", "bouncewire mta-log postfix --dry-run (log lines)",
     "one CPU, process wall clock less start-up; ~1 result per 9 lines"),
    ("mta_log", "published", "bouncewire mta-log postfix, published (log lines)",
     "one CPU, wall clock less start-up, to the last acknowledgement"),
    ("mail_serve", "serve", "bouncewire mail serve, DSNs each acknowledged (messages)",
     "first to last 250 over 8 SMTP sessions; CPU of the server process"),
)  # fmt: skip


def _rows(results: dict[str, Any]) -> list[tuple[str, float, float, str]]:
    """(label, records/s, CPU µs per record, note) per scenario that ran."""
    rows = []
    for section, key, label, note in SCENARIOS:
        entry = results.get(section, {}).get(key)
        if not entry:
            continue
        rate = _kcat_rate(results) if key == "kcat" else float(entry["rate"])
        records = entry.get("records", results["config"]["records"])
        cpu_us = _cpu_us(entry, records)
        if "window_cpu_seconds" in entry:
            note += f"; whole process {entry['cpu_seconds'] / records * 1e6:.1f} µs/record"
        if "startup_seconds" in entry:
            note += f"; start-up {entry['startup_seconds']:.2f} s"
        if "machine_busy_share" in entry:
            note += f"; machine {entry['machine_busy_share']:.0%} busy"
        if len(entry.get("trials", ())) > 1:
            rates = ", ".join(f"{t['rate']:,.0f}" for t in entry["trials"])
            note += f"; median of {len(entry['trials'])} runs ({rates}/s)"
        rows.append((label, rate, cpu_us, note))
    return rows


def cpu_ratios(results: dict[str, Any]) -> dict[str, float]:
    """Baseline CPU per record / ours: like the throughput ratios, but immune to how much of
    the machine other processes took during each scenario."""
    per_record = {label: cpu for label, _, cpu, _ in _rows(results)}

    def by_label(ours: str, baseline: str) -> float:
        return ratio(per_record.get(baseline, math.nan), per_record.get(ours, math.nan))

    consumer, producer = "bouncewire consume, 1 process", "bouncewire produce (CLI)"
    return {
        "consumer_vs_bare_no_decode_cpu": by_label(consumer, "bare consume(), no decode"),
        "producer_cli_vs_bare_cpu": by_label(producer, "bare parse+encode+produce"),
        "producer_cli_vs_perf_test_cpu": by_label(producer, "ProducerPerformance (Java)"),
    }


def _latency_lines(results: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Event-to-callback latency (ms; stamped at produce, read at the sink)",
        "",
        "| offered/s | achieved/s | events | p50 | p90 | p99 | p99.9 | max |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results.get("latency", []):
        lines.append(
            f"| {row['offered_rate']:g} | {row['achieved_offer_rate']:.0f} | "
            f"{row['received']} | {row['p50']:.0f} | {row['p90']:.0f} | "
            f"{row['p99']:.0f} | {row['p99.9']:.0f} | {row['max']:.0f} |"
        )
    return lines


def _gateway_lines(results: dict[str, Any]) -> list[str]:
    g = results.get("gateway")
    if not g:
        return []
    lines = [
        "",
        "## SMTP gateway (smtplib client; MAIL to DATA reply on an open connection, ms)",
        "",
        f"Through `bouncewire smtp-gateway` (STARTTLS, AUTH once, a relay step per command, one "
        f"Kafka acknowledgement per recipient before the DATA reply) vs the same upstream "
        f"directly; 1 connection, then {g['connections']} at once.",
        "",
        "| path | messages | messages/s | p50 | p99 | max |",
        "|---|---|---|---|---|---|",
    ]
    for key in ("direct", "gateway", "direct_parallel", "gateway_parallel"):
        row = g[key]
        lines.append(
            f"| {key.replace('_', ', ')} | {row['messages']} | {row['rate']:.0f} | "
            f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['max_ms']:.1f} |"
        )
    lines.append(
        f"\nAdded by the gateway: p50 {g['added_p50_ms']:.1f} ms, p99 {g['added_p99_ms']:.1f} ms."
    )
    return lines


def _outage_lines(results: dict[str, Any]) -> list[str]:
    o = results.get("outage")
    if not o:
        return []
    return [
        "",
        "## Memory through a callback outage (every POST answered 503)",
        "",
        f"Backlog {results['config']['records']:,} records; outage {o['outage_seconds']:g} s "
        f"({o['refused_posts']} POSTs refused), then the sink answers 200 again.",
        "",
        "| peak RSS, 1st half | 2nd half | whole outage | incl. recovery | flat | "
        "recovery to last callback |",
        "|---|---|---|---|---|---|",
        f"| {o['peak_rss_mb_first_half']:.0f} MB | {o['peak_rss_mb_second_half']:.0f} MB | "
        f"{o['peak_rss_mb_outage']:.0f} MB | {o['peak_rss_mb_overall']:.0f} MB | "
        f"{'yes' if o['flat'] else 'no'} | {o['recovery_seconds']:.1f} s |",
    ]


def _profile_lines(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for name, spots in (results.get("profile") or {}).items():
        lines += [
            "",
            f"## Profile: {name} (pyinstrument, main thread, self time)",
            "",
            "| file | share | | function | share |",
            "|---|---|---|---|---|",
        ]
        files, functions = spots["files"][:10], spots["functions"][:10]
        for i in range(max(len(files), len(functions))):
            lines.append(f"| {_spot(files, i)} | | {_spot(functions, i)} |")
    return lines


def _spot(spots: list[dict[str, Any]], i: int) -> str:
    """`name` | share, or two empty cells."""
    if i >= len(spots):
        return " | "
    return f"`{spots[i]['name']}` | {spots[i]['share']:.1%}"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(18, 6))
    rows = _rows(results)
    ax1.barh(
        [name for name, _, _, _ in rows],
        [0 if math.isnan(v) else v for _, v, _, _ in rows],
        color=["#2a7" if name.startswith("bouncewire") else "#888" for name, _, _, _ in rows],
    )
    ax1.invert_yaxis()
    ax1.set_xlabel("records/s (green: bouncewire)")
    ax1.set_title("Throughput")
    _plot_latency(ax2, results.get("latency", []))
    outage = results.get("outage") or {}
    samples = outage.get("samples", [])
    ax3.plot([t for t, _ in samples], [kb / 1024 for _, kb in samples])
    if outage:
        ax3.axvline(outage["outage_seconds"], color="#c33", linestyle="--", label="sink back")
        ax3.legend()
    ax3.set_xlabel("s since start")
    ax3.set_ylabel("VmRSS (MB)")
    ax3.set_title("Consumer RSS through a 503 outage")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_latency(ax: Any, rows: list[dict[str, Any]]) -> None:
    keys = ("p50", "p90", "p99", "p99.9")
    width = 0.8 / max(len(rows), 1)
    for i, row in enumerate(rows):
        ax.bar(
            [k + i * width for k in range(len(keys))],
            [row[k] for k in keys],
            width,
            label=f"{row['offered_rate']:g} events/s",
        )
    ax.axhline(LINGER_MS + 100, color="#c33", linestyle="--", label="target p99 (at the top load)")
    ax.set_xticks([k + width * (len(rows) - 1) / 2 for k in range(len(keys))], keys)
    ax.set_ylabel("ms")
    ax.set_title("Event-to-callback latency")
    ax.legend()
