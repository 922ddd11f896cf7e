"""`bouncewire --version` and `--help`: each flag's default beside its variable, no secret."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

import bouncewire
from bouncewire._flags import add_flag, env_name, is_secret_flag
from bouncewire.cli import build_parser


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bouncewire", *args], capture_output=True,
                          text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", **(env or {})})


def commands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub
                yield from commands(sub)


def env_flags(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for command in commands(parser):
        for action in command._actions:
            if action.help and "[" in action.help and "env BOUNCEWIRE_" in action.help:
                yield action


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    assert bouncewire.__version__ == version("bouncewire")
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"bouncewire {version('bouncewire')}"


def test_every_flag_with_a_default_shows_it_beside_its_variable() -> None:
    flags = list(env_flags(build_parser()))
    assert len(flags) > 30
    for action in flags:
        flag = action.option_strings[-1]
        assert f"env {env_name(flag)}]" in str(action.help)
        shown = action.default is not None and action.default is not False
        shown = shown and not is_secret_flag(flag)
        assert (f"[default: {action.default};" in str(action.help)) == shown, action.help


@pytest.mark.parametrize(
    ("flag", "secret"),
    [("--bounce-callback-url", True), ("--schema-registry-url", True),
     ("--sasl-password-file", True), ("--secret-file", True), ("--linger-ms", False),
     ("--bootstrap-servers", False)],
)
def test_secret_looking_flags(flag: str, secret: bool) -> None:
    assert is_secret_flag(flag) == secret


def test_a_secret_set_in_the_environment_never_shows_in_help() -> None:
    env = {"BOUNCEWIRE_BOUNCE_CALLBACK_URL": "https://ct.example/cb?token=ACCT-TOKEN-1",
           "BOUNCEWIRE_UNSUBSCRIBE_CALLBACK_URL": "https://ct.example/u?token=ACCT-TOKEN-2",
           "BOUNCEWIRE_LINGER_MS": "250"}
    done = run("consume", "--help", env=env)
    assert done.returncode == 0, done.stderr
    assert "ACCT-TOKEN" not in done.stdout
    assert "default: 250 (from the environment)" in " ".join(done.stdout.split())


def test_a_percent_in_a_default_does_not_break_help(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOUNCEWIRE_GROUP_ID", raising=False)
    parser = argparse.ArgumentParser()
    add_flag(parser, "--group-id", default="100%-group")
    assert "default: 100%-group;" in parser.format_help()
    add_flag(parser, "--dry-run", action="store_true")
    assert "--dry-run" in parser.format_help()
