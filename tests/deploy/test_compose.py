"""docker-compose.yml: valid Compose, and every service configured the way its settings read it.

Docker cannot run here, so the file is checked as far as it can be without it:
against the Compose Specification's JSON schema, and by building each
service's real settings class from the environment Compose would hand it
(the image's ENV plus the service's interpolated environment) in production
mode, which refuses default secrets.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from shared.settings import ServiceSettings
from tests.deploy.compose import (
    REQUIRED,
    environment_of,
    interpolate,
    references,
    required_variables,
)
from tests.deploy.support import (
    COMPOSE_FILE,
    DEPLOY,
    REPO,
    SERVICE_SETTINGS,
    accepted_env_names,
    build_settings,
    field_for_env_name,
    image_environment,
    is_secret_field,
    load_yaml_documents,
    production_required_secrets,
)

SERVICES = sorted(SERVICE_SETTINGS)


def compose_schema() -> dict[str, Any]:
    """The official Compose Specification schema, as vendored by the check-jsonschema package.

    (schema/compose-spec.json of compose-spec/compose-spec, Apache-2.0; the
    package keeps its copy current and ships the licence beside it.)
    """
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text("utf-8"))
    return schema


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    (document,) = load_yaml_documents(COMPOSE_FILE)
    return document


def operator_environment(compose: dict[str, Any]) -> dict[str, str]:
    """What an operator supplies: a made-up value for every required variable."""
    supplied = {
        name: f"test-{name.lower().replace('_', '-')}" for name in required_variables(compose)
    }
    supplied["FOLLOWTHROUGH_JWKS_FILE"] = "./jwks.public.json"
    return supplied


def container_environment(compose: dict[str, Any], service: str) -> dict[str, str]:
    """The environment the service's container starts with: image ENV, then Compose's."""
    supplied = operator_environment(compose)
    environment = image_environment()
    for key, value in environment_of(compose["services"][service]).items():
        environment[key] = interpolate(value, supplied)
    return environment


def settings_of(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> ServiceSettings:
    cls = SERVICE_SETTINGS[service]
    return build_settings(cls, container_environment(compose, service), monkeypatch, tmp_path)


def test_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    errors = [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator.iter_errors(compose)
    ]
    assert errors == []


def test_schema_check_rejects_a_broken_file(compose: dict[str, Any]) -> None:
    """The validation above is not vacuous: a misspelt key is reported."""
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    broken = json.loads(json.dumps(compose))
    broken["services"]["goals"]["depends_onn"] = broken["services"]["goals"].pop("depends_on")
    assert any("depends_onn" in error.message for error in validator.iter_errors(broken))


def test_the_stack_has_kafka_kraft_postgres_mailpit_topics_and_the_three_services(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert "zookeeper" not in json.dumps(compose).lower()
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")
    assert services["kafka-topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["command"] == [f"services.{name}"]
        assert importlib.util.find_spec(f"services.{name}.__main__") is not None


@pytest.mark.parametrize("service", SERVICES)
def test_every_environment_variable_is_read_by_the_service_settings(
    compose: dict[str, Any], service: str
) -> None:
    accepted = accepted_env_names(SERVICE_SETTINGS[service])
    unknown = sorted(set(environment_of(compose["services"][service])) - accepted)
    assert unknown == [], f"{service} does not read {unknown}"


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_environment_is_read_by_every_service(service: str) -> None:
    accepted = accepted_env_names(SERVICE_SETTINGS[service])
    ours = {name for name in image_environment() if name.startswith("FOLLOWTHROUGH_")}
    assert ours, "the image sets no FOLLOWTHROUGH_ defaults"
    assert sorted(ours - accepted) == []


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_starts_in_production_with_its_compose_environment(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = settings_of(compose, service, monkeypatch, tmp_path)
    definition = compose["services"][service]

    assert settings.environment == "production"
    assert settings.kafka_create_topics is False
    assert settings.log_format == "json"
    assert settings.host == "0.0.0.0"

    database = urlsplit(settings.database_url)
    assert database.scheme == "postgresql+asyncpg"
    assert database.hostname == "postgres"
    assert database.path == f"/{service}"
    assert database.username == service

    kafka_host, _, kafka_port = settings.kafka_bootstrap_servers.partition(":")
    assert kafka_host in compose["services"]
    advertised = compose["services"][kafka_host]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"://{kafka_host}:{kafka_port}" in advertised

    secrets = {item if isinstance(item, str) else item["source"] for item in definition["secrets"]}
    assert settings.auth_keys_file is not None
    assert settings.auth_keys_file.parent == Path("/run/secrets")
    assert settings.auth_keys_file.name in secrets

    published = [str(port).rsplit(":", 1)[-1] for port in definition["ports"]]
    assert published == [str(settings.port)]
    assert f":{settings.port}/healthz" in " ".join(definition["healthcheck"]["test"])


@pytest.mark.parametrize("service", SERVICES)
def test_secrets_are_required_and_never_defaulted(compose: dict[str, Any], service: str) -> None:
    cls = SERVICE_SETTINGS[service]
    environment = environment_of(compose["services"][service])
    given_fields = {field_for_env_name(cls, name): name for name in environment}
    missing = production_required_secrets(cls) - set(given_fields)
    assert missing == set(), f"{service} lacks production secrets {missing}"
    assert "auth_jwks" in given_fields or "auth_keys_file" in given_fields

    for field, name in given_fields.items():
        if field is None or not is_secret_field(cls, field):
            continue
        refs = references(environment[name])
        assert refs, f"{name} is a literal secret in docker-compose.yml"
        assert all(ref.op in REQUIRED for ref in refs), f"{name} has a default"


def test_every_password_and_secret_in_the_file_is_required(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in environment_of(service).items():
            if re.search(r"PASSWORD|SECRET", key):
                refs = references(value)
                assert refs, f"{name}: {key} is a literal"
                assert all(ref.op in REQUIRED for ref in refs), f"{name}: {key} has a default"
    for name, secret in compose["secrets"].items():
        refs = references(secret["file"])
        assert refs, f"secret {name} is a literal path"
        assert all(ref.op in REQUIRED for ref in refs), f"secret {name} has a default"


def test_services_wait_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["postgres"]["condition"] == "service_healthy"
        assert depends_on["kafka"]["condition"] == "service_healthy"
        assert depends_on["kafka-topics"]["condition"] == "service_completed_successfully"
        assert "/healthz" in " ".join(services[name]["healthcheck"]["test"])
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits on {dependency}"


def test_notifications_sends_mail_to_mailpit(compose: dict[str, Any]) -> None:
    environment = environment_of(compose["services"]["notifications"])
    smtp_host = environment["NOTIFICATIONS_SMTP_HOST"]
    assert smtp_host == "mailpit"
    assert environment["NOTIFICATIONS_SMTP_PORT"] == "1025"
    assert compose["services"]["notifications"]["depends_on"][smtp_host]["condition"] == (
        "service_healthy"
    )


def test_postgres_creates_one_database_and_role_per_service(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    script = DEPLOY / "postgres" / "init-databases.sh"
    mounts = {
        volume.split(":")[0]: volume.split(":")[1]
        for volume in postgres["volumes"]
        if volume.startswith("./")
    }
    target = mounts[f"./{script.relative_to(REPO)}"]
    assert target.startswith("/docker-entrypoint-initdb.d/")
    assert target.endswith(".sh")
    created = re.search(r"\$\{FOLLOWTHROUGH_DATABASES:-([^}]*)\}", script.read_text())
    assert created is not None
    postgres_environment = environment_of(postgres)
    for name in SERVICES:
        prefix = SERVICE_SETTINGS[name].env_prefix()
        url = environment_of(compose["services"][name])[f"{prefix}DATABASE_URL"]
        assert name in created.group(1).split()
        password_variables = {ref.name for ref in references(url)}
        variable = f"{name.upper()}_DB_PASSWORD"
        assert password_variables == {variable}
        assert {ref.name for ref in references(postgres_environment[variable])} == {variable}


def test_topics_are_created_by_the_one_shot_service_and_not_by_kafka(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    topics = services["kafka-topics"]
    script = DEPLOY / "kafka" / "create-topics.sh"
    mounts = dict(volume.split(":")[:2] for volume in topics["volumes"])
    target = mounts[f"./{script.relative_to(REPO)}"]
    assert target in topics["entrypoint"]
    assert topics["environment"]["BOOTSTRAP_SERVER"] == "kafka:9092"
    assert topics["restart"] == "no"


def test_the_env_example_lists_every_required_variable(compose: dict[str, Any]) -> None:
    example = DEPLOY / "compose.env.example"
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", example.read_text(), flags=re.MULTILINE))
    assert listed == required_variables(compose)
