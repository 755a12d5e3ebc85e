"""The event-log port and its two adapters (Kafka for production, PostgreSQL embedded)."""
