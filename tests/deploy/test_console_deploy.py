"""The console in docker-compose.yml and deploy/k8s: configured the way its settings read it.

The console has no database and no topics, so the services' deploy checks do
not fit it; these build ``ConsoleSettings`` from exactly what Compose and the
Deployment hand the container, in production mode (which refuses a default
session secret), and check it points at the services where they listen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from services.console.settings import ConsoleSettings
from tests.deploy.compose import REQUIRED, environment_of, references
from tests.deploy.support import (
    COMPOSE_FILE,
    DEPLOY,
    accepted_env_names,
    build_settings,
    load_yaml_documents,
)
from tests.deploy.test_compose import container_environment as compose_environment
from tests.deploy.test_kubernetes import container_environment, container_of, data_of

UPSTREAMS = ("goals", "sessions", "notifications")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    (document,) = load_yaml_documents(COMPOSE_FILE)
    return document


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (document["kind"], document["metadata"]["name"]): document
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for document in load_yaml_documents(path)
    }


def test_compose_runs_the_console_against_the_services(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    definition = compose["services"]["console"]
    environment = environment_of(definition)
    assert sorted(set(environment) - accepted_env_names(ConsoleSettings)) == []
    secret = references(environment["CONSOLE_SESSION_SECRET"])
    assert secret
    assert all(ref.op in REQUIRED for ref in secret)

    settings = build_settings(
        ConsoleSettings, compose_environment(compose, "console"), monkeypatch, tmp_path
    )
    assert isinstance(settings, ConsoleSettings)
    assert settings.environment == "production"
    assert settings.host == "0.0.0.0"
    assert definition["command"] == ["services.console"]
    assert [str(port).rsplit(":", 1)[-1] for port in definition["ports"]] == [str(settings.port)]
    assert f":{settings.port}/healthz" in " ".join(definition["healthcheck"]["test"])
    assert settings.auth_keys_file is not None
    assert settings.auth_keys_file.parent == Path("/run/secrets")
    assert settings.auth_keys_file.name in definition["secrets"]

    for name, url in settings.upstream_urls().items():
        target = urlsplit(url)
        assert target.hostname == name
        assert definition["depends_on"][name]["condition"] == "service_healthy"
        service_port = compose_environment(compose, name)["FOLLOWTHROUGH_PORT"]
        assert target.port == int(service_port)


def test_kubernetes_runs_the_console_against_the_services(
    objects: dict[tuple[str, str], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    deployment = objects["Deployment", "console"]
    container = container_of(deployment)
    accepted = accepted_env_names(ConsoleSettings)
    secrets: set[str] = set()
    for source in container["envFrom"]:
        kind, name = (
            ("ConfigMap", source["configMapRef"]["name"])
            if "configMapRef" in source
            else ("Secret", source["secretRef"]["name"])
        )
        data = set(data_of(objects[kind, name]))
        assert sorted(data - accepted) == [], f"{kind} {name}"
        if kind == "Secret":
            secrets |= data
    assert "CONSOLE_SESSION_SECRET" in secrets  # a Secret, never a ConfigMap

    settings = build_settings(
        ConsoleSettings, container_environment(objects, deployment), monkeypatch, tmp_path
    )
    assert isinstance(settings, ConsoleSettings)
    assert settings.environment == "production"
    assert settings.cookie_secure is True  # served behind TLS
    assert container["args"] == ["services.console"]
    assert {port["containerPort"] for port in container["ports"]} == {settings.port}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert deployment["spec"]["template"]["spec"]["enableServiceLinks"] is False
    assert objects["PodDisruptionBudget", "console"]["spec"]["minAvailable"] >= 1

    for name, url in settings.upstream_urls().items():
        target = urlsplit(url)
        service = objects["Service", name]
        assert target.hostname == name
        assert (target.port or 80) in {port["port"] for port in service["spec"]["ports"]}
