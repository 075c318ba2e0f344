"""One frozen settings object; every field falls back to an environment variable.

Configuration, running logic and saved state are three different things (see
STYLE.md): this module is only the first. Each :class:`Settings` field is read
from ``TUNESTREAM_<FIELD>`` (upper case), and the CLI's ``--help`` names that
variable for every flag.

>>> s = Settings.from_env({"TUNESTREAM_PARTITIONS": "8"})
>>> s.partitions, s.events_topic
(8, 'listening-events')
>>> Settings.from_env({"TUNESTREAM_PARTITIONS": "many"})
Traceback (most recent call last):
...
streams.settings.SettingsError: TUNESTREAM_PARTITIONS='many' is not a whole number
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

ENV_PREFIX = "TUNESTREAM_"
EMBEDDED = "embedded"


class SettingsError(ValueError):
    """A setting has a value it cannot take; the message names the variable."""


def _doc(text: str, **kw: Any) -> Any:
    return field(metadata={"help": text}, **kw)


@dataclass(frozen=True)
class Settings:
    """Everything a worker, producer or demo can be told."""

    broker: str = _doc(
        "Kafka bootstrap servers (host:port[,host:port]); 'embedded' starts a Tansu broker "
        "on a free loopback port (demo and tests)",
        default=EMBEDDED,
    )
    app_id: str = _doc("Faust application id = consumer group id", default="tunestream")
    partitions: int = _doc("partitions of every topic tunestream creates", default=4)
    events_topic: str = _doc("input topic of listening events", default="listening-events")
    clean_topic: str = _doc(
        "validated, deduplicated events, keyed by user_id", default="listening-events-clean"
    )
    dlq_topic: str = _doc("dead-letter topic for rejected input", default="listening-events-dlq")
    recommendations_topic: str = _doc(
        "output topic of recommendation lists (compacted)", default="recommendations"
    )
    catalog_topic: str = _doc(
        "compacted topic of track metadata, keyed by track_id; every worker reads all of it",
        default="track-catalog",
    )
    track_events_topic: str = _doc(
        "accepted events re-keyed by track_id, feeding the per-track statistics",
        default="listening-events-by-track",
    )
    web_host: str = _doc("address of the worker's HTTP server", default="127.0.0.1")
    web_port: int = _doc("port of the worker's HTTP server", default=6066)
    advertised_host: str = _doc(
        "host name other workers use to reach this one (table routing); empty: web_host",
        default="",
    )
    store: str = _doc("Faust table store: memory:// or rocksdb://", default="memory://")
    data_dir: str = _doc("directory for worker state (RocksDB, etc.)", default=".tunestream")
    log_level: str = _doc("log level of the worker", default="WARNING")
    log_format: str = _doc("worker log lines: json (one object per line) or text", default="json")
    fetch_max_wait_ms: int = _doc(
        "consumer fetch wait; latency follows it on Tansu (Faust hard-codes 1500)", default=50
    )
    producer_linger_ms: int = _doc("producer linger: batches sends on the wire", default=5)
    session_timeout_s: float = _doc(
        "consumer group session timeout: how fast a dead worker's partitions move", default=6.0
    )
    heartbeat_interval_s: float = _doc("consumer group heartbeat interval", default=1.0)
    rebalance_timeout_s: float = _doc("consumer group rebalance timeout", default=10.0)
    commit_interval_s: float = _doc("how often consumed offsets are committed", default=1.0)
    max_message_bytes: int = _doc("larger input messages are dead-lettered", default=1_048_576)
    max_batch_events: int = _doc("most events one input message may carry", default=1000)
    max_future_ms: int = _doc(
        "events stamped further than this in the future are rejected", default=300_000
    )
    dedupe_ids_per_user: int = _doc(
        "recent event ids remembered per user to drop duplicates", default=256
    )
    allowed_lateness_ms: int = _doc(
        "events older than a user's newest event by more than this are dead-lettered "
        "as too_late; within it, out-of-order events update the right state",
        default=300_000,
    )
    session_gap_ms: int = _doc("inactivity that ends a listening session", default=1_800_000)
    list_size: int = _doc("items in a recommendation list", default=10)
    refresh_interval_s: float = _doc("least time between two lists for the same user", default=2.0)
    popularity_half_life_s: float = _doc(
        "half-life of the popularity counts behind popularity-v0", default=3600.0
    )
    latency_objective_s: float = _doc(
        "end-to-end latency objective (event time to list sent); a histogram bucket sits here",
        default=1.0,
    )
    stall_after_s: float = _doc(
        "/livez fails when one message takes longer, or input waits unprocessed this long",
        default=60.0,
    )
    security_protocol: str = _doc(
        "Kafka security: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", default="PLAINTEXT"
    )
    sasl_mechanism: str = _doc(
        "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", default="PLAIN"
    )
    sasl_username: str = _doc("SASL user name", default="")
    sasl_password: str = _doc(
        "SASL password (prefer the _FILE variant); never logged", default="", repr=False
    )
    sasl_password_file: str = _doc("file holding the SASL password (a mounted secret)", default="")
    ssl_cafile: str = _doc("CA bundle to verify the brokers (SSL, SASL_SSL)", default="")
    ssl_certfile: str = _doc("client certificate for mutual TLS", default="")
    ssl_keyfile: str = _doc("client private key for mutual TLS", default="")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every field from ``TUNESTREAM_*`` variables, then apply ``overrides``."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = env_name(f.name)
            if name in env and env[name] != "":
                values[f.name] = _parse(name, env[name], f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (and checked)."""
        settings = dataclasses.replace(self, **changes)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise :class:`SettingsError` for values no worker could run with."""
        positive = (
            "partitions",
            "max_message_bytes",
            "max_batch_events",
            "list_size",
            "dedupe_ids_per_user",
            "session_timeout_s",
            "heartbeat_interval_s",
            "popularity_half_life_s",
            "commit_interval_s",
            "latency_objective_s",
            "stall_after_s",
            "session_gap_ms",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{env_name(name)} must be > 0, got {getattr(self, name)!r}")
        for name in (
            "fetch_max_wait_ms",
            "producer_linger_ms",
            "refresh_interval_s",
            "max_future_ms",
            "allowed_lateness_ms",
            "web_port",
        ):
            if getattr(self, name) < 0:
                raise SettingsError(f"{env_name(name)} must be >= 0, got {getattr(self, name)!r}")
        if self.heartbeat_interval_s >= self.session_timeout_s:
            raise SettingsError("TUNESTREAM_HEARTBEAT_INTERVAL_S must be below the session timeout")
        if self.allowed_lateness_ms >= self.session_gap_ms:
            # A late event could then split or join sessions already closed and emitted.
            raise SettingsError("TUNESTREAM_ALLOWED_LATENESS_MS must be below the session gap")
        self._check_choices()
        if not self.store.startswith(("memory://", "rocksdb://", "rocksdict://")):
            raise SettingsError(f"TUNESTREAM_STORE={self.store!r}: use memory:// or rocksdb://")

    def _check_choices(self) -> None:
        choices = {
            "log_format": ("json", "text"),
            "security_protocol": ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
            "sasl_mechanism": ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise SettingsError(
                    f"{env_name(name)}={getattr(self, name)!r}: use one of {', '.join(allowed)}"
                )
        if self.security_protocol.startswith("SASL") and not self.sasl_username:
            raise SettingsError(
                f"TUNESTREAM_SECURITY_PROTOCOL={self.security_protocol} needs "
                "TUNESTREAM_SASL_USERNAME"
            )

    @property
    def embedded(self) -> bool:
        """True when the broker is to be started here rather than reached."""
        return self.broker == EMBEDDED

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` list for aiokafka; fails while the broker is still 'embedded'."""
        if self.embedded:
            raise SettingsError("the embedded broker has not been started: no address yet")
        return self.broker.removeprefix("kafka://")


def env_name(field_name: str) -> str:
    """``partitions`` -> ``TUNESTREAM_PARTITIONS``."""
    return ENV_PREFIX + field_name.upper()


def help_of(field_name: str) -> str:
    """The help text of a field, for the CLI."""
    for f in fields(Settings):
        if f.name == field_name:
            return str(f.metadata["help"])
    raise KeyError(field_name)


def _parse(name: str, raw: str, kind: Any) -> Any:
    kind = kind if isinstance(kind, str) else kind.__name__
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        what = "a whole number" if kind == "int" else "a number"
        raise SettingsError(f"{name}={raw!r} is not {what}") from None
    return raw
