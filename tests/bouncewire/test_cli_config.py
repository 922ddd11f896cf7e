"""Configuration mistakes fail at start-up, naming the flag or variable — never the secret."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bouncewire._flags import unknown_env
from bouncewire.cli import build_parser
from bouncewire.consumers.delivery import callback_url_problem, url_for_logs
from bouncewire.kafka_client import Secret


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bouncewire", *args], capture_output=True,
                          text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", **(env or {})})


def test_a_misspelt_environment_variable_stops_every_command() -> None:
    done = run("classify", env={"BOUNCEWIRE_BOOTSTRAP_SERVRS": "127.0.0.1:9092"})
    assert done.returncode == 2
    assert "BOUNCEWIRE_BOOTSTRAP_SERVRS" in done.stderr


def test_known_variables_of_other_commands_and_secrets_are_accepted() -> None:
    parser = build_parser()
    environ = {"BOUNCEWIRE_LINGER_MS": "5", "BOUNCEWIRE_SASL_PASSWORD": "x",
               "BOUNCEWIRE_UNSUBSCRIBE_SECRET": "k:y", "BOUNCEWIRE_PUBLIC_URL": "https://u",
               "OTHER": "1"}
    assert unknown_env(parser, environ) == []


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://eu1.clevertap.example/cb?token=abc", None),
        ("http://127.0.0.1:8080/bounce", None),
        ("ftp://host/token", "must start with https:// (or http://)"),
        ("clevertap.example/cb", "must start with https:// (or http://)"),
        ("https:///path-only", "has no host"),
        ("http://[::1", "is not a URL"),
    ],
)
def test_callback_url_problems(url: str, problem: str | None) -> None:
    assert callback_url_problem(url) == problem


def test_a_bad_callback_url_is_refused_without_echoing_it() -> None:
    done = run("consume", "--bounce-callback-url", "ftp://h/acct-token-123",
               "--unsubscribe-callback-url", "https://h/u")
    assert done.returncode == 1
    assert "--bounce-callback-url must start with https://" in done.stderr
    assert "acct-token-123" not in done.stderr


def test_urls_in_logs_keep_only_scheme_and_host() -> None:
    shown = url_for_logs(Secret("https://in1.api.clevertap.com/1/bounce/ACCT-TOKEN?x=SECRET"))
    assert shown == "https://in1.api.clevertap.com/…"


def test_secrets_never_show_themselves() -> None:
    secret = Secret("hunter2-password")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}" and "hunter2" not in repr([secret])
    assert secret.reveal() == "hunter2-password"
