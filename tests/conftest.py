import os
import pytest


@pytest.fixture(scope="session")
def database_url() -> str:
    return os.environ["DATABASE_URL"]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return os.environ["KAFKA_BOOTSTRAP_SERVERS"]
