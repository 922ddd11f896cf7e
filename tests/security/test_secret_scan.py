"""Nothing secret in anything a run produced: the callback URLs' tokens and account path,
the SASL password (right or wrong), and the recipients' addresses must not appear in any log
line, metrics or health page, receiver output, dead-letter header, error message or repr.
(Masked forms such as `a***@example.com` are fine: they are not the address.)"""

from __future__ import annotations

import pytest

from tests.security.conftest import PipelineRun

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_the_run_produced_every_kind_of_artifact(pipeline_run: PipelineRun) -> None:
    """The scan below means something only if the run really printed and served things."""
    art = pipeline_run.artifacts
    assert "bouncewire_callbacks_total" in art["consumer /metrics"]
    assert '"msg"' in art["consume stderr"]  # JSON log lines
    assert "rejected 1 line" in art["produce send-results stderr"]
    assert "POST /" in art["receiver output"]
    assert "bouncewire.reason" in art["dead-letter headers"]
    assert "SASL authentication" in art["consume with wrong password"]
    assert "certificate verify failed" in art["produce with untrusted CA"]
    assert "Secret('**********')" in art["repr settings"]
    assert len(art) > 20


# The stand-in receiver (a dev tool playing CleverTap) prints the path each callback came to.
# bouncewire itself treats the path as secret (url_for_logs keeps scheme and host only).
def leaks(run: PipelineRun) -> set[tuple[str, str]]:
    return {(secret_name, artifact_name)
            for secret_name, secret in run.secrets.items()
            for artifact_name, text in run.artifacts.items()
            if secret in text}


def test_no_secret_or_address_appears_anywhere(pipeline_run: PipelineRun) -> None:
    assert leaks(pipeline_run) == set()
