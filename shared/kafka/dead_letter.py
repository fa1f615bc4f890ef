"""Dead letters: a message that cannot be processed, kept whole on ``<topic>.dlq`` with the reason.

The dead-letter record is the original record, byte for byte (value, key and
headers), plus ``dlq-*`` headers saying why, where it came from and when, so an
operator can inspect it and replay it to its source topic unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from shared.kafka.config import dlq_topic
from shared.kafka.producer import OutboundRecord

DLQ_HEADER_PREFIX = "dlq-"
MAX_ERROR_BYTES = 2000
REASONS = (
    "malformed_json",
    "invalid_event",
    "invalid_event_data",
    "unknown_event_type",
    "oversize",
    "handler_failed",
)
"""Every reason a record is dead-lettered for (the ``reason`` label of the metric)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why one record is being dead-lettered.

    ``reason`` is a stable slug (``malformed_json``, ``unknown_event_type``,
    ``invalid_event_data``, ``oversize``, ``handler_failed``); ``error`` is the
    human-readable detail.
    """

    record: ConsumerRecord[bytes, bytes]
    reason: str
    error: str


def omit_value(outbound: OutboundRecord) -> OutboundRecord:
    """The dead letter without the original value, for a record too large to send again."""
    headers = [*outbound.headers, ("dlq-value-omitted", str(len(outbound.value)).encode())]
    return OutboundRecord(topic=outbound.topic, value=b"", key=outbound.key, headers=headers)


def dead_letter_record(
    letter: DeadLetter, *, group_id: str, failed_at: datetime | None = None
) -> OutboundRecord:
    """The record to publish on the source topic's dead-letter topic.

    ``dlq-*`` headers from an earlier trip through a dead-letter topic (a
    replayed message that failed again) are replaced, not repeated.
    """
    record = letter.record
    original = [
        (name, value)
        for name, value in (record.headers or ())
        if not name.startswith(DLQ_HEADER_PREFIX)
    ]
    reasons = [
        ("dlq-reason", letter.reason.encode()),
        ("dlq-error", letter.error.encode("utf-8", "replace")[:MAX_ERROR_BYTES]),
        ("dlq-source-topic", str(record.topic).encode()),
        ("dlq-source-partition", str(record.partition).encode()),
        ("dlq-source-offset", str(record.offset).encode()),
        ("dlq-consumer-group", group_id.encode()),
        ("dlq-failed-at", (failed_at or datetime.now(UTC)).isoformat().encode()),
    ]
    return OutboundRecord(
        topic=dlq_topic(str(record.topic)),
        value=record.value or b"",
        key=record.key,
        headers=[*original, *reasons],
    )
