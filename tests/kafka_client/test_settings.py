"""Settings: the documented merge order, and secrets that stay hidden."""

from __future__ import annotations

from bouncewire.kafka_client import KafkaSettings, Secret


def test_merge_order_defaults_extra_connection_overrides() -> None:
    settings = KafkaSettings(bootstrap_servers="b:9092",
                             extra={"linger.ms": "50", "bootstrap.servers": "evil:1"})
    merged = settings.merged({"linger.ms": 5, "acks": "all"}, {"acks": "1"})
    assert merged["linger.ms"] == "50"  # extra beats component defaults
    assert merged["bootstrap.servers"] == "b:9092"  # connection settings beat extra
    assert merged["acks"] == "1"  # overrides win


def test_sasl_settings_reveal_the_password_only_in_the_client_config() -> None:
    settings = KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                             sasl_username="bw", sasl_password=Secret("s3cr3t-pw"))
    assert settings.as_librdkafka()["sasl.password"] == "s3cr3t-pw"
    assert settings.as_librdkafka()["security.protocol"] == "sasl_ssl"
    assert "s3cr3t-pw" not in repr(settings)


def test_extra_is_read_only() -> None:
    settings = KafkaSettings(extra={"a": "1"})
    try:
        settings.extra["a"] = "2"  # type: ignore[index]
    except TypeError:
        pass
    assert settings.extra["a"] == "1"
