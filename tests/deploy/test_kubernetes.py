"""deploy/k8s: valid Kubernetes objects, probes, limits, non-root, and settings the services read.

Each object is validated against the Kubernetes API's own schema (strict: no
unknown fields) with kubernetes-validate; each service's settings class is
then built from exactly what its Deployment hands the container (image ENV,
ConfigMaps and Secrets by envFrom) in production mode.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from shared.events.catalog import ALL_EVENTS
from tests.deploy.support import (
    DEPLOY,
    SERVICE_SETTINGS,
    accepted_env_names,
    build_settings,
    field_for_env_name,
    image_environment,
    is_secret_field,
    load_yaml_documents,
    production_required_secrets,
)

K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.30.0"
SERVICES = sorted(SERVICE_SETTINGS)
# Which domain topics each service consumes (its replicas share their partitions).
CONSUMES = {"goals": set[str](), "sessions": {"goals"}, "notifications": {"goals", "sessions"}}


def manifest_files() -> list[Path]:
    return sorted(path for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    """Every object in deploy/k8s by (kind, name)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in manifest_files():
        for document in load_yaml_documents(path):
            key = (document["kind"], document["metadata"]["name"])
            assert key not in found, f"{key} defined twice"
            found[key] = document
    return found


def data_of(document: dict[str, Any]) -> dict[str, str]:
    return {**document.get("data", {}), **document.get("stringData", {})}


def container_of(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    (container,) = containers
    return container


def container_environment(
    objects: dict[tuple[str, str], dict[str, Any]], deployment: dict[str, Any]
) -> dict[str, str]:
    """Image ENV, then envFrom sources in order, then env: what the container starts with."""
    environment = image_environment()
    container = container_of(deployment)
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            environment.update(data_of(objects["ConfigMap", source["configMapRef"]["name"]]))
        else:
            environment.update(data_of(objects["Secret", source["secretRef"]["name"]]))
    for item in container.get("env", []):
        environment[item["name"]] = item["value"]
    return environment


@pytest.mark.parametrize("path", manifest_files(), ids=lambda path: path.name)
def test_every_object_is_valid_for_the_kubernetes_api(path: Path) -> None:
    for document in load_yaml_documents(path):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_validation_rejects_an_unknown_field(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    broken = yaml.safe_load(yaml.safe_dump(objects["Deployment", "goals"]))
    container_of(broken)["readinessProbe"]["timeoutSecs"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    (kustomization,) = load_yaml_documents(K8S / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == [path.name for path in manifest_files()]
    images = {image["name"] for image in kustomization["images"]}
    deployments = [
        document
        for path in manifest_files()
        for document in load_yaml_documents(path)
        if document["kind"] == "Deployment"
    ]
    assert {container_of(item)["image"] for item in deployments} <= images


@pytest.mark.parametrize("service", SERVICES)
def test_deployment_probes_resources_and_security(
    objects: dict[tuple[str, str], dict[str, Any]], service: str
) -> None:
    deployment = objects["Deployment", service]
    pod = deployment["spec"]["template"]["spec"]
    container = container_of(deployment)

    assert container["args"] == [f"services.{service}"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports

    resources = container["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind]), f"{kind} of {service}"

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # A Service named like the service would inject <NAME>_PORT=tcp://..., which the
    # settings class reads as its port.
    assert pod["enableServiceLinks"] is False

    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert objects["Service", service]["spec"]["selector"].items() <= pod_labels.items()
    assert objects["Service", service]["spec"]["ports"][0]["targetPort"] in ports


@pytest.mark.parametrize("service", SERVICES)
def test_disruption_budget_and_autoscaler_target_the_deployment(
    objects: dict[tuple[str, str], dict[str, Any]], service: str
) -> None:
    deployment = objects["Deployment", service]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

    budget = objects["PodDisruptionBudget", service]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert "minAvailable" in budget["spec"] or "maxUnavailable" in budget["spec"]

    autoscaler = objects["HorizontalPodAutoscaler", service]
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", service)
    assert target["apiVersion"] == deployment["apiVersion"]
    assert autoscaler["spec"]["minReplicas"] >= 2, "one replica cannot survive a disruption"
    assert autoscaler["spec"]["minReplicas"] <= autoscaler["spec"]["maxReplicas"]


@pytest.mark.parametrize("service", SERVICES)
def test_autoscaler_stops_at_the_partitions_there_are_to_share(
    objects: dict[tuple[str, str], dict[str, Any]], service: str
) -> None:
    """A consumer replica beyond the topic's partition count would sit idle."""
    partitions = {
        document["spec"]["topicName"]: document["spec"]["partitions"]
        for document in load_yaml_documents(DEPLOY / "kafka" / "topics.yaml")
    }
    domain_topics = {event.topic for event in ALL_EVENTS}
    assert CONSUMES[service] <= domain_topics
    limit = min((partitions[topic] for topic in CONSUMES[service]), default=None)
    if limit is not None:
        assert objects["HorizontalPodAutoscaler", service]["spec"]["maxReplicas"] <= limit


@pytest.mark.parametrize("service", SERVICES)
def test_configuration_names_are_read_by_the_service_settings(
    objects: dict[tuple[str, str], dict[str, Any]], service: str
) -> None:
    accepted = accepted_env_names(SERVICE_SETTINGS[service])
    container = container_of(objects["Deployment", service])
    for source in container["envFrom"]:
        kind, reference = (
            ("ConfigMap", source["configMapRef"])
            if "configMapRef" in source
            else ("Secret", source["secretRef"])
        )
        assert (kind, reference["name"]) in objects, f"{service} refers to a missing {kind}"
        unknown = sorted(set(data_of(objects[kind, reference["name"]])) - accepted)
        assert unknown == [], f"{kind} {reference['name']}: {service} does not read {unknown}"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_starts_in_production_with_its_manifests(
    objects: dict[tuple[str, str], dict[str, Any]],
    service: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    cls = SERVICE_SETTINGS[service]
    deployment = objects["Deployment", service]
    environment = container_environment(objects, deployment)
    settings = build_settings(cls, environment, monkeypatch, tmp_path)

    assert settings.environment == "production"
    assert settings.kafka_create_topics is False
    assert not settings.is_sqlite
    assert settings.log_format == "json"
    container = container_of(deployment)
    assert {port["containerPort"] for port in container["ports"]} == {settings.port}
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == (
        str(settings.port)
    )

    # The key set is a file from a mounted Secret volume.
    assert settings.auth_keys_file is not None
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volume_name = mounts[str(settings.auth_keys_file.parent)]
    volumes = {
        volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]
    }
    secret_volume = volumes[volume_name]["secret"]
    keys = {item["path"]: item["key"] for item in secret_volume["items"]}
    key = keys[settings.auth_keys_file.name]
    assert key in data_of(objects["Secret", secret_volume["secretName"]])

    # Production secrets come from Secrets, never from ConfigMaps.
    secret_names: set[str] = set()
    config_names: set[str] = set()
    for source in container["envFrom"]:
        if "secretRef" in source:
            secret_names |= set(data_of(objects["Secret", source["secretRef"]["name"]]))
        else:
            config_names |= set(data_of(objects["ConfigMap", source["configMapRef"]["name"]]))
    required = production_required_secrets(cls) | {"database_url"}
    by_field: defaultdict[str | None, set[str]] = defaultdict(set)
    for name in secret_names | config_names:
        by_field[field_for_env_name(cls, name)].add(name)
    for required_field in required:
        assert by_field[required_field], f"{service}: {required_field} is not set"
        assert by_field[required_field] <= secret_names, f"{service}: {required_field} not secret"
    for name in config_names:
        field = field_for_env_name(cls, name)
        assert field is None or not is_secret_field(cls, field), f"{name} is in a ConfigMap"


def test_secrets_in_the_repository_are_placeholders(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    for (kind, name), document in objects.items():
        if kind != "Secret":
            continue
        for key, value in data_of(document).items():
            assert "REPLACE" in value, f"Secret {name}/{key} holds a real-looking value"
