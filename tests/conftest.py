"""Shared test setup: the session's real Kafka broker (tests/kafka_cluster.py) and hypothesis
profiles. `HYPOTHESIS_PROFILE=ci` (the default under CI) keeps property tests deterministic."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.kafka_cluster"]

settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
