"""Kafka topic names other systems rely on (API.md)."""

CANONICAL_TOPIC = "profiles.events.v1"
INTAKE_TOPIC = "profiles.intake.v1"


def dead_letter_topic(intake_topic: str) -> str:
    """The intake's dead-letter topic: the intake topic's name and `.dlq`."""
    return f"{intake_topic}.dlq"


INTAKE_DLQ_TOPIC = dead_letter_topic(INTAKE_TOPIC)
