"""The settings tree: one typed model, built once from ``CITYDATA_*`` variables and an optional TOML file.

Nothing here runs at import time. ``load_settings`` is called by the CLI (or a test) and the result is passed
into factories. Precedence, highest first: explicit overrides (CLI flags), environment, TOML file, defaults.
The TOML file may use flat keys (``db_url = ...``) or sections (``[db] url = ...`` means ``db_url``).

``settings.py`` holds the model and its checks, ``loading.py`` builds it.
"""

from citydata.config.loading import load_settings, resolve_secrets
from citydata.config.settings import ENV_PREFIX, NON_SETTING_ENV, Settings, check_secret, parse_pii_keys

__all__ = ["ENV_PREFIX", "NON_SETTING_ENV", "Settings", "check_secret", "load_settings", "parse_pii_keys",
           "resolve_secrets"]
