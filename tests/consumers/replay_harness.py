"""Helpers for the replay and dead-letter tool tests: the `replay`/`dlq` commands parsed and
run in-process (or as a subprocess), with fast retry settings."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from bouncewire._replay import add_replay_commands
from bouncewire.kafka_client import TopicNames

ROOT = Path(__file__).resolve().parents[2]
FAST_FLAGS = ("--linger-ms", "200", "--request-timeout", "2", "--backoff-initial", "0.05",
              "--backoff-max", "0.5", "--max-retry-time", "20", "--drain-timeout", "10")
_ENTRY = ("import sys; from bouncewire import logs; logs.configure('info'); "
          "from tests.consumers.replay_harness import run_cli; sys.exit(run_cli(sys.argv[1:]))")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bouncewire")
    add_replay_commands(p.add_subparsers(dest="command", required=True))
    return p


def run_cli(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    code: int = args.handler(args)
    return code


def kafka_argv(bootstrap: str, topics: TopicNames) -> list[str]:
    return ["--bootstrap-servers", bootstrap, "--send-results-topic", topics.send_results,
            "--unsubscribes-topic", topics.unsubscribes, "--dlq-topic", topics.dlq]


def replay_argv(bootstrap: str, topics: TopicNames, start_s: int, end_s: int,
                checkpoint: Path, *extra: str) -> list[str]:
    return ["replay", *kafka_argv(bootstrap, topics), "--from", str(start_s), "--to",
            str(end_s), "--checkpoint", str(checkpoint), *FAST_FLAGS, *extra]


def urls(url: str) -> list[str]:
    return ["--bounce-callback-url", url, "--unsubscribe-callback-url", url]


def cli_process(argv: list[str]) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEWIRE_")}
    return subprocess.Popen([sys.executable, "-c", _ENTRY, *argv], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
