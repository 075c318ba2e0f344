"""Settings: environment first, overrides on top, bad values named."""

from __future__ import annotations

import pytest

from streams.settings import Settings, SettingsError


def test_defaults_need_no_configuration() -> None:
    settings = Settings.from_env({})
    assert settings.embedded
    assert settings.events_topic == "listening-events"


def test_environment_is_read_and_overrides_win() -> None:
    env = {"TUNESTREAM_BROKER": "kafka:9092", "TUNESTREAM_LIST_SIZE": "20"}
    settings = Settings.from_env(env, list_size=5)
    assert settings.bootstrap_servers == "kafka:9092"
    assert settings.list_size == 5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"TUNESTREAM_PARTITIONS": "0"},
            r"TUNESTREAM_PARTITIONS=0: must be a whole number in 1\.\.2147483647",
        ),
        ({"TUNESTREAM_SESSION_TIMEOUT_S": "soon"}, "is not a number"),
        ({"TUNESTREAM_STORE": "redis://"}, "use memory:// or rocksdb://"),
        ({"TUNESTREAM_HEARTBEAT_INTERVAL_S": "10"}, "below the session timeout"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_embedded_broker_has_no_address_until_started() -> None:
    with pytest.raises(SettingsError):
        _ = Settings.from_env({}).bootstrap_servers
