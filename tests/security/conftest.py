"""Security fixtures: the real server subprocess of the e2e tests."""

from tests.e2e.conftest import server  # noqa: F401  (re-exported fixture)
