"""What every command shares: loading settings, running async code, one-line errors."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from citydata.config import Settings, load_settings
from citydata.errors import CityDataError

T = TypeVar("T")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML settings file.",
                                                 envvar="CITYDATA_CONFIG", show_envvar=True)]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line on stderr and exit non-zero."""
    print(f"citydata: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **overrides)
    except CityDataError as err:
        fail(err.message, 2)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; a CityDataError becomes a one-line message and a non-zero exit."""
    try:
        return asyncio.run(coro)
    except CityDataError as err:
        fail(err.message, 2 if err.code == "config_invalid" else 1)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
