from tests.incidents.support import ioc_client, ioc_platform, receiver

__all__ = ["ioc_client", "ioc_platform", "receiver"]
