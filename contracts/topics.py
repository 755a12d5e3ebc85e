"""Kafka topic names other systems rely on (API.md)."""

CANONICAL_TOPIC = "profiles.events.v1"
INTAKE_TOPIC = "profiles.intake.v1"
INTAKE_DLQ_TOPIC = "profiles.intake.v1.dlq"
