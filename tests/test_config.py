"""Settings: environment and TOML, clear one-line errors, generated secrets."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from citydata.config import load_settings, parse_pii_keys, resolve_secrets
from citydata.errors import ConfigError


def test_defaults_are_embedded(tmp_path: Path) -> None:
    s = load_settings(environ={}, data_dir=tmp_path)
    assert s.database_url == f"sqlite:///{tmp_path.as_posix()}/citydata.db"
    assert s.bus_url == "memory://"
    assert s.mqtt_url.startswith("embedded://")
    assert s.is_sqlite


def test_environment_overrides_file_and_flags_override_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "citydata.toml"
    cfg.write_text('[http]\nport = 9001\nhost = "0.0.0.0"\n[db]\nurl = "postgresql://u@h:5432/x"\n')
    s = load_settings(cfg, environ={"CITYDATA_HTTP_PORT": "9002"})
    assert (s.http_port, s.http_host, s.db_url) == (9002, "0.0.0.0", "postgresql://u@h:5432/x")
    s = load_settings(cfg, environ={"CITYDATA_HTTP_PORT": "9002"}, http_port=9003)
    assert s.http_port == 9003


def test_bad_value_names_the_setting() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"CITYDATA_HTTP_PORT": "eighty"})
    assert "CITYDATA_HTTP_PORT" in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_variable_is_refused() -> None:
    with pytest.raises(ConfigError, match="CITYDATA_HTTP_PROT: unknown setting"):
        load_settings(environ={"CITYDATA_HTTP_PROT": "80"})


def test_unknown_key_in_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings(cfg, environ={})


@pytest.mark.parametrize("value", ["changeme", "secret", "x" * 40, "short-but-random-Q7"])
def test_weak_secret_key_is_refused_without_echoing_it(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"CITYDATA_SECRET_KEY": value})
    assert "CITYDATA_SECRET_KEY" in str(err.value)
    assert value not in str(err.value)


def test_bad_urls_are_refused() -> None:
    for name, value in (("CITYDATA_DB_URL", "mysql://x"), ("CITYDATA_BUS_URL", "kafka://x"),
                        ("CITYDATA_MQTT_URL", "amqp://x")):
        with pytest.raises(ConfigError, match=name):
            load_settings(environ={name: value})


def test_secrets_are_generated_once_with_mode_0600(tmp_path: Path) -> None:
    s = resolve_secrets(load_settings(environ={}, data_dir=tmp_path))
    assert s.secret_key is not None and s.pii_keys is not None and s.admin_password is not None
    for name in ("secret_key", "pii_keys", "admin_password"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, name
    again = resolve_secrets(load_settings(environ={}, data_dir=tmp_path))
    assert again.secret_key == s.secret_key and again.pii_keys == s.pii_keys
    assert len(parse_pii_keys(s.pii_keys.get_secret_value())[0][1]) == 32


def test_a_tampered_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("changeme\n")
    with pytest.raises(ConfigError, match="secret_key"):
        resolve_secrets(load_settings(environ={}, data_dir=tmp_path))


def test_pii_keys_rotation_format() -> None:
    import base64
    import os

    k1 = base64.urlsafe_b64encode(os.urandom(32)).decode()
    k2 = base64.urlsafe_b64encode(os.urandom(32)).decode()
    keys = parse_pii_keys(f"k2:{k2},k1:{k1}")
    assert [k for k, _ in keys] == ["k2", "k1"]
    with pytest.raises(ValueError):
        parse_pii_keys("k1:" + base64.urlsafe_b64encode(b"short").decode())


def test_public_dict_masks_secrets_and_credentials(tmp_path: Path) -> None:
    s = resolve_secrets(load_settings(environ={"CITYDATA_DB_URL": "postgresql://bob:hunter2@db:5432/x"},
                                      data_dir=tmp_path))
    shown = s.public_dict()
    assert shown["secret_key"] == "********"
    assert "hunter2" not in str(shown)
