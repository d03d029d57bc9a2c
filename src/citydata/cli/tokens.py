"""``citydata tokens create|list|revoke``: API tokens for devices, integrations and scripts."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from citydata.cli.common import ConfigOpt, fail, run, settings_from

app = typer.Typer(help="API tokens for devices, integrations and scripts.", no_args_is_help=True)


async def _with_tokens(settings: Any, fn: Any) -> Any:
    from citydata.auth import TokenService
    from citydata.clock import SystemClock
    from citydata.config import resolve_secrets
    from citydata.store import create_store

    settings = resolve_secrets(settings)
    clock = SystemClock()
    store = create_store(settings, clock)
    await store.start()
    try:
        assert settings.secret_key is not None
        return await fn(TokenService(store, settings.secret_key.get_secret_value().encode(), clock), store)
    finally:
        await store.stop()


@app.command("create")
def create(role: Annotated[str, typer.Option("--role", help="Role of the token (device, operator, ...).")],
           name: Annotated[str, typer.Option("--name", help="What the token is for.")],
           agency: Annotated[str | None, typer.Option(help="Agency the token acts for.")] = None,
           device: Annotated[str | None, typer.Option(help="Bind the token to one device id.")] = None,
           config: ConfigOpt = None) -> None:
    """Create a token and print it alone on stdout (it is shown only once)."""
    from citydata.auth import Role

    try:
        role_value = Role(role)
    except ValueError:
        fail(f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}")
    if role_value == Role.PUBLIC:
        fail("a token for the public role is pointless")
    settings = settings_from(config)

    async def go(tokens: Any, store: Any) -> str:
        _, token = await tokens.create(role_value, name, agency=agency, device_id=device, created_by="cli")
        return str(token)

    print(run(_with_tokens(settings, go)))


@app.command("list")
def list_(config: ConfigOpt = None) -> None:
    """List tokens (never their secrets)."""
    settings = settings_from(config)

    async def go(tokens: Any, store: Any) -> list[dict[str, Any]]:
        return list(await tokens.list())

    from rich.console import Console
    from rich.table import Table

    table = Table("id", "name", "role", "agency", "device", "created", "revoked")
    for t in run(_with_tokens(settings, go)):
        table.add_row(str(t.get("id")), str(t.get("name")), str(t.get("role")), str(t.get("agency") or ""),
                      str(t.get("device_id") or ""), str(t.get("created_at") or ""),
                      str(t.get("revoked_at") or ""))
    Console().print(table)


@app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(help="The token id (the part after cd_).")],
           config: ConfigOpt = None) -> None:
    """Revoke a token at once."""
    settings = settings_from(config)

    async def go(tokens: Any, store: Any) -> None:
        await tokens.revoke(token_id)

    run(_with_tokens(settings, go))
    print(f"revoked {token_id}")
