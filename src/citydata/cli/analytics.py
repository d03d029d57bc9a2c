"""``citydata analytics list|run``: the planning analytics on the database directly, with PNG/SVG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from citydata.cli.common import ConfigOpt, fail, run, settings_from

app = typer.Typer(help="Planning analytics: tourism, flood, safety, real estate (JSON and PNG/SVG plots).",
                  no_args_is_help=True)


@app.command("list")
def list_queries() -> None:
    """The analytics queries and what each computes."""
    from citydata.analytics import get_query
    from citydata.analytics.model import QUERIES

    get_query("tourism_density")   # registers the built-in queries
    for q in QUERIES.values():
        params = ", ".join(f"{p.name}={p.default}" for p in q.params)
        print(f"{q.name}\t{q.title}\t({params})")


@app.command("run")
def run_query(
    name: Annotated[str, typer.Argument(help="Query name (see `citydata analytics list`).")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE (start/end ISO 8601 "
                                                                          "with offset); repeatable.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the chart to this .png or .svg file.")]
    = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON result to this file "
                                                                 "(default: stdout).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Run one query; print its JSON result (or write it with --json) and draw its chart with --out."""
    from citydata.analytics import AnalyticsService, get_query
    from citydata.analytics.plots import render
    from citydata.cli.datasets import offline_datasets

    settings = settings_from(config)
    params: dict[str, Any] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--param {item!r}: use NAME=VALUE", 2)
        params[key] = value
    if out is not None and out.suffix.lower() not in (".png", ".svg"):
        fail("--out must end in .png or .svg", 2)

    async def go() -> dict[str, Any]:
        async with offline_datasets(settings) as datasets:
            svc = AnalyticsService(datasets.store, datasets.geography, settings, datasets.clock)
            result = await svc.run(name, params, cache=False)
            if out is not None:
                render(get_query(name), result, out)
            return result.as_dict()

    body = orjson.dumps(run(go()), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    if json_out is not None:
        json_out.write_bytes(body)
    else:
        print(body.decode())
