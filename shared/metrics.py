"""Prometheus metrics shared by every service.

Defined once per process at import (metric objects are plain in-memory
counters, no I/O), labelled by service so several services in one process
(tests) stay apart.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "followthrough_http_requests_total",
    "HTTP requests answered, by route template and status.",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "followthrough_http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_PRODUCED = Counter(
    "followthrough_events_produced_total",
    "Events published to Kafka by the outbox relay, by type.",
    ["service", "type"],
)
EVENTS_CONSUMED = Counter(
    "followthrough_events_consumed_total",
    "Events handled by a consumer, by type and outcome.",
    ["service", "type", "outcome"],
)
HANDLER_ERRORS = Counter(
    "followthrough_handler_errors_total",
    "Handler failures (each attempt), by kind: transient infrastructure or event error.",
    ["service", "kind"],
)
DEAD_LETTERED = Counter(
    "followthrough_dead_lettered_total",
    "Messages sent to a dead-letter topic, by source topic and reason.",
    ["service", "topic", "reason"],
)
OUTBOX_BACKLOG = Gauge(
    "followthrough_outbox_backlog",
    "Outbox rows not yet published.",
    ["service"],
)
OUTBOX_REPLAYED = Counter(
    "followthrough_outbox_replayed_total",
    "Published outbox rows queued to be published again because the broker is a new cluster.",
    ["service"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "followthrough_outbox_oldest_age_seconds",
    "Age of the oldest unpublished outbox row (0 when empty).",
    ["service"],
)
CONSUMER_LAG = Gauge(
    "followthrough_consumer_lag",
    "Records between the consumer group's position and the partition high watermark.",
    ["service", "group", "topic", "partition"],
)
SCHEDULER_LAG = Gauge(
    "followthrough_scheduler_lag_seconds",
    "Now minus the due time of the oldest due, unfired timer (0 when none is due).",
    ["service", "kind"],
)
TIMERS_FIRED = Counter(
    "followthrough_timers_fired_total",
    "Timers fired by the scheduler, by kind and whether they fired late (after downtime).",
    ["service", "kind", "late"],
)
DELIVERIES = Counter(
    "followthrough_deliveries_total",
    "Delivery attempts by channel (webhook, email) and outcome (succeeded, retrying, failed).",
    ["service", "channel", "outcome"],
)
DELIVERY_LATENCY = Histogram(
    "followthrough_delivery_latency_seconds",
    "From the domain event's time to its successful delivery, by channel.",
    ["service", "channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
ENDPOINTS = Gauge(
    "followthrough_endpoints",
    "Webhook endpoints by state (enabled, disabled, failing).",
    ["service", "state"],
)
RETENTION_PURGED = Counter(
    "followthrough_retention_purged_total",
    "Rows deleted by the retention purger because they outlived their window, by kind.",
    ["service", "kind"],
)
RETENTION_OLDEST_AGE = Gauge(
    "followthrough_retention_oldest_row_age_seconds",
    "Age of the oldest row of each kind the purger looks after (of those it may delete).",
    ["service", "kind"],
)
