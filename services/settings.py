"""Settings, read once from the environment (every one also has a CLI flag), then passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import platformdirs

from contracts import CANONICAL_TOPIC, INTAKE_TOPIC


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

    @property
    def dedupe_window(self) -> timedelta:
        return timedelta(days=self.dedupe_days)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Settings from `env` (default: os.environ); unset means the embedded default."""
        e = dict(os.environ) if env is None else env
        defaults = cls()
        return cls(
            database_url=e.get("DATABASE_URL") or None,
            kafka_bootstrap=e.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            data_dir=Path(e["PROFILES_DATA_DIR"])
            if e.get("PROFILES_DATA_DIR")
            else defaults.data_dir,
            geoip_db=Path(e["PROFILES_GEOIP_DB"]) if e.get("PROFILES_GEOIP_DB") else None,
            bootstrap_key=e.get("PROFILES_BOOTSTRAP_KEY") or None,
            events_topic=e.get("PROFILES_EVENTS_TOPIC", defaults.events_topic),
            intake_topic=e.get("PROFILES_INTAKE_TOPIC", defaults.intake_topic),
            kafka_partitions=int(e.get("PROFILES_KAFKA_PARTITIONS", defaults.kafka_partitions)),
            read_schema=e.get("PROFILES_READ_SCHEMA", defaults.read_schema),
            log_format=e.get("PROFILES_LOG_FORMAT", defaults.log_format),
            consistency_wait=float(e.get("PROFILES_CONSISTENCY_WAIT", defaults.consistency_wait)),
            publish_wait=float(e.get("PROFILES_PUBLISH_WAIT", defaults.publish_wait)),
            max_body_bytes=int(e.get("PROFILES_MAX_BODY_BYTES", defaults.max_body_bytes)),
            max_import_bytes=int(e.get("PROFILES_MAX_IMPORT_BYTES", defaults.max_import_bytes)),
            dedupe_days=float(e.get("PROFILES_DEDUPE_DAYS", defaults.dedupe_days)),
            background_nice=int(e.get("PROFILES_BACKGROUND_NICE", defaults.background_nice)),
            group_instance=e.get("PROFILES_GROUP_INSTANCE") or None,
        )
