from tests.analytics.conftest import aclient, aplatform  # noqa: F401 - shared fixtures
