"""``citydata``: serve, demo, simulate, db, config, tokens, city."""

from __future__ import annotations

import typer

from citydata import __version__
from citydata.cli import (
    analytics,
    city,
    config,
    datasets,
    db,
    importer,
    opendata,
    rules,
    server,
    tokens,
    tracking,
    vision,
    wifi,
)

app = typer.Typer(name="citydata", help="CityData: City Data Platform and Intelligence Operation Center.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.add_typer(config.app, name="config")
app.add_typer(db.app, name="db")
app.add_typer(tokens.app, name="tokens")
app.add_typer(city.app, name="city")
app.add_typer(importer.app, name="import")
app.add_typer(rules.app, name="rules")
app.add_typer(tracking.app, name="tracking")
app.add_typer(datasets.app, name="datasets")
app.add_typer(analytics.app, name="analytics")
app.add_typer(opendata.app, name="opendata")
app.add_typer(vision.app, name="vision")
app.add_typer(wifi.app, name="wifi")
db.app.command("purge")(importer.purge)
server.register(app)


def _version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """CityData command line."""


def main() -> None:
    app()
