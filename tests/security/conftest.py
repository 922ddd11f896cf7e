"""A SASL_SSL (SCRAM-SHA-512) broker for the security tests: deploy/kafka/secure.sh on free
ports, certificates and credentials generated for this session, wiped at the end."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reliability.harness import free_port_range

SECURE_SH = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "secure.sh"


@dataclass(frozen=True)
class SecureKafka:
    bootstrap: str
    ca_location: str
    username: str
    password_file: Path

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def flags(self, password_file: Path | None = None, ca: str | None = None) -> list[str]:
        """CLI flags for this broker; the password always travels in a file."""
        return ["--bootstrap-servers", self.bootstrap, "--security-protocol", "SASL_SSL",
                "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", self.username,
                "--sasl-password-file", str(password_file or self.password_file),
                "--ssl-ca-location", ca or self.ca_location]


def secure_sh(command: str, port: int) -> str:
    result = subprocess.run(["bash", str(SECURE_SH), command],
                            env={**os.environ, "KAFKA_PORT": str(port)},
                            capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"secure.sh {command} failed:\n{result.stderr[-2000:]}")
    return result.stdout


@pytest.fixture(scope="session")
def secure_kafka() -> Iterator[SecureKafka]:
    port = free_port_range(2)
    try:
        secure_sh("up", port)
        info = dict(line.split("=", 1) for line in secure_sh("info", port).splitlines())
        yield SecureKafka(info["BOOTSTRAP"], info["CA_LOCATION"], info["SASL_USERNAME"],
                          Path(info["SASL_PASSWORD_FILE"]))
    finally:
        secure_sh("reset", port)


# ------------------------------------------------------------------ one full run to scan


@dataclass
class PipelineRun:
    """What one CLI producer + consumer + receiver run over SASL_SSL left behind."""

    secrets: dict[str, str]  # what must never show: name -> text
    artifacts: dict[str, str]  # everything it printed, served or raised: name -> text
    stats: dict[str, object]  # the receiver's /_stats
    consumer_exit: int
    dead_letters: int


@pytest.fixture(scope="session")
def pipeline_run(secure_kafka: SecureKafka, tmp_path_factory: pytest.TempPathFactory,
                 ) -> PipelineRun:
    from tests.security.secure_run import full_run  # imports this module: import late

    return full_run(secure_kafka, tmp_path_factory.mktemp("secure-run"))
