"""The CLI over a SASL_SSL (SCRAM-SHA-512) listener: producer and consumer work; a wrong
password or a CA that did not sign the broker's certificate fails fast, says why, and never
prints a secret."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.security.conftest import PipelineRun, SecureKafka
from tests.security.secure_run import clean_env, untrusted_ca

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
BROKER_TIMEOUT_S = 5
FAST_S = 20  # the broker timeout plus process start-up, with room for a loaded machine


def test_producer_and_consumer_deliver_over_sasl_ssl(pipeline_run: PipelineRun) -> None:
    # alice (hard), bob (soft) and erin (unsubscribe); the receiver's one partial success
    # dead-letters one of them, dave's delivered result needs no callback.
    assert pipeline_run.stats["unique_events"] == 2
    assert pipeline_run.stats["unprocessed_events"] == 1
    assert pipeline_run.dead_letters == 1
    assert pipeline_run.consumer_exit == 0


def produce_with(kafka: SecureKafka, tmp_path: Path, *, password: str | None = None,
                 ca: str | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    lines = tmp_path / "one.jsonl"
    lines.write_text('{"email": "x@example.com", "smtp_code": 550}\n')
    password_file = None
    if password is not None:
        password_file = tmp_path / "pw"
        password_file.write_text(password)
    argv = [sys.executable, "-m", "bouncewire", "produce", "send-results", str(lines),
            "--broker-timeout", str(BROKER_TIMEOUT_S),
            *kafka.flags(password_file=password_file, ca=ca)]
    started = time.monotonic()
    done = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, timeout=120,
                          check=False)
    return done, time.monotonic() - started


def test_a_wrong_password_fails_fast_and_says_authentication(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    done, took = produce_with(secure_kafka, tmp_path, password="not-the-password-4711")
    assert done.returncode == 2
    assert took < FAST_S
    assert "authentication" in done.stderr.lower()
    assert "nothing published" in done.stderr
    assert "not-the-password-4711" not in done.stderr + done.stdout
    assert secure_kafka.password not in done.stderr + done.stdout


def test_an_untrusted_certificate_fails_fast_and_says_certificate(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    done, took = produce_with(secure_kafka, tmp_path, ca=str(untrusted_ca(tmp_path)))
    assert done.returncode == 2
    assert took < FAST_S
    assert "certificate verify failed" in done.stderr
    assert secure_kafka.password not in done.stderr + done.stdout


def test_the_consumer_with_a_wrong_password_exits_non_zero(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    wrong = tmp_path / "pw"
    wrong.write_text("not-the-password-4711")
    argv = [sys.executable, "-m", "bouncewire", "consume", *secure_kafka.flags(wrong),
            "--bounce-callback-url", "http://127.0.0.1:9/x", "--unsubscribe-callback-url",
            "http://127.0.0.1:9/x"]
    proc = subprocess.Popen(argv, env=clean_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=FAST_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"still running after {FAST_S}s")
    assert proc.returncode != 0
    assert "authentication" in err.lower()
    assert "not-the-password-4711" not in err


def test_topics_create_with_a_wrong_password_fails_without_a_traceback(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    wrong = tmp_path / "pw"
    wrong.write_text("not-the-password-4711")
    argv = [sys.executable, "-m", "bouncewire", "topics", "create", *secure_kafka.flags(wrong)]
    done = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "not-the-password-4711" not in done.stderr
