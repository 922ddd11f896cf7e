"""Fixtures: a certificate, the users file, the scripted upstream and one gateway process
per module (tests change the upstream's script in place between cases)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.producers.gateway.gateway_harness import (
    LiveGateway,
    ResultTopic,
    make_users_file,
    running_gateway,
)
from tests.producers.smtp_server import (
    Script,
    SelfSignedCert,
    Transcript,
    scripted_smtp,
    self_signed_cert,
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway")


@pytest.fixture(scope="module")
def cert(workdir: Path) -> SelfSignedCert:
    made = self_signed_cert(workdir)
    if made is None:
        pytest.skip("openssl is not installed")
    return made


@pytest.fixture(scope="module")
def users_file(workdir: Path) -> Path:
    return make_users_file(workdir / "users")


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[int, Script, Transcript]]:
    script = Script()
    with scripted_smtp(script) as (port, transcript):
        yield port, script, transcript


@pytest.fixture(scope="module")
def results(kafka_bootstrap: str) -> ResultTopic:
    return ResultTopic.create(kafka_bootstrap)


@pytest.fixture(scope="module")
def gateway(
    workdir: Path, kafka_bootstrap: str, results: ResultTopic, cert: SelfSignedCert,
    users_file: Path, upstream: tuple[int, Script, Transcript],
) -> Iterator[LiveGateway]:
    with running_gateway(workdir, bootstrap=kafka_bootstrap, topic=results.name,
                         upstream_port=upstream[0], cert=cert, users_file=users_file) as live:
        yield live
