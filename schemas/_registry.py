"""Confluent Schema Registry framing: magic byte 0, 4-byte big-endian schema id, Avro body.

The registry is asked once per kind (register the latest version under the RecordNameStrategy
subject, i.e. the full record name) and once per unseen schema id on the read side; every
answer is cached, so no message ever costs a registry call after warm-up.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import warnings
from functools import cache
from typing import Any, Final, Protocol

import fastavro

from bouncewire.schemas._store import SchemaStore, SchemaVersion, crc64_avro_fingerprint
from bouncewire.schemas.exceptions import DecodeError, RegistryError

CONFLUENT_MAGIC: Final[int] = 0x00
CONFLUENT_HEADER_SIZE: Final[int] = 5
_NOT_FOUND: Final[int] = 404


class RegistryClient(Protocol):
    """The part of ``confluent_kafka.schema_registry.SchemaRegistryClient`` the codec uses."""

    def register_schema(self, subject_name: str, schema: Any) -> int: ...

    def get_schema(self, schema_id: int) -> Any: ...


@cache
def schema_registry_module() -> Any:
    """``confluent_kafka.schema_registry``, imported on first use.

    The import is heavy (~0.2 s) and only registry users should pay it. Through it authlib
    warns about its httpx fallback (when httpx2 is not installed) and, on import, puts its
    own "always" filter in front of the caller's: ours goes in front of that one.
    """
    with warnings.catch_warnings():
        with contextlib.suppress(ImportError):
            importlib.import_module("authlib.deprecate")  # installs its filter before ours
        warnings.simplefilter("ignore", DeprecationWarning)
        import confluent_kafka.schema_registry as module
    return module


def registry_client(url: str) -> RegistryClient:
    """A ``SchemaRegistryClient`` for ``url`` (imported only when a registry is used)."""
    client: RegistryClient = schema_registry_module().SchemaRegistryClient({"url": url})
    return client


def _vendor() -> tuple[type[Any], type[Exception]]:
    """confluent_kafka's ``Schema`` and ``SchemaRegistryError`` classes."""
    module = schema_registry_module()
    return module.Schema, module.SchemaRegistryError


class RegistryFraming:
    """Schema ids for our schema versions, both ways, cached."""

    def __init__(self, client: RegistryClient, store: SchemaStore) -> None:
        self._client = client
        self._store = store
        self._headers: dict[str, bytes] = {}
        self._versions: dict[int, SchemaVersion] = {}
        self._foreign: set[int] = set()

    def header(self, version: SchemaVersion) -> bytes:
        """The 5-byte header announcing ``version``; registers it on first use."""
        header = self._headers.get(version.kind)
        if header is None:
            schema_id = self._register(version)
            header = bytes([CONFLUENT_MAGIC]) + schema_id.to_bytes(4, "big")
            self._versions[schema_id] = version
            self._headers[version.kind] = header
        return header

    def version(self, schema_id: int) -> SchemaVersion:
        """Our schema version registered under ``schema_id``; DecodeError when it is not ours."""
        version = self._versions.get(schema_id)
        if version is None:
            if schema_id in self._foreign:
                raise _foreign_schema(schema_id)
            version = self._look_up(schema_id)
            self._versions[schema_id] = version
        return version

    def _register(self, version: SchemaVersion) -> int:
        schema_class, registry_error = _vendor()
        try:
            schema_id = self._client.register_schema(
                version.full_name, schema_class(version.source, "AVRO")
            )
        except registry_error as exc:
            raise RegistryError(f"registering {version!r} failed: {exc}") from exc
        except Exception as exc:  # transport errors come from httpx and friends
            raise RegistryError(f"registering {version!r} failed: {type(exc).__name__}") from exc
        return int(schema_id)

    def _look_up(self, schema_id: int) -> SchemaVersion:
        _, registry_error = _vendor()
        try:
            registered = self._client.get_schema(schema_id)
        except registry_error as exc:
            if getattr(exc, "http_status_code", None) == _NOT_FOUND:
                raise DecodeError(
                    "unknown_schema_id", f"the registry has no schema id {schema_id}"
                ) from exc
            raise RegistryError(f"looking up schema id {schema_id} failed: {exc}") from exc
        except Exception as exc:  # transport errors come from httpx and friends
            raise RegistryError(
                f"looking up schema id {schema_id} failed: {type(exc).__name__}"
            ) from exc
        version = self._ours(registered)
        if version is None:
            self._foreign.add(schema_id)
            raise _foreign_schema(schema_id)
        return version

    def _ours(self, registered: Any) -> SchemaVersion | None:
        if getattr(registered, "schema_type", "AVRO") not in (None, "AVRO"):
            return None
        try:
            parsed = fastavro.parse_schema(json.loads(registered.schema_str))
        except Exception:  # any schema we cannot parse is not one of ours
            return None
        return self._store.by_fingerprint(crc64_avro_fingerprint(parsed))


def _foreign_schema(schema_id: int) -> DecodeError:
    return DecodeError(
        "unknown_schema_id", f"schema id {schema_id} is not a schema version kept in schemas/"
    )
