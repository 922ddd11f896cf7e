"""`unsubscribe-link` and `unsubscribe-server` as commands: real processes, real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bouncewire.kafka_client import KafkaSettings, create_topics
from bouncewire.producers.signed_addresses import verify_address
from bouncewire.producers.unsubscribe import Keyring, verify
from bouncewire.schemas import Codec, SchemaStore
from tests.producers.unsubscribe.unsubscribe_harness import PARTITIONS, LiveService, free_port

SECRET = "cli-secret-" + "z" * 32
KEYS = f"k7:{SECRET}"
# What `bouncewire <command>` does once cli.py registers add_unsubscribe_commands.
RUNNER = (
    "import argparse, sys\n"
    "from bouncewire import logs\n"
    "from bouncewire._unsubscribe import add_unsubscribe_commands\n"
    "parser = argparse.ArgumentParser(prog='bouncewire')\n"
    "add_unsubscribe_commands(parser.add_subparsers(dest='command', required=True))\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "logs.configure(getattr(args, 'log_level', 'info'))\n"
    "sys.exit(args.handler(args))\n"
)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEWIRE_")}
    return {**env, **extra}


def bouncewire(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", RUNNER, *argv], capture_output=True, text=True,
                          env=env if env is not None else clean_env(), timeout=60, check=False)


def test_link_prints_url_and_both_header_lines() -> None:
    env = clean_env(BOUNCEWIRE_UNSUBSCRIBE_SECRET=KEYS)
    result = bouncewire("unsubscribe-link", "reader@example.com", "--public-url",
                        "https://mail.example.com/", "--campaign", "c9", "--meta", "m1", env=env)
    assert result.returncode == 0, result.stderr
    url, unsubscribe, post = result.stdout.splitlines()
    assert url.startswith("https://mail.example.com/u/1.k7.")
    assert unsubscribe == f"List-Unsubscribe: <{url}>"
    assert post == "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    claims = verify(Keyring.parse(KEYS), url.rsplit("/", 1)[1])
    assert (claims.email, claims.campaign_id, claims.meta) == ("reader@example.com", "c9", "m1")


def test_link_with_a_mailto_domain_adds_a_signed_mailto_to_list_unsubscribe() -> None:
    env = clean_env(BOUNCEWIRE_UNSUBSCRIBE_SECRET=KEYS)
    result = bouncewire("unsubscribe-link", "reader@example.com", "--public-url",
                        "https://mail.example.com", "--campaign", "c9",
                        "--mailto-domain", "Unsub.Example.com", env=env)
    assert result.returncode == 0, result.stderr
    url, mailto, unsubscribe, post = result.stdout.splitlines()
    assert mailto.startswith("mailto:unsubscribe+v1.k7.") and mailto.endswith("@unsub.example.com")
    assert unsubscribe == f"List-Unsubscribe: <{url}>, <{mailto}>"
    assert post == "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    claims = verify_address(Keyring.parse(KEYS), mailto.removeprefix("mailto:"), "unsubscribe")
    assert (claims.email, claims.campaign_id) == ("reader@example.com", "c9")


def test_link_reads_keys_from_a_secret_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "keys"
    secret_file.write_text(KEYS + "\n")
    result = bouncewire("unsubscribe-link", "a@example.com", "--public-url",
                        "https://m.example.com", "--secret-file", str(secret_file))
    assert result.returncode == 0, result.stderr
    assert "/u/1.k7." in result.stdout


@pytest.mark.parametrize(
    ("env_keys", "argv", "message"),
    [
        (None, ["a@example.com", "--public-url", "https://m.example.com"], "no signing key"),
        ("k1:short", ["a@example.com", "--public-url", "https://m.example.com"],
         "at least 16 bytes"),
        (KEYS, ["a@example.com", "--public-url", "http://m.example.com"], "https"),
        (KEYS, ["not-an-address", "--public-url", "https://m.example.com"], "invalid_address"),
    ],
    ids=["no-secret", "weak-secret", "plain-http", "bad-address"],
)
def test_link_refuses_bad_input_without_printing_secrets(
    env_keys: str | None, argv: list[str], message: str
) -> None:
    env = clean_env(**({"BOUNCEWIRE_UNSUBSCRIBE_SECRET": env_keys} if env_keys else {}))
    result = bouncewire("unsubscribe-link", *argv, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert SECRET not in result.stderr and "short" not in result.stderr


@contextmanager
def server_process(bootstrap: str, topic: str, port: int) -> Iterator[subprocess.Popen[str]]:
    argv = ["unsubscribe-server", "--port", str(port), "--public-url",
            f"http://127.0.0.1:{port}", "--bootstrap-servers", bootstrap,
            "--unsubscribes-topic", topic]
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, *argv], text=True,
                            env=clean_env(BOUNCEWIRE_UNSUBSCRIBE_SECRET=KEYS),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def wait_healthy(base_url: str, proc: subprocess.Popen[str]) -> None:
    with httpx.Client(timeout=1.0) as client:
        for _ in range(300):
            assert proc.poll() is None, "the server exited early"
            try:
                if client.get(f"{base_url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            try:
                proc.wait(0.1)
            except subprocess.TimeoutExpired:
                continue
    raise AssertionError("the server never became healthy")


@pytest.mark.integration
def test_server_command_publishes_one_click_and_stops_cleanly(kafka_bootstrap: str) -> None:
    topic = f"unsub-cli-{uuid.uuid4().hex[:8]}"
    create_topics(KafkaSettings(bootstrap_servers=kafka_bootstrap), [topic],
                  partitions=PARTITIONS)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    service = LiveService(base_url, topic, kafka_bootstrap, Codec(SchemaStore.load()))
    link = bouncewire("unsubscribe-link", "cli.reader@example.com", "--public-url", base_url,
                      env=clean_env(BOUNCEWIRE_UNSUBSCRIBE_SECRET=KEYS)).stdout.split()[0]
    with server_process(kafka_bootstrap, topic, port) as proc:
        wait_healthy(base_url, proc)
        start = service.end_offsets()
        response = httpx.post(link, data={"List-Unsubscribe": "One-Click"}, timeout=30)
        assert response.status_code == 200
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0
    records = [service.decode(m) for m in service.published_since(start)]
    assert [(r["email"], r["source"]) for r in records] == [("cli.reader@example.com",
                                                              "one_click")]
    assert "unsubscribe published" in stderr
    token = link.rsplit("/", 1)[1]
    for secretish in ("cli.reader@example.com", "cli.reader", SECRET, token[8:40]):
        assert secretish not in stderr
