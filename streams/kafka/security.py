"""Kafka TLS and SASL (PLAIN, SCRAM) options, built from settings for every client.

Every Kafka client tunestream makes (the Faust worker, the producer, ``tail``,
the admin client that creates topics) takes its security options from here, so
one set of ``TUNESTREAM_*`` variables secures them all. The SASL password comes
from ``TUNESTREAM_SASL_PASSWORD`` or, better in containers, a file named by
``TUNESTREAM_SASL_PASSWORD_FILE`` (a mounted secret). It is never part of a
settings ``repr`` and never logged.

>>> from streams.settings import Settings
>>> security_options(Settings())
{'security_protocol': 'PLAINTEXT'}
>>> s = Settings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
...              sasl_username="svc", sasl_password="hunter2")
>>> sorted(security_options(s))
['sasl_mechanism', 'sasl_plain_password', 'sasl_plain_username', 'security_protocol']
>>> "hunter2" in repr(s)
False
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import faust
from aiokafka.helpers import create_ssl_context

from streams.settings import Settings, SettingsError


def sasl_password(settings: Settings) -> str:
    """The SASL password from the setting, or else from the file the setting names."""
    if settings.sasl_password:
        return settings.sasl_password
    if settings.sasl_password_file:
        path = Path(settings.sasl_password_file)
        try:
            password = path.read_bytes().decode("utf-8").strip()
        except OSError as exc:
            raise SettingsError(
                f"TUNESTREAM_SASL_PASSWORD_FILE: cannot read {path}: {exc.strerror}"
            ) from None
        except UnicodeDecodeError as exc:
            raise SettingsError(
                f"TUNESTREAM_SASL_PASSWORD_FILE: {path} is not UTF-8 text "
                f"({exc.reason} at byte {exc.start})"
            ) from None
        if not password:
            raise SettingsError(f"TUNESTREAM_SASL_PASSWORD_FILE: {path} is empty")
        return password
    raise SettingsError(
        f"TUNESTREAM_SECURITY_PROTOCOL={settings.security_protocol} needs "
        "TUNESTREAM_SASL_PASSWORD or TUNESTREAM_SASL_PASSWORD_FILE"
    )


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """A TLS context for SSL and SASL_SSL, verifying the broker against the CA file if given."""
    if not settings.security_protocol.endswith("SSL"):
        return None
    return create_ssl_context(
        cafile=settings.ssl_cafile or None,
        certfile=settings.ssl_certfile or None,
        keyfile=settings.ssl_keyfile or None,
    )


def security_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
    options: dict[str, Any] = {"security_protocol": settings.security_protocol}
    context = tls_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = sasl_password(settings)
    return options


def faust_credentials(settings: Settings) -> faust.auth.Credentials | None:
    """The same options in the form Faust's ``broker_credentials`` takes."""
    context = tls_context(settings)
    if settings.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=sasl_password(settings),
            ssl_context=context,
            mechanism=settings.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None
