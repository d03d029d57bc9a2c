"""The device registry: sensors, cameras, hotspots and gateways, with their heartbeats."""

from citydata.devices.kinds import DEVICE_KINDS, DeviceKind
from citydata.devices.service import DeviceIn, DeviceService, HeartbeatIn

__all__ = ["DEVICE_KINDS", "DeviceIn", "DeviceKind", "DeviceService", "HeartbeatIn"]
