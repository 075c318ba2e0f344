"""TLS and SASL options reach every Kafka client; the password never shows."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from streams.kafka.security import faust_credentials, sasl_password, security_options
from streams.settings import Settings, SettingsError


def test_plaintext_needs_no_credentials() -> None:
    assert security_options(Settings()) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(Settings()) is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_over_tls_gives_aiokafka_a_context_and_the_mechanism(mechanism: str) -> None:
    settings = Settings(
        security_protocol="SASL_SSL", sasl_mechanism=mechanism, sasl_username="u", sasl_password="p"
    )
    options = security_options(settings)
    assert options["sasl_mechanism"] == mechanism
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.mechanism.value == mechanism


def test_password_comes_from_a_mounted_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    settings = Settings(
        security_protocol="SASL_PLAINTEXT", sasl_username="u", sasl_password_file=str(secret)
    )
    assert sasl_password(settings) == "s3cret"


def test_an_unreadable_password_file_is_a_one_line_settings_error(tmp_path: Path) -> None:
    settings = Settings(
        security_protocol="SASL_PLAINTEXT",
        sasl_username="u",
        sasl_password_file=str(tmp_path / "missing"),
    )
    with pytest.raises(SettingsError, match="TUNESTREAM_SASL_PASSWORD_FILE: cannot read"):
        security_options(settings)


def test_sasl_without_a_user_name_is_refused_when_settings_are_read() -> None:
    with pytest.raises(SettingsError, match="TUNESTREAM_SASL_USERNAME"):
        Settings.from_env({"TUNESTREAM_SECURITY_PROTOCOL": "SASL_SSL"})


def test_unknown_protocol_is_refused_with_the_choices() -> None:
    with pytest.raises(SettingsError, match="use one of PLAINTEXT, SSL"):
        Settings.from_env({"TUNESTREAM_SECURITY_PROTOCOL": "TLS"})


def test_the_password_never_appears_in_the_settings_repr() -> None:
    settings = Settings(security_protocol="SASL_SSL", sasl_username="u", sasl_password="hunter2")
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
