"""bench.mail_parse_bench runs at toy size: every fixture parsed, the DSN subset found.

No timing assertions (performance is measured by `make bench`, not by tests).
"""

from __future__ import annotations

from bench import mail_parse_bench, report


def test_runs_over_the_fixture_corpus() -> None:
    result = mail_parse_bench.run(seconds=0.05)
    assert result["all"]["distinct_messages"] == len(mail_parse_bench.corpus())
    assert 0 < result["dsn"]["distinct_messages"] < result["all"]["distinct_messages"]
    assert result["all"]["records"] >= result["all"]["distinct_messages"]
    assert result["dsn"]["rate"] > 0


def test_report_rows_name_the_mail_parse_scenarios() -> None:
    results = {
        "mail_parse": mail_parse_bench.run(seconds=0.02),
        "consumer": {},
        "producer": {},
        "config": {"records": 1},
    }
    labels = [label for label, *_ in report._rows(results)]
    assert any("mail parse, RFC 3464" in label for label in labels)
