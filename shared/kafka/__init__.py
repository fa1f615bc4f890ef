"""Kafka building blocks: client options, topic setup, the producer and the consumer runner."""
