"""Client options derived from settings, the same for producers, consumers and admin."""

from __future__ import annotations

from typing import Any

from shared.settings import ServiceSettings

CONTENT_TYPE = b"application/cloudevents+json; charset=utf-8"


def client_options(settings: ServiceSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_security_protocol in {"SSL", "SASL_SSL"}:
        from aiokafka.helpers import create_ssl_context

        options["ssl_context"] = create_ssl_context()
    return options


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"
