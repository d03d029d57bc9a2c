"""The event bus: one typed interface, an in-process implementation and a NATS JetStream one."""

from citydata.bus.base import Bus, Consumer, Delivery, Handler, Subscription
from citydata.bus.factory import create_bus

__all__ = ["Bus", "Consumer", "Delivery", "Handler", "Subscription", "create_bus"]
