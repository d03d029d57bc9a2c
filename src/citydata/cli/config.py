"""``citydata config show|validate``."""

from __future__ import annotations

import json

import typer

from citydata.cli.common import ConfigOpt, settings_from

app = typer.Typer(help="Show and check the settings.", no_args_is_help=True)


@app.command("show")
def show(config: ConfigOpt = None,
         as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Print the effective settings (secrets masked)."""
    settings = settings_from(config)
    values = settings.public_dict()
    if as_json:
        print(json.dumps(values, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("setting", "environment variable", "value")
    for name, value in values.items():
        table.add_row(name, f"CITYDATA_{name.upper()}", "" if value is None else str(value))
    Console().print(table)


@app.command("validate")
def validate(config: ConfigOpt = None) -> None:
    """Check the settings; exit non-zero with a one-line message naming the bad setting."""
    settings_from(config)
    print("settings are valid")
