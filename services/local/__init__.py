"""Real PostgreSQL and Apache Kafka run locally: tests, CI, benchmarks, the embedded default."""

from services.local.errors import ServiceUnavailable
from services.local.kafka import fetch_kafka_jars, kafka_running, start_kafka, stop_kafka
from services.local.postgres import postgres_running, start_postgres, stop_postgres

__all__ = [
    "ServiceUnavailable",
    "fetch_kafka_jars",
    "kafka_running",
    "postgres_running",
    "start_kafka",
    "start_postgres",
    "stop_kafka",
    "stop_postgres",
]
