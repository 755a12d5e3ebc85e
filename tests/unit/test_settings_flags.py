"""Every setting is an environment variable and a flag of every service command (API.md)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from services.cli import app as profiles
from services.cli_settings import with_settings
from services.settings import OPTIONS, Settings


def test_every_setting_has_a_variable_and_a_flag() -> None:
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert {o.field for o in OPTIONS} == fields
    assert len({o.env for o in OPTIONS}) == len({o.flag for o in OPTIONS}) == len(fields)


def test_settings_survive_the_trip_through_the_environment() -> None:
    settings = Settings(
        database_url="postgresql://db/x",
        data_dir=Path("/srv/profiles"),
        consistency_wait=2.5,
        kafka_partitions=12,
        group_instance="pod-3",
    )
    assert Settings.from_env(settings.as_env()) == settings


def _echo_app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @with_settings
    def show(settings: Settings, size: int = 1) -> None:
        typer.echo(json.dumps({**dataclasses.asdict(settings), "size": size}, default=str))

    return app


def test_a_flag_wins_over_its_variable_which_wins_over_the_default() -> None:
    runner = CliRunner()
    env = {"PROFILES_CONSISTENCY_WAIT": "7", "PROFILES_READ_SCHEMA": "from_env"}
    shown = runner.invoke(_echo_app(), ["--read-schema", "from_flag", "--size", "3"], env=env)
    assert shown.exit_code == 0, shown.output
    values = json.loads(shown.output)
    assert values["read_schema"] == "from_flag"
    assert values["consistency_wait"] == 7.0
    assert values["publish_wait"] == Settings().publish_wait
    assert values["size"] == 3


def test_a_bad_value_is_a_usage_error() -> None:
    shown = CliRunner().invoke(_echo_app(), ["--kafka-partitions", "many"])
    assert shown.exit_code == 2
    assert "--kafka-partitions" in shown.output


@pytest.mark.parametrize(
    "command",
    [
        ["serve"],
        ["ingest-api"],
        ["query-api"],
        ["projector"],
        ["intake"],
        ["projections", "rebuild"],
        ["import"],
    ],
)
def test_every_service_command_takes_every_flag(command: list[str]) -> None:
    shown = CliRunner().invoke(profiles, [*command, "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    missing = [o.flag for o in OPTIONS if o.flag not in shown.output]
    assert missing == []
