"""The short variant of `make reliability`: every fault scenario of reliability/ at small
size against the session's broker (scenarios that kill brokers start their own). Each test
fails with the scenario's figures and every broken promise."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from reliability.harness import Context
from reliability.model import Scenario, format_table
from reliability.run import SCENARIOS
from reliability.scenarios import leader_kill

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture
def ctx(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Context]:
    yield Context(kafka_bootstrap, short=True, workdir=tmp_path, say=lambda _text: None)


def consumer_logs(workdir: Path) -> str:
    """The tail of every consumer's stderr: what a failed scenario's reader needs."""
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
                     for log in sorted(workdir.glob("*.log")))


def needs_room(module: ModuleType) -> object:
    """The cluster scenario starts three more JVMs: ~45 s on two cores. It always runs in
    `make reliability`; here only on request."""
    if module is not leader_kill:
        return module
    return pytest.param(module, marks=pytest.mark.skipif(
        os.environ.get("RELIABILITY_CLUSTER") != "1",
        reason="3-node cluster is heavy for make test; it runs in make reliability "
               "(RELIABILITY_CLUSTER=1 includes it here)"))


@pytest.mark.parametrize("scenario", [needs_room(m) for m in SCENARIOS],
                         ids=[m.NAME for m in SCENARIOS])
def test_scenario_keeps_its_promise(scenario: ModuleType, ctx: Context) -> None:
    result: Scenario = scenario.run(ctx)
    assert result.published > 0
    assert result.passed, f"\n{format_table([result])}\n{consumer_logs(ctx.workdir)}"
