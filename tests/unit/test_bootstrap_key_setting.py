"""PROFILES_BOOTSTRAP_KEY is checked when the settings are read: a malformed key stops any
command at once with one line naming the setting and the form, never the key."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from services.api_keys import KEY_FORM
from services.cli import app as profiles
from services.cli_settings import with_settings
from services.settings import SettingError, Settings

REPO = Path(__file__).resolve().parents[2]
GOOD = "sp_abcdefghijkl_" + "s" * 32
MALFORMED = [
    "letmein-please-letmein-please-letmein",  # no form at all
    "sp_abcdefghijkl_tooshort",  # a secret under 32 chars
    "sp_abc_" + "s" * 40,  # an id of the wrong width
    "sp_abcdefghijkl_" + "s" * 31 + "!",  # a char that is not url-safe
]


@pytest.mark.parametrize("key", MALFORMED)
def test_a_malformed_key_is_refused_when_the_settings_are_read(key: str) -> None:
    with pytest.raises(SettingError) as refused:
        Settings.from_env({"PROFILES_BOOTSTRAP_KEY": key})
    message = str(refused.value)
    assert message.startswith("PROFILES_BOOTSTRAP_KEY (--bootstrap-key): ")
    assert KEY_FORM in message
    assert key not in message
    assert key[16:] not in message  # not even the secret's part


def test_a_well_formed_key_is_read() -> None:
    assert Settings.from_env({"PROFILES_BOOTSTRAP_KEY": GOOD}).bootstrap_key == GOOD


def test_a_well_formed_flag_wins_over_a_malformed_variable() -> None:
    app = typer.Typer()

    @app.command()
    @with_settings
    def show(settings: Settings) -> None:
        typer.echo(json.dumps(dataclasses.asdict(settings), default=str))

    env = {"PROFILES_BOOTSTRAP_KEY": MALFORMED[0]}
    shown = CliRunner().invoke(app, ["--bootstrap-key", GOOD], env=env)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["bootstrap_key"] == GOOD


@pytest.mark.parametrize("command", [["serve"], ["ingest-api"], ["query-api"], ["projector"]])
def test_every_service_command_documents_the_form_in_its_help(command: list[str]) -> None:
    shown = CliRunner().invoke(profiles, [*command, "--help"], env={"COLUMNS": "400"})
    assert shown.exit_code == 0, shown.output
    assert KEY_FORM in " ".join(shown.output.split())  # rich wraps and pads the help


@pytest.mark.parametrize(
    "command", [["serve"], ["ingest-api"], ["query-api"], ["projector"], ["keys", "list"]]
)
def test_a_command_given_a_malformed_key_exits_at_once_with_one_line(
    command: list[str], tmp_path: Path
) -> None:
    """No embedded PostgreSQL, no HTTP: before, `serve` started both, logged
    `http.listening`, and only then died with a traceback from the app's start."""
    key = MALFORMED[1]
    servers = {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"}  # unset: the embedded defaults
    env = {k: v for k, v in os.environ.items() if k not in servers}
    env |= {"PROFILES_BOOTSTRAP_KEY": key, "PROFILES_DATA_DIR": str(tmp_path / "data")}
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "services", *command],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - began
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"profiles: PROFILES_BOOTSTRAP_KEY (--bootstrap-key): a given API key must read "
        f"{KEY_FORM}, as `profiles keys create` prints one"
    ]
    assert key[16:] not in done.stderr
    assert not (tmp_path / "data").exists()  # the embedded PostgreSQL never started
    assert took < 10, f"took {took:.1f} s"
