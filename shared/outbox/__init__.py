"""Transactional outbox: events written with the state change, relayed to Kafka after commit."""

from shared.outbox.relay import OutboxRelay
from shared.outbox.writer import Outbox

__all__ = ["Outbox", "OutboxRelay"]
