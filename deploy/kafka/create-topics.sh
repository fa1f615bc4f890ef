#!/bin/sh
# Create Followthrough's topics (idempotent), as docker-compose.yml's one-shot
# `kafka-topics` service does. Kept in step with deploy/kafka/topics.yaml by
# tests/deploy/test_kafka_topics.py.
#
# Environment:
#   BOOTSTRAP_SERVER    broker to talk to (default kafka:9092)
#   REPLICATION_FACTOR  replicas per partition (default 1: the compose stack has one broker)
#   TOPIC_PREFIX        prefix for every topic name (the services' KAFKA_TOPIC_PREFIX)
#   KAFKA_BIN           where kafka-topics.sh lives (default /opt/kafka/bin)
set -eu

BOOTSTRAP_SERVER="${BOOTSTRAP_SERVER:-kafka:9092}"
REPLICATION_FACTOR="${REPLICATION_FACTOR:-1}"
TOPIC_PREFIX="${TOPIC_PREFIX:-}"
KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"

# name  partitions  retention.ms  cleanup.policy
TOPICS="
goals              12  604800000   delete
goals.dlq           3  2419200000  delete
sessions           12  604800000   delete
sessions.dlq        3  2419200000  delete
notifications      12  604800000   delete
notifications.dlq   3  2419200000  delete
privacy             6  604800000   delete
privacy.dlq         3  2419200000  delete
control             1  34560000000 delete
"

echo "$TOPICS" | while read -r name partitions retention cleanup; do
    [ -n "$name" ] || continue
    topic="${TOPIC_PREFIX}${name}"
    "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP_SERVER" \
        --create --if-not-exists --topic "$topic" \
        --partitions "$partitions" --replication-factor "$REPLICATION_FACTOR" \
        --config "retention.ms=$retention" --config "cleanup.policy=$cleanup"
    echo "topic ready: $topic ($partitions partitions, retention.ms=$retention, cleanup.policy=$cleanup)"
done
