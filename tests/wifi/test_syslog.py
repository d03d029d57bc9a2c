"""The syslog-style listeners: UDP datagrams and TCP streams (newline and octet-counted framing) from APs and a
RADIUS server reach the rollups; bad lines are dead-lettered."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from sqlalchemy import text

from citydata.clock import DrivenClock
from tests.conftest import free_port
from tests.wifi.conftest import NOW, make_wifi


@pytest.mark.parametrize("backend_settings", ["sqlite"], indirect=True)
async def test_udp_and_tcp_lines_reach_the_rollups(store: Any, backend_settings: Any) -> None:
    wifi = await make_wifi(store, DrivenClock(NOW), backend_settings, listen=True, wifi_syslog_udp_port=free_port(),
                           wifi_syslog_tcp_port=free_port())
    try:
        listener = wifi.listener
        assert listener is not None and listener.udp_port and listener.tcp_port
        at = NOW.astimezone(wifi.pseudo.tz).strftime("%b %d %H:%M:%S")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(f"<30>{at} wifi-patong-001 hostapd: wlan0: AP-STA-CONNECTED 3c:22:fb:00:00:01".encode(),
                       ("127.0.0.1", listener.udp_port))
            udp.sendto(f"<30>{at} wifi-patong-001 sshd[2]: session opened for 3c:22:fb:00:00:02".encode(),
                       ("127.0.0.1", listener.udp_port))
        _reader, writer = await asyncio.open_connection("127.0.0.1", listener.tcp_port)
        radius = (f"<134>{at} radius1 radiusd[9]: Acct-Status-Type = Start, Calling-Station-Id = "
                  f'"3A-22-FB-00-00-03", NAS-Identifier = "wifi-bangla-001", Acct-Session-Id = "T1"')
        cisco = (f"<134>{at} wifi-old-town-002 77: %DOT11-6-ASSOC: Interface Dot11Radio0, Station x "
                 f"3c22.fb00.0004 Associated KEY_MGMT[NONE]")
        framed = cisco.encode()
        writer.write(radius.encode() + b"\n" + str(len(framed)).encode() + b" " + framed + b"\n")
        await writer.drain()
        writer.close()
        for _ in range(100):
            if wifi.events_total.labels("cisco", "syslog-tcp", "no")._value.get() >= 1 and \
                    await wifi.dead_letters.count("wifi") >= 1:
                break
            await asyncio.sleep(0.05)
        await wifi.flush()
        rows = await wifi.store.fetch_all(text(
            "SELECT hotspot_id, devices, randomised_devices FROM wifi_footfall_hourly ORDER BY hotspot_id"))
        assert [tuple(r.values()) for r in rows] == [("wifi-bangla-001", 1, 1), ("wifi-old-town-002", 1, 0),
                                                     ("wifi-patong-001", 1, 0)]
        letters = await wifi.dead_letters.list(source="wifi")
        assert len(letters) == 1 and letters[0]["channel"] == "syslog-udp:syslog"
        assert "3c:22" not in letters[0]["payload"] and letters[0]["reason"] == "no syslog parser recognises this line"
        assert listener.describe()["received"] == 4
    finally:
        await wifi.stop()
