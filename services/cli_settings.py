"""Every setting as a flag of every service command (API.md: "every setting also has a CLI
flag"), read from the table in `services.settings`, so a new setting needs no CLI code."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, get_type_hints

import typer

from services.logging import configure
from services.settings import OPTIONS, Settings


def with_settings(command: Callable[..., Any]) -> Callable[..., Any]:
    """`command(settings=..., **its own options)` as a typer command that also takes a flag
    for every setting: a flag wins over its environment variable, which wins over the default.

    The flags are added to the command's signature (typer reads parameters from it), after
    its own options; `settings` itself is not one.
    """
    hints = get_type_hints(command, include_extras=True)
    own = [
        p.replace(annotation=hints[p.name])
        for p in inspect.signature(command).parameters.values()
        if p.name != "settings"
    ]
    flags = [
        inspect.Parameter(
            o.field,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                o.kind | None,
                typer.Option(o.flag, envvar=o.env, help=o.help, rich_help_panel="Settings"),
            ],
        )
        for o in OPTIONS
        if o.field not in {p.name for p in own}
    ]

    @functools.wraps(command)
    def run(**given: Any) -> Any:
        chosen = {o.field: given.pop(o.field) for o in OPTIONS if o.field in given}
        settings = Settings.from_env(**{k: v for k, v in chosen.items() if v is not None})
        configure(settings.log_format)
        return command(settings=settings, **given)

    parameters = [*own, *flags]
    run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    del run.__wrapped__  # typer would read the command's own signature through it
    return run
