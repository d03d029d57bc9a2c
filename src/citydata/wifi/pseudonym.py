"""MAC pseudonymisation at the edge: HMAC-SHA256 of the normalised MAC, keyed with a key derived from the
platform secret and the rotation period (a Bangkok day by default). The raw MAC is dropped right after.

Within one period a device keeps one pseudonym (so unique counts and new-vs-returning work); across periods the
pseudonyms are unlinkable without the platform secret.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from citydata.wifi.model import RawRecord, WifiEvent, normalise_mac

EPOCH = date(2020, 1, 1)
DEVICE_HEX = 32          # 128 bits of the HMAC: collisions are negligible at city scale


class Pseudonymiser:
    def __init__(self, secret_key: bytes, *, timezone: str = "Asia/Bangkok", rotation_days: int = 1,
                 max_session_s: int = 86_400) -> None:
        if rotation_days < 1:
            raise ValueError("rotation_days must be at least 1")
        self._root = hmac.new(secret_key, b"citydata/wifi/mac-pseudonym", hashlib.sha256).digest()
        self.tz = ZoneInfo(timezone)
        self.rotation_days = rotation_days
        self.max_session_s = max_session_s
        self._keys: dict[int, bytes] = {}
        self._hour_period: dict[int, int] = {}

    # -- periods ---------------------------------------------------------------------------------------------
    def local_day(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def period_of(self, at: datetime) -> int:
        """The rotation period holding ``at``: days since 2020-01-01 (local) divided by the rotation length.
        (Cached per UTC hour: local days begin on whole hours in every zone this platform serves.)"""
        hour = int(at.timestamp()) // 3600
        period = self._hour_period.get(hour)
        if period is None:
            if len(self._hour_period) > 10_000:
                self._hour_period.clear()
            period = self._hour_period[hour] = (self.local_day(at) - EPOCH).days // self.rotation_days
        return period

    def period_start(self, period: int) -> datetime:
        """The instant (UTC-aware) the period begins: local midnight of its first day."""
        first = EPOCH + timedelta(days=period * self.rotation_days)
        return datetime(first.year, first.month, first.day, tzinfo=self.tz)

    def key(self, period: int) -> bytes:
        key = self._keys.get(period)
        if key is None:
            first = EPOCH + timedelta(days=period * self.rotation_days)
            key = hmac.new(self._root, f"{first.isoformat()}/{self.rotation_days}".encode(), hashlib.sha256).digest()
            if len(self._keys) > 64:
                self._keys.clear()
            self._keys[period] = key
        return key

    def device(self, mac: str, period: int) -> str:
        """The device's pseudonym in ``period`` (``mac`` already normalised)."""
        return hmac.digest(self.key(period), mac.encode(), "sha256").hex()[:DEVICE_HEX]

    # -- the edge --------------------------------------------------------------------------------------------
    def pseudonymise(self, record: RawRecord, hotspot_id: str) -> WifiEvent:
        """The record without its MAC. The pseudonyms cover every period from the session's possible start
        (``Acct-Session-Time`` back, else ``max_session_s`` back for a disassociation) to the record's time."""
        mac = normalise_mac(record.mac)
        last = self.period_of(record.at)
        back = record.session_time_s if record.session_time_s is not None else (
            self.max_session_s if record.kind != "start" else 0)
        first = self.period_of(record.at - timedelta(seconds=min(back, self.max_session_s)))
        devices = {p: self.device(mac, p) for p in range(first, last + 1)}
        if record.session_id:
            basis = f"{hotspot_id}\x00{record.session_id}"
            session_key = "s" + hmac.digest(self._root, basis.encode(), "sha256").hex()[:24]
        else:   # association pairs: one open session per device and hotspot
            session_key = "a" + hmac.digest(self._root, f"{hotspot_id}\x00{mac}".encode(), "sha256").hex()[:24]
        return WifiEvent(at=record.at, kind=record.kind, hotspot_id=hotspot_id, devices=devices,
                         randomised=bool(int(mac[:2], 16) & 0x02), session_key=session_key,
                         session_time_s=record.session_time_s, in_octets=record.in_octets,
                         out_octets=record.out_octets, fmt=record.fmt)
