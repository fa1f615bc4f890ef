"""Kafka topic definitions: every topic the services use, the same in both deploy paths.

deploy/kafka/topics.yaml (Strimzi KafkaTopic objects) and
deploy/kafka/create-topics.sh (the compose stack's one-shot creator) must
define the same topics with the same partitions, retention and cleanup
policy. The script is run for real against a stand-in ``kafka-topics.sh``
that records each call.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shared.events.catalog import ALL_EVENTS
from shared.events.catalog.control import CONTROL_TOPIC
from shared.kafka.config import dlq_topic
from tests.deploy.support import DEPLOY, load_yaml_documents

TOPICS_FILE = DEPLOY / "kafka" / "topics.yaml"
SCRIPT = DEPLOY / "kafka" / "create-topics.sh"
RECORDER = """#!/bin/sh
printf '%s\\t' "$@" >> "$RECORD"
printf '\\n' >> "$RECORD"
"""


@pytest.fixture(scope="module")
def definitions() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for document in load_yaml_documents(TOPICS_FILE):
        assert document["kind"] == "KafkaTopic"
        assert document["apiVersion"].startswith("kafka.strimzi.io/")
        assert "strimzi.io/cluster" in document["metadata"]["labels"]
        found[document["spec"]["topicName"]] = document["spec"]
    return found


def run_script(tmp_path: Path, **environment: str) -> list[dict[str, Any]]:
    """Run create-topics.sh with a recording kafka-topics.sh; one dict per creation."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    recorder = bin_dir / "kafka-topics.sh"
    recorder.write_text(RECORDER)
    recorder.chmod(0o755)
    record = tmp_path / "calls.tsv"
    env = {"PATH": os.environ["PATH"], "KAFKA_BIN": str(bin_dir), "RECORD": str(record)}
    env.update(environment)
    subprocess.run(["sh", str(SCRIPT)], env=env, check=True, capture_output=True, timeout=30)
    calls: list[dict[str, Any]] = []
    for line in record.read_text().splitlines():
        args = line.rstrip("\t").split("\t")
        assert "--create" in args
        assert "--if-not-exists" in args
        configs = dict(
            args[index + 1].split("=", 1) for index, arg in enumerate(args) if arg == "--config"
        )
        calls.append(
            {
                "bootstrap": args[args.index("--bootstrap-server") + 1],
                "topic": args[args.index("--topic") + 1],
                "partitions": int(args[args.index("--partitions") + 1]),
                "replication": int(args[args.index("--replication-factor") + 1]),
                "config": configs,
            }
        )
    return calls


def test_every_topic_the_services_use_is_defined_with_its_dead_letter_topic(
    definitions: dict[str, dict[str, Any]],
) -> None:
    topics = {event.topic for event in ALL_EVENTS}
    # The control topic is read by every replica without a consumer group: nothing to dead-letter.
    with_dlq = topics - {CONTROL_TOPIC}
    assert set(definitions) == topics | {dlq_topic(topic) for topic in with_dlq}


def test_each_definition_sets_partitions_retention_and_cleanup(
    definitions: dict[str, dict[str, Any]],
) -> None:
    for name, spec in definitions.items():
        assert spec["partitions"] >= 1, name
        assert spec["replicas"] >= 3, f"{name}: production topics need replicas"
        assert int(spec["config"]["retention.ms"]) > 0, name
        assert spec["config"]["cleanup.policy"] == "delete", name
        assert int(spec["config"]["min.insync.replicas"]) < spec["replicas"], name
        if name.endswith(".dlq"):
            source = definitions[name.removesuffix(".dlq")]
            assert int(spec["config"]["retention.ms"]) >= int(source["config"]["retention.ms"])


def test_the_compose_script_creates_exactly_the_defined_topics(
    definitions: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    calls = run_script(tmp_path, BOOTSTRAP_SERVER="broker:9092", REPLICATION_FACTOR="1")
    assert sorted(call["topic"] for call in calls) == sorted(definitions)
    for call in calls:
        spec = definitions[call["topic"]]
        assert call["bootstrap"] == "broker:9092"
        assert call["replication"] == 1
        assert call["partitions"] == spec["partitions"]
        assert call["config"] == {
            key: str(value) for key, value in spec["config"].items() if key != "min.insync.replicas"
        }


def test_the_script_honours_the_topic_prefix(tmp_path: Path) -> None:
    calls = run_script(tmp_path, TOPIC_PREFIX="staging.", REPLICATION_FACTOR="3")
    assert calls
    assert all(call["topic"].startswith("staging.") for call in calls)
    assert {call["replication"] for call in calls} == {3}


def test_the_script_stops_at_the_first_failure(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    failing = bin_dir / "kafka-topics.sh"
    failing.write_text("#!/bin/sh\necho 'broker unreachable' >&2\nexit 1\n")
    failing.chmod(0o755)
    result = subprocess.run(
        ["sh", str(SCRIPT)],
        env={"PATH": os.environ["PATH"], "KAFKA_BIN": str(bin_dir)},
        capture_output=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert b"topic ready" not in result.stdout
