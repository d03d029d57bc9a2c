"""Device kinds as data (not subclasses)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceKind:
    key: str
    name_en: str
    name_th: str
    unit: str | None = None
    observed_property: str | None = None


DEVICE_KINDS: dict[str, DeviceKind] = {k.key: k for k in (
    DeviceKind("rain_gauge", "Rain gauge", "เครื่องวัดปริมาณน้ำฝน", "mm", "precipitation"),
    DeviceKind("water_level", "Water-level sensor", "เครื่องวัดระดับน้ำ", "m", "water_level"),
    DeviceKind("dissolved_oxygen", "Dissolved-oxygen probe", "เครื่องวัดออกซิเจนละลายน้ำ", "mg/L",
               "dissolved_oxygen"),
    DeviceKind("weather_station", "Weather station", "สถานีตรวจอากาศ"),
    DeviceKind("camera", "CCTV camera", "กล้องวงจรปิด"),
    DeviceKind("wifi_hotspot", "WiFi hotspot", "จุดให้บริการ WiFi"),
    DeviceKind("gateway", "Gateway", "เกตเวย์"),
    DeviceKind("checkpoint_terminal", "Checkpoint terminal", "เครื่องที่ด่านตรวจ"),
)}
