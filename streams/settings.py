"""One frozen settings object; every field falls back to an environment variable.

Configuration, running logic and saved state are three different things (see
STYLE.md): this module is only the first. Each :class:`Settings` field is read
from ``TUNESTREAM_<FIELD>`` (upper case), and the CLI's ``--help`` names that
variable for every flag.

Every field declares what it may hold next to its default (a numeric range, a
list of choices, a syntax), and :meth:`Settings.check` enforces all of it from
those declarations; an error names the variable, the value and what is allowed.

>>> s = Settings.from_env({"TUNESTREAM_PARTITIONS": "8"})
>>> s.partitions, s.events_topic
(8, 'listening-events')
>>> Settings.from_env({"TUNESTREAM_PARTITIONS": "many"})
Traceback (most recent call last):
...
streams.settings.SettingsError: TUNESTREAM_PARTITIONS='many' is not a whole number
>>> Settings.from_env({"TUNESTREAM_WEB_PORT": "70000"})
Traceback (most recent call last):
...
streams.settings.SettingsError: TUNESTREAM_WEB_PORT=70000: must be a whole number in 0..65535
>>> range_of("session_timeout_s")
'> 0 and <= 2147483'
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any, Final

from features.errors import TunestreamError

ENV_PREFIX = "TUNESTREAM_"
EMBEDDED = "embedded"

#: Kafka carries counts and sizes as signed 32-bit integers ...
INT32_MAX: Final = 2**31 - 1
#: ... and timeouts as int32 milliseconds: the most seconds a timeout can say.
MAX_KAFKA_SECONDS: Final = INT32_MAX // 1000
#: Room a forwarded or dead-lettered message needs around the input's bytes.
ENVELOPE_HEADROOM_BYTES: Final = 65_536
#: Python's logging levels, the only ones TUNESTREAM_LOG_LEVEL may name.
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
_HOST_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9_])?")
_PORT = re.compile(r"[0-9]{1,5}")


class SettingsError(TunestreamError, ValueError):
    """A setting has a value it cannot take; the message names the variable."""


def _doc(
    text: str,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] | None = None,
    ignore_case: bool = False,
    syntax: str | None = None,
    **kw: Any,
) -> Any:
    """A field with its help text and what it may hold.

    ``minimum`` / ``maximum`` are inclusive bounds, ``above`` an exclusive lower
    bound; a float must also be finite. ``choices`` lists the allowed strings
    (``ignore_case`` to compare them case-insensitively); ``syntax`` names a
    string syntax: ``broker``, ``topic`` or ``store``.
    """
    metadata: dict[str, Any] = {"help": text}
    for key, value in (
        ("minimum", minimum),
        ("above", above),
        ("maximum", maximum),
        ("choices", choices),
        ("syntax", syntax),
    ):
        if value is not None:
            metadata[key] = value
    if ignore_case:
        metadata["ignore_case"] = True
    return field(metadata=metadata, **kw)


@dataclass(frozen=True)
class Settings:
    """Everything a worker, producer or demo can be told."""

    broker: str = _doc(
        "Kafka bootstrap servers (host:port[,host:port]); 'embedded' starts a Tansu broker "
        "on a free loopback port (demo and tests)",
        default=EMBEDDED,
        syntax="broker",
    )
    app_id: str = _doc(
        "Faust application id = consumer group id (it also names the changelog topics)",
        default="tunestream",
        syntax="topic",
    )
    partitions: int = _doc(
        "partitions of every topic tunestream creates", default=4, above=0, maximum=INT32_MAX
    )
    events_topic: str = _doc(
        "input topic of listening events", default="listening-events", syntax="topic"
    )
    clean_topic: str = _doc(
        "validated, deduplicated events, keyed by user_id",
        default="listening-events-clean",
        syntax="topic",
    )
    dlq_topic: str = _doc(
        "dead-letter topic for rejected input", default="listening-events-dlq", syntax="topic"
    )
    recommendations_topic: str = _doc(
        "output topic of recommendation lists (compacted)",
        default="recommendations",
        syntax="topic",
    )
    catalog_topic: str = _doc(
        "compacted topic of track metadata, keyed by track_id; every worker reads all of it",
        default="track-catalog",
        syntax="topic",
    )
    editorial_topic: str = _doc(
        "compacted topic of editorial sets (curated tracks with a boost and a context), "
        "keyed by set name; every worker reads all of it",
        default="editorial-sets",
        syntax="topic",
    )
    track_events_topic: str = _doc(
        "accepted events re-keyed by track_id, feeding the per-track statistics",
        default="listening-events-by-track",
        syntax="topic",
    )
    trending_topic: str = _doc(
        "compacted topic of each by-track partition's top tracks; every worker reads all "
        "of it and ranks trending tracks from the merge",
        default="trending-tracks",
        syntax="topic",
    )
    training_examples_topic: str = _doc(
        "one training example per folded event, from the workers to the learner",
        default="training-examples",
        syntax="topic",
    )
    snapshots_topic: str = _doc(
        "compacted topic of signed model snapshots, from the learner to every worker",
        default="model-snapshots",
        syntax="topic",
    )
    learning: str = _doc(
        "on: workers send training examples, keep each user's taste vector and rank "
        "with the latest snapshot; off: lists from trending, editorial and the user's own "
        "artists, under the same re-ranking rules",
        default="on",
        choices=("on", "off"),
    )
    snapshot_key: str = _doc(
        "HMAC-SHA256 key signing model snapshots, at least 32 bytes (prefer the _FILE "
        "variant); the learner needs it, workers without it serve no snapshot; never logged",
        default="",
        repr=False,
    )
    snapshot_key_file: str = _doc(
        "file holding the snapshot signing key (a mounted secret)", default=""
    )
    snapshot_interval_s: float = _doc(
        "how often the learner publishes a snapshot (when it learned something new)",
        default=5.0,
        above=0,
    )
    snapshot_max_bytes: int = _doc(
        "largest snapshot published or loaded (the learner's producer request limit too)",
        default=64 * 2**20,
        minimum=1024,
        maximum=INT32_MAX,
    )
    taste_factors: int = _doc(
        "factors per user and track vector of the taste model", default=16, above=0, maximum=256
    )
    negatives_per_event: int = _doc(
        "tracks drawn per event as ones the user did not choose (taste model)",
        default=4,
        minimum=0,
        maximum=64,
    )
    exploration: str = _doc(
        "on: the last slot of a taste list goes to the source (taste, trending, new "
        "artist) a Thompson-sampling policy draws, paid in long-term reward; off: all "
        "slots by taste (needs learning on)",
        default="on",
        choices=("on", "off"),
    )
    offer_memory_lists: int = _doc(
        "lists each worker remembers to credit what users do with their exploration "
        "slot (about 0.9 KB each; the oldest forgotten first)",
        default=20_000,
        above=0,
        maximum=10_000_000,
    )
    reward_engaged: float = _doc(
        "exploration reward for an offered track heard through (the gains sum to 1)",
        default=0.2,
        minimum=0,
        maximum=1,
    )
    reward_saved: float = _doc(
        "exploration reward for an offered track saved", default=0.3, minimum=0, maximum=1
    )
    reward_returned: float = _doc(
        "exploration reward when the user comes back within a day of the list",
        default=0.35,
        minimum=0,
        maximum=1,
    )
    reward_session: float = _doc(
        "exploration reward for the listening that follows the list (full at 10 events)",
        default=0.15,
        minimum=0,
        maximum=1,
    )
    reward_skip_penalty: float = _doc(
        "exploration reward taken back when an offered track is skipped (clipped at 0)",
        default=0.2,
        minimum=0,
        maximum=1,
    )
    model_auc_floor: float = _doc(
        "the engagement model's AUC below which the quality alert fires (a gauge)",
        default=0.6,
        minimum=0,
        maximum=1,
    )
    learner_web_port: int = _doc(
        "port of the learner's HTTP server (/metrics, /models; 0: any free port)",
        default=6067,
        minimum=0,
        maximum=65_535,
    )
    web_host: str = _doc("address of the worker's HTTP server", default="127.0.0.1")
    web_port: int = _doc(
        "port of the worker's HTTP server (0: any free port)",
        default=6066,
        minimum=0,
        maximum=65_535,
    )
    advertised_host: str = _doc(
        "host name other workers use to reach this one (table routing); empty: web_host",
        default="",
    )
    store: str = _doc(
        "Faust table store: memory:// or rocksdb://", default="memory://", syntax="store"
    )
    data_dir: str = _doc("directory for worker state (RocksDB, etc.)", default=".tunestream")
    log_level: str = _doc(
        "log level of the worker (any case)",
        default="WARNING",
        choices=LOG_LEVELS,
        ignore_case=True,
    )
    log_format: str = _doc(
        "worker log lines: json (one object per line) or text",
        default="json",
        choices=("json", "text"),
    )
    fetch_max_wait_ms: int = _doc(
        "consumer fetch wait; latency follows it on Tansu (Faust hard-codes 1500): at "
        "1,000 events/s the lists' p50 was 24 / 36 / 58 ms at 20 / 50 / 100",
        default=20,
        minimum=0,
        maximum=INT32_MAX,
    )
    producer_linger_ms: int = _doc(
        "producer linger: batches sends on the wire", default=5, minimum=0, maximum=INT32_MAX
    )
    session_timeout_s: float = _doc(
        "consumer group session timeout: how fast a dead worker's partitions move",
        default=6.0,
        above=0,
        maximum=MAX_KAFKA_SECONDS,
    )
    heartbeat_interval_s: float = _doc(
        "consumer group heartbeat interval; below the session timeout",
        default=1.0,
        above=0,
        maximum=MAX_KAFKA_SECONDS,
    )
    rebalance_timeout_s: float = _doc(
        "consumer group rebalance timeout", default=10.0, above=0, maximum=MAX_KAFKA_SECONDS
    )
    commit_interval_s: float = _doc(
        "how often consumed offsets are committed", default=1.0, above=0
    )
    max_message_bytes: int = _doc(
        "larger input messages are dead-lettered as oversize; must leave room for the "
        f"envelope: at most the producer's request limit - {ENVELOPE_HEADROOM_BYTES}",
        default=983_040,
        above=0,
    )
    producer_max_request_bytes: int = _doc(
        "largest request the worker's producer sends (the broker must accept it too)",
        default=1_048_576,
        above=0,
        maximum=INT32_MAX,
    )
    dlq_original_max_bytes: int = _doc(
        "bytes of a refused message kept in its dead letter (a prefix; its length, SHA-256 "
        "and topic/partition/offset point to the whole)",
        default=16_384,
        minimum=256,
    )
    max_json_depth: int = _doc(
        "deepest nesting of arrays and objects an event may have (orjson writes at most 255)",
        default=32,
        minimum=1,
        maximum=255,
    )
    max_batch_events: int = _doc("most events one input message may carry", default=1000, above=0)
    max_future_ms: int = _doc(
        "events stamped further than this in the future are rejected", default=300_000, minimum=0
    )
    live_states: int = _doc(
        "decoded user states a worker keeps in memory between messages (least recently "
        "used dropped first); the table stays the truth",
        default=100_000,
        above=0,
        maximum=INT32_MAX,
    )
    dedupe_ids_per_user: int = _doc(
        "most event ids remembered per user to drop duplicates (only those within the "
        "allowed lateness are kept)",
        default=256,
        above=0,
    )
    allowed_lateness_ms: int = _doc(
        "events older than a user's newest event by more than this are dead-lettered "
        "as too_late; within it, out-of-order events update the right state; below the "
        "session gap",
        default=300_000,
        minimum=0,
    )
    session_gap_ms: int = _doc(
        "inactivity that ends a listening session", default=1_800_000, above=0
    )
    list_size: int = _doc("items in a recommendation list", default=10, above=0)
    refresh_interval_s: float = _doc(
        "least time between two lists for the same user", default=2.0, above=0
    )
    refresh_skip_streak: int = _doc(
        "skips in a row that refresh a user's list at once, whatever the refresh interval "
        "(a save or a change of device or context type also does)",
        default=3,
        above=0,
    )
    taste_weight: float = _doc(
        "share of the taste model in a candidate's score; the engagement model in context "
        "takes the rest (score = w * P_taste + (1 - w) * P_engage + a * affinity + "
        "editorial boost)",
        default=0.5,
        minimum=0,
        maximum=1,
    )
    affinity_weight: float = _doc(
        "weight a of the listener's diet in a candidate's score: how much of what they "
        "play, lately and in the running session, is its artist and genre (0..1); 0: none",
        default=1.5,
        minimum=0,
        maximum=10,
    )
    max_per_artist: int = _doc("most tracks of one artist in a list", default=2, above=0)
    max_per_genre: int = _doc("most tracks of one genre in a list", default=4, above=0)
    genre_cap_by_diet: str = _doc(
        "on: a genre the user plays may take the list in proportion to their favourite "
        "genre's share, lately or in the running session (never below the genre cap)",
        default="on",
        choices=("on", "off"),
    )
    mmr_lambda: float = _doc(
        "diversity trade-off: 1 ranks by score alone; lower values weigh being unlike the "
        "tracks already in the list",
        default=0.8,
        minimum=0,
        maximum=1,
    )
    popular_head: int = _doc(
        "the most popular tracks right now (trending) whose share of a list is limited",
        default=20,
        minimum=0,
    )
    max_popular_share: float = _doc(
        "most of a list those popular tracks may take (exposure fairness)",
        default=0.3,
        minimum=0,
        maximum=1,
    )
    skip_memory_s: float = _doc(
        "a track the user skipped stays out of their lists this long", default=604_800.0, minimum=0
    )
    replay_after_s: float = _doc(
        "a track the user heard or liked stays out of their lists this long, then may come "
        "back into rotation",
        default=600.0,
        minimum=0,
    )
    max_rotation: int = _doc(
        "most of the user's own tracks, heard before the replay window, one list may hold "
        "(back in rotation); 0: none",
        default=3,
        minimum=0,
    )
    discovery_slot: str = _doc(
        "on: a list holds at least one artist new to the user when a candidate by one exists",
        default="on",
        choices=("on", "off"),
    )
    explicit_filter: str = _doc(
        "on: no explicit track in any list (events can also ask, context.explicit_filter)",
        default="off",
        choices=("on", "off"),
    )
    lists_remembered: int = _doc(
        "latest lists a worker keeps for GET /users/{id}/recommendations (about 1.5 KB each)",
        default=20_000,
        above=0,
    )
    popularity_half_life_s: float = _doc(
        "half-life of each track's decayed engagement, which trending lists rank by",
        default=3600.0,
        above=0,
    )
    trending_top_k: int = _doc(
        "tracks each by-track partition publishes to the trending topic (lists can be at "
        "most this long)",
        default=100,
        above=0,
        maximum=100_000,
    )
    trending_publish_interval_s: float = _doc(
        "how often a worker publishes the top tracks of its partitions, when they changed",
        default=1.0,
        above=0,
    )
    latency_objective_s: float = _doc(
        "end-to-end latency objective (event time to list sent); a histogram bucket sits here",
        default=1.0,
        above=0,
    )
    stall_after_s: float = _doc(
        "/livez fails when one message takes longer, or input waits unprocessed this long",
        default=60.0,
        above=0,
    )
    security_protocol: str = _doc(
        "Kafka security: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
        default="PLAINTEXT",
        choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
    )
    sasl_mechanism: str = _doc(
        "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
        default="PLAIN",
        choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
    )
    sasl_username: str = _doc("SASL user name", default="")
    sasl_password: str = _doc(
        "SASL password (prefer the _FILE variant); never logged", default="", repr=False
    )
    sasl_password_file: str = _doc(
        "file holding the SASL password, UTF-8 text (a mounted secret)", default=""
    )
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
        """Raise :class:`SettingsError` for values no worker could run with.

        Each field is checked against what it declares (range, choices, syntax),
        then the rules that tie two fields together.
        """
        for f in fields(self):
            _check_field(f, getattr(self, f.name))
        if self.heartbeat_interval_s >= self.session_timeout_s:
            raise SettingsError(
                f"TUNESTREAM_HEARTBEAT_INTERVAL_S={self.heartbeat_interval_s!r}: must be below "
                f"the session timeout TUNESTREAM_SESSION_TIMEOUT_S={self.session_timeout_s!r}"
            )
        if self.allowed_lateness_ms >= self.session_gap_ms:
            # A late event could then split or join sessions already closed and emitted.
            raise SettingsError(
                f"TUNESTREAM_ALLOWED_LATENESS_MS={self.allowed_lateness_ms!r}: must be below "
                f"the session gap TUNESTREAM_SESSION_GAP_MS={self.session_gap_ms!r}"
            )
        gains = (self.reward_engaged, self.reward_saved, self.reward_returned, self.reward_session)
        if not math.isclose(math.fsum(gains), 1.0, abs_tol=1e-9):
            raise SettingsError(
                "TUNESTREAM_REWARD_ENGAGED, _SAVED, _RETURNED and _SESSION must sum to 1, "
                f"got {math.fsum(gains):g}"
            )
        room = self.producer_max_request_bytes - ENVELOPE_HEADROOM_BYTES
        if self.max_message_bytes > room:
            raise SettingsError(
                f"TUNESTREAM_MAX_MESSAGE_BYTES={self.max_message_bytes!r}: must be at most "
                f"TUNESTREAM_PRODUCER_MAX_REQUEST_BYTES ({self.producer_max_request_bytes}) - "
                f"{ENVELOPE_HEADROOM_BYTES} (envelope headroom) = {room}; lower it or raise "
                "TUNESTREAM_PRODUCER_MAX_REQUEST_BYTES"
            )
        if self.list_size > self.trending_top_k:
            raise SettingsError(
                f"TUNESTREAM_LIST_SIZE={self.list_size!r}: must be at most "
                f"TUNESTREAM_TRENDING_TOP_K ({self.trending_top_k}), the longest trending list"
            )
        dead_letter = dead_letter_bytes_at_most(self.dlq_original_max_bytes)
        if dead_letter > self.producer_max_request_bytes:
            raise SettingsError(
                f"TUNESTREAM_DLQ_ORIGINAL_MAX_BYTES={self.dlq_original_max_bytes!r}: a dead "
                f"letter could take {dead_letter} bytes, more than "
                f"TUNESTREAM_PRODUCER_MAX_REQUEST_BYTES ({self.producer_max_request_bytes})"
            )
        if self.security_protocol.startswith("SASL") and not self.sasl_username:
            raise SettingsError(
                f"TUNESTREAM_SECURITY_PROTOCOL={self.security_protocol} needs "
                "TUNESTREAM_SASL_USERNAME"
            )

    def namespaced(self, name: str, **changes: Any) -> Settings:
        """A copy whose app id is ``name`` and whose every topic is ``name-<topic>``:
        runs (tests, benchmark phases) that must not see each other's data.

        >>> Settings().namespaced("t1").dlq_topic
        't1-listening-events-dlq'
        """
        topics = {
            f.name: f"{name}-{getattr(self, f.name)}"
            for f in fields(self)
            if f.name.endswith("_topic")
        }
        return self.replace(app_id=name, **topics, **changes)

    @property
    def embedded(self) -> bool:
        """True when the broker is to be started here rather than reached."""
        return self.broker == EMBEDDED

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` list for aiokafka; fails while the broker is still 'embedded'."""
        if self.embedded:
            raise SettingsError("the embedded broker has not been started: no address yet")
        return ",".join(broker_addresses(self.broker))


def dead_letter_bytes_at_most(original_max_bytes: int) -> int:
    """The largest dead letter keeping ``original_max_bytes`` of the original.

    The prefix is written twice: as JSON text, where one control byte can take
    six characters (``\\u0000``), and as base64 (4/3); the rest (key prefix,
    detail, reference fields) stays under 16 KiB.

    >>> dead_letter_bytes_at_most(16_384)
    147456
    """
    return original_max_bytes * 8 + 16_384


def env_name(field_name: str) -> str:
    """``partitions`` -> ``TUNESTREAM_PARTITIONS``."""
    return ENV_PREFIX + field_name.upper()


def _field(field_name: str) -> Field[Any]:
    for f in fields(Settings):
        if f.name == field_name:
            return f
    raise KeyError(field_name)


def help_of(field_name: str) -> str:
    """The help text of a field, for the CLI."""
    return str(_field(field_name).metadata["help"])


def range_of(field_name: str) -> str:
    """What a field may hold, in a few words ('' when any value goes).

    >>> range_of("web_port"), range_of("max_json_depth"), range_of("dlq_original_max_bytes")
    ('0..65535', '1..255', '>= 256')
    >>> range_of("log_level")
    'DEBUG, INFO, WARNING, ERROR, CRITICAL'
    """
    f = _field(field_name)
    meta = f.metadata
    if "choices" in meta:
        return ", ".join(meta["choices"])
    if meta.get("syntax") == "broker":
        return "host:port[,host:port] or embedded"
    if meta.get("syntax") == "topic":
        return "topic name"
    if meta.get("syntax") == "store":
        return "memory://, rocksdb://"
    if _kind(f.type) in ("int", "float"):
        return _bounds(meta, _kind(f.type))
    return ""


def _kind(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else str(annotation.__name__)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _bounds(meta: Mapping[str, Any], kind: str) -> str:
    low, above, high = meta.get("minimum"), meta.get("above"), meta.get("maximum")
    if kind == "int" and above is not None and high is not None:
        low, above = above + 1, None  # a whole number > 0 and <= 9 is 1..9
    if low is not None and high is not None:
        return f"{_number(low)}..{_number(high)}"
    parts = []
    if low is not None:
        parts.append(f">= {_number(low)}")
    if above is not None:
        parts.append(f"> {_number(above)}")
    if high is not None:
        parts.append(f"<= {_number(high)}")
    return " and ".join(parts)


def _check_field(f: Field[Any], value: Any) -> None:
    name, meta, kind = env_name(f.name), f.metadata, _kind(f.type)
    if kind in ("int", "float"):
        _check_number(name, value, kind, meta)
    elif not isinstance(value, str):
        raise SettingsError(f"{name}={value!r} is not text")
    elif "choices" in meta:
        allowed: tuple[str, ...] = meta["choices"]
        given = value.upper() if meta.get("ignore_case") else value
        if given not in allowed:
            raise SettingsError(f"{name}={value!r}: use one of {', '.join(allowed)}")
    elif meta.get("syntax") == "broker":
        if value != EMBEDDED:
            broker_addresses(value)
    elif meta.get("syntax") == "topic":
        problem = topic_name_problem(value)
        if problem is not None:
            raise SettingsError(f"{name}={value!r}: {problem}")
    elif meta.get("syntax") == "store" and not value.startswith(
        ("memory://", "rocksdb://", "rocksdict://")
    ):
        raise SettingsError(f"{name}={value!r}: use memory:// or rocksdb://")


def _check_number(name: str, value: Any, kind: str, meta: Mapping[str, Any]) -> None:
    whole = kind == "int"
    numeric = isinstance(value, int) if whole else isinstance(value, int | float)
    if not numeric or isinstance(value, bool):
        raise SettingsError(f"{name}={value!r} is not {'a whole number' if whole else 'a number'}")
    low, above, high = meta.get("minimum"), meta.get("above"), meta.get("maximum")
    if (
        not math.isfinite(value)
        or (low is not None and value < low)
        or (above is not None and value <= above)
        or (high is not None and value > high)
    ):
        bounds = _bounds(meta, kind)
        what = "a whole number" if whole else "a finite number"
        where = f" in {bounds}" if ".." in bounds else f" {bounds}" if bounds else ""
        raise SettingsError(f"{name}={value!r}: must be {what}{where}")


def topic_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a Kafka topic name, or None if it can.

    >>> topic_name_problem("listening-events") is None
    True
    >>> topic_name_problem("bad topic!")
    "a topic name is 1-249 letters, digits, '.', '_' or '-'"
    """
    if not _TOPIC_NAME.fullmatch(name) or name in (".", ".."):
        return "a topic name is 1-249 letters, digits, '.', '_' or '-'"
    return None


def broker_addresses(text: str) -> list[str]:
    """The ``host:port`` entries of a broker list; :class:`SettingsError` names a bad one.

    Entries are separated by commas and may start with ``kafka://``; an IPv6
    address goes in brackets.

    >>> broker_addresses("kafka://k1:9092, k2:9093,[::1]:9094")
    ['k1:9092', 'k2:9093', '[::1]:9094']
    >>> try:
    ...     broker_addresses("host:notaport")
    ... except SettingsError as exc:
    ...     print(str(exc).split(";")[0])
    TUNESTREAM_BROKER='host:notaport' has port 'notaport', not a number in 1..65535
    """
    addresses = []
    entries = text.split(",")
    for raw in entries:
        entry = raw.strip().removeprefix("kafka://")
        problem = _address_problem(entry)
        if problem is not None:
            which = f": {raw.strip()!r}" if len(entries) > 1 else ""
            raise SettingsError(
                f"TUNESTREAM_BROKER={text!r}{which} {problem}; expected host:port[,host:port] "
                "(port 1..65535) or 'embedded'"
            )
        addresses.append(entry)
    return addresses


def _address_problem(entry: str) -> str | None:
    if not entry:
        return "is empty"
    if entry.startswith("["):
        host, bracket, port = entry[1:].partition("]:")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "is not [IPv6 address]:port"
        if not bracket:
            return "has no port"
    else:
        host, colon, port = entry.rpartition(":")
        if not colon:
            return "has no port"
        if ":" in host:
            return "is not host:port (an IPv6 address goes in brackets: [::1]:9092)"
        if not _HOST_NAME.fullmatch(host):
            return f"has {host!r}, which is not a host name"
    if not _PORT.fullmatch(port) or not 1 <= int(port) <= 65_535:
        return f"has port {port!r}, not a number in 1..65535"
    return None


def _parse(name: str, raw: str, kind: Any) -> Any:
    kind = _kind(kind)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        what = "a whole number" if kind == "int" else "a number"
        raise SettingsError(f"{name}={raw!r} is not {what}") from None
    return raw
