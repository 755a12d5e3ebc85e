"""The intake processor's consumer group follows its topic, keeping the old name on the default
topic (its offsets live in Kafka, under that name)."""

from __future__ import annotations

from contracts.topics import INTAKE_TOPIC
from services.cli import intake_group


def test_the_default_intake_topic_keeps_the_group_its_offsets_are_committed_in() -> None:
    assert intake_group(INTAKE_TOPIC) == "profiles-intake"


def test_another_intake_topic_has_a_group_of_its_own() -> None:
    assert intake_group("tenant-b.intake.v1") == "profiles-intake.tenant-b.intake.v1"
    assert intake_group("tenant-c.intake.v1") != intake_group("tenant-b.intake.v1")
