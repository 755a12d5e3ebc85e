"""Settings, read once from the environment (every one also has a CLI flag), then passed down."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import platformdirs

from contracts import CANONICAL_TOPIC, INTAKE_TOPIC
from services.api_keys import KEY_FORM, given_key_parts


@dataclass(frozen=True)
class Settings:
    """What a process needs to know about its surroundings."""

    database_url: str | None = None
    kafka_bootstrap: str | None = None
    data_dir: Path = Path(platformdirs.user_data_dir("subscriber-profiles"))
    geoip_db: Path | None = None
    bootstrap_key: str | None = None
    kafka_partitions: int = 4
    events_topic: str = CANONICAL_TOPIC
    intake_topic: str = INTAKE_TOPIC
    read_schema: str = "read_models"
    log_format: str = "console"
    consistency_wait: float = 5.0
    # seconds a write waits for Kafka to take its events (Kafka log); past it the write answers
    # and the outbox publishes them once the broker is back
    publish_wait: float = 5.0
    max_body_bytes: int = 16 * 1024 * 1024
    max_import_bytes: int = 4 * 1024 * 1024 * 1024
    dedupe_days: float = 7.0  # how long a projector remembers applied event ids (Kafka log)
    background_nice: int = 19  # CPU niceness of projector, intake and file import; 0 = as is
    # this process's static name in its Kafka consumer groups (KIP-345): one a group may hold
    # once; `--workers` names each member from it (or from the host)
    group_instance: str | None = None

    def __post_init__(self) -> None:
        """Refuse a value of the right type but the wrong form here, where settings are read,
        so that a command fails before it starts anything (a server, a database)."""
        for option in OPTIONS:
            value = getattr(self, option.field)
            if option.check is None or value is None:
                continue
            try:
                option.check(value)
            except ValueError as exc:
                raise SettingError(f"{option.env} ({option.flag}): {exc}") from None

    @property
    def dedupe_window(self) -> timedelta:
        return timedelta(days=self.dedupe_days)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **chosen: Any) -> Settings:
        """Settings from `env` (default: os.environ), the `chosen` values (flags) winning over
        it; unset or empty means the default (for the database and Kafka: the embedded
        default)."""
        e = dict(os.environ) if env is None else env
        given: dict[str, Any] = {o.field: o.parse(e[o.env]) for o in OPTIONS if e.get(o.env)}
        return cls(**{**given, **chosen})

    def as_env(self) -> dict[str, str]:
        """These settings as the environment `from_env` reads them back from (for processes
        started with them, e.g. the members of `--workers`)."""
        values = {o.env: getattr(self, o.field) for o in OPTIONS}
        return {name: str(value) for name, value in values.items() if value is not None}


class SettingError(ValueError):
    """A setting's value has the wrong form; the message names the setting and the form,
    never the value (it may be a secret)."""


@dataclass(frozen=True)
class Option:
    """One setting: its field, its environment variable, its command-line flag."""

    field: str
    env: str
    flag: str
    kind: type
    help: str
    # a rule a value of `kind` must also follow: ValueError saying it, without the value
    check: Callable[[Any], object] | None = None

    def parse(self, text: str) -> Any:
        return self.kind(text)


OPTIONS: tuple[Option, ...] = (
    Option(
        "database_url", "DATABASE_URL", "--database-url", str, "PostgreSQL URL; unset: embedded."
    ),
    Option(
        "kafka_bootstrap",
        "KAFKA_BOOTSTRAP_SERVERS",
        "--kafka",
        str,
        "Kafka bootstrap servers; unset: the PostgreSQL log.",
    ),
    Option("data_dir", "PROFILES_DATA_DIR", "--data-dir", Path, "Embedded data directory."),
    Option("geoip_db", "PROFILES_GEOIP_DB", "--geoip-db", Path, "GeoIP2 City .mmdb file."),
    Option(
        "bootstrap_key",
        "PROFILES_BOOTSTRAP_KEY",
        "--bootstrap-key",
        str,
        f"An API key that exists with the admin permission after start; it reads {KEY_FORM}, "
        "as `profiles keys create` prints one.",
        check=given_key_parts,
    ),
    Option(
        "kafka_partitions",
        "PROFILES_KAFKA_PARTITIONS",
        "--kafka-partitions",
        int,
        "Partitions of a topic this service creates.",
    ),
    Option("events_topic", "PROFILES_EVENTS_TOPIC", "--events-topic", str, "Canonical topic."),
    Option("intake_topic", "PROFILES_INTAKE_TOPIC", "--intake-topic", str, "Intake topic."),
    Option(
        "read_schema", "PROFILES_READ_SCHEMA", "--read-schema", str, "Schema of the read models."
    ),
    Option("log_format", "PROFILES_LOG_FORMAT", "--log-format", str, "json or console."),
    Option(
        "consistency_wait",
        "PROFILES_CONSISTENCY_WAIT",
        "--consistency-wait",
        float,
        "Seconds a read with a Consistency-Token waits at most.",
    ),
    Option(
        "publish_wait",
        "PROFILES_PUBLISH_WAIT",
        "--publish-wait",
        float,
        "Seconds a write waits for Kafka before answering (its events wait in the outbox).",
    ),
    Option(
        "max_body_bytes",
        "PROFILES_MAX_BODY_BYTES",
        "--max-body-bytes",
        int,
        "Largest JSON request body (larger: 413).",
    ),
    Option(
        "max_import_bytes",
        "PROFILES_MAX_IMPORT_BYTES",
        "--max-import-bytes",
        int,
        "Largest file an import upload may be.",
    ),
    Option(
        "dedupe_days",
        "PROFILES_DEDUPE_DAYS",
        "--dedupe-days",
        float,
        "Days a projector on Kafka remembers applied event ids.",
    ),
    Option(
        "background_nice",
        "PROFILES_BACKGROUND_NICE",
        "--background-nice",
        int,
        "CPU niceness of the bulk roles (0: as is).",
    ),
    Option(
        "group_instance",
        "PROFILES_GROUP_INSTANCE",
        "--group-instance",
        str,
        "Static name in Kafka consumer groups (KIP-345), unique in the group.",
    ),
)
