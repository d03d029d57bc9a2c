"""Building the settings: ``load_settings`` from ``CITYDATA_*`` variables, an optional TOML file and explicit
overrides; ``resolve_secrets`` fills unset secrets from files in the data directory (generated on first start)."""

from __future__ import annotations

import base64
import json
import os
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from citydata.config.settings import ENV_PREFIX, NON_SETTING_ENV, Settings, check_secret, parse_pii_keys
from citydata.errors import ConfigError


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and name not in Settings.model_fields:
            out.update(_flatten(value, f"{name}_"))
        else:
            out[name] = value
    return out


def _env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or key in NON_SETTING_ENV:
            continue
        name = key[len(ENV_PREFIX):].lower()
        if name not in Settings.model_fields:
            raise ConfigError(f"{key}: unknown setting (see docs/configuration.md)")
        if name == "cors_origins" and raw.strip().startswith("["):
            values[name] = json.loads(raw)
        else:
            values[name] = raw
    return values


def load_settings(config_file: str | Path | None = None, *, environ: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Build the settings. Raises ``ConfigError`` with a one-line message that names the bad setting."""
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get("CITYDATA_CONFIG")
    values: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        try:
            values.update(_flatten(tomllib.loads(path.read_text(encoding="utf-8"))))
        except FileNotFoundError as err:
            raise ConfigError(f"config file {path} does not exist") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"config file {path}: {err}") from err
        unknown = sorted(set(values) - set(Settings.model_fields))
        if unknown:
            raise ConfigError(f"{path}: unknown setting {unknown[0]!r}")
    values.update(_env_values(environ))
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as err:
        first = err.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "settings"
        given = first.get("input")
        shown = "" if name in ("secret_key", "pii_keys", "admin_password", "mqtt_password") \
            else f" (got {given!r})"
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}: {first['msg']}{shown}") from err


def _secret_file(path: Path, make: Any) -> str:
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            path.chmod(0o600)
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = str(make())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return value


def resolve_secrets(settings: Settings) -> Settings:
    """Fill unset secrets from files in the data directory, generating them (mode 0600) on first start."""
    updates: dict[str, Any] = {}
    if settings.secret_key is None:
        value = _secret_file(settings.data_dir / "secret_key", lambda: secrets.token_urlsafe(48))
        try:
            check_secret(value)
        except ValueError as err:
            raise ConfigError(f"{settings.data_dir / 'secret_key'}: {err}") from err
        updates["secret_key"] = SecretStr(value)
    if settings.pii_keys is None:
        value = _secret_file(
            settings.data_dir / "pii_keys",
            lambda: "k1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="))
        try:
            parse_pii_keys(value)
        except ValueError as err:
            raise ConfigError(f"{settings.data_dir / 'pii_keys'}: {err}") from err
        updates["pii_keys"] = SecretStr(value)
    if settings.admin_password is None:
        value = _secret_file(settings.data_dir / "admin_password", lambda: secrets.token_urlsafe(12))
        updates["admin_password"] = SecretStr(value)
    return settings.model_copy(update=updates) if updates else settings
