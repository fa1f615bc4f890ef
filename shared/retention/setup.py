"""Building a service's purger from its settings and rules (platform rules added)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from shared.clock import Clock
from shared.retention.purger import RetentionPurger
from shared.retention.rules import RetentionRule, platform_rules
from shared.retention.store import RetentionStore
from shared.runtime import ServiceRuntime


def build_purger(
    runtime: ServiceRuntime, clock: Clock, rules: Sequence[RetentionRule]
) -> RetentionPurger:
    settings = runtime.settings
    topic_retention = timedelta(hours=settings.kafka_topic_retention_hours)
    store = RetentionStore(
        runtime.database,
        [
            *platform_rules(
                topic_retention,
                timedelta(hours=settings.outbox_retention_hours),
                timedelta(hours=settings.outbox_replay_hours),
            ),
            *rules,
        ],
        settings.retention_seconds,
        floors=settings.retention_floors,
    )
    return runtime.add(
        RetentionPurger(
            runtime.database,
            store,
            clock,
            service=runtime.service,
            every_seconds=settings.retention_purge_seconds,
            batch_size=settings.retention_batch_size,
            enabled=settings.retention_enabled,
        )
    )
