"""Parser plugins against records in the formats real equipment writes, and the bad ones they must refuse."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from citydata.wifi.model import ParseError, is_randomised, normalise_mac, scrub
from citydata.wifi.parsers import Context, formats, parse_line
from citydata.wifi.parsers.radius import parse_detail
from citydata.wifi.pseudonym import Pseudonymiser
from tests.wifi.conftest import SECRET

NOW = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)
CTX = Context(now=NOW, tz=ZoneInfo("Asia/Bangkok"))
AT = datetime(2026, 11, 21, 3, 15, 1, tzinfo=UTC)          # 10:15:01 in Bangkok


@pytest.mark.parametrize(("fmt", "line", "kind", "hotspot"), [
    ("syslog", "<30>Nov 21 10:15:01 wifi-patong-001 hostapd: wlan0: AP-STA-CONNECTED 3c:22:fb:12:34:56",
     "start", "wifi-patong-001"),
    ("hostapd", "<30>1 2026-11-21T10:15:01+07:00 wifi-patong-001 hostapd - - - wlan0: AP-STA-DISCONNECTED "
                "3c:22:fb:12:34:56", "stop", "wifi-patong-001"),
    ("syslog", "<134>Nov 21 10:15:01 wifi-old-town-003 12345: %DOT11-6-ASSOC: Interface Dot11Radio0, Station "
               "wifi-old-town-003 3c22.fb12.3456 Associated KEY_MGMT[NONE]", "start", "wifi-old-town-003"),
    ("cisco", "<134>Nov 21 10:15:01 wifi-old-town-003 12346: %DOT11-6-DISASSOC: Interface Dot11Radio0, "
              "Deauthenticating Station 3c22.fb12.3456 Reason: Sending station has left the BSS", "stop",
     "wifi-old-town-003"),
    ("syslog", "<133>Nov 21 10:15:01 controller stm[2519]: <501095> <NOTI> |AP wifi-kata-007@10.1.1.7 stm|  Assoc "
               "request @ 10:15:01.180185: 3c:22:fb:12:34:56 (SN 2): AP 10.1.1.7-24:de:c6:aa:bb:cc-wifi-kata-007",
     "start", "wifi-kata-007"),
    ("aruba", "<133>Nov 21 10:15:01 controller stm[2519]: <501080> <NOTI> |AP wifi-kata-007@10.1.1.7 stm|  Deauth "
              "to sta: 3c:22:fb:12:34:56: Ageout AP 10.1.1.7-24:de:c6:aa:bb:cc-wifi-kata-007 Sta has aged out",
     "stop", "wifi-kata-007"),
])
def test_syslog_formats(fmt: str, line: str, kind: str, hotspot: str) -> None:
    rec = parse_line(line, fmt, CTX)
    assert (rec.at, rec.kind, rec.hotspot, normalise_mac(rec.mac)) == (AT, kind, hotspot, "3c:22:fb:12:34:56")


def test_radius_accounting_as_json_line() -> None:
    line = ('{"Acct-Status-Type": "Interim-Update", "Calling-Station-Id": "3C-22-FB-12-34-56", '
            '"Called-Station-Id": "00-11-22-33-44-55:Phuket-Free-WiFi", "NAS-Identifier": "wifi-patong-001", '
            '"Acct-Session-Id": "5F3A0001", "Acct-Session-Time": 600, "Acct-Input-Octets": 12345, '
            '"Acct-Input-Gigawords": 1, "Acct-Output-Octets": 67890, "Event-Timestamp": "Nov 21 2026 10:15:01 +07"}')
    rec = parse_line(line, "jsonl", CTX)
    assert (rec.kind, rec.at, rec.session_id, rec.session_time_s) == ("interim", AT, "5F3A0001", 600)
    assert (rec.ap_mac, rec.in_octets, rec.out_octets) == ("00:11:22:33:44:55", 12345 + 2**32, 67890)
    assoc = parse_line('{"event": "associate", "mac": "3c:22:fb:12:34:56", "hotspot_id": "wifi-kata-001", '
                       '"time": 1795230901}', "jsonl", CTX)
    assert (assoc.kind, assoc.at, assoc.hotspot) == ("start", AT, "wifi-kata-001")
    # RFC 2866 numeric status, no time: stamped with the receive time
    stop = parse_line('{"Acct-Status-Type": 2, "Calling-Station-Id": "3c22fb123456", "NAS-Identifier": "x"}',
                      "jsonl", CTX)
    assert (stop.kind, stop.at) == ("stop", NOW)


def test_radius_linelog_and_detail_file() -> None:
    line = ('<134>Nov 21 10:15:01 radius1 radiusd[99]: Acct-Status-Type = Stop, User-Name = "guest", '
            'Calling-Station-Id = "3C-22-FB-12-34-56", Called-Station-Id = "00-11-22-33-44-55:Phuket-Free-WiFi", '
            'NAS-Identifier = "wifi-patong-001", Acct-Session-Id = "5F3A0001", Acct-Session-Time = 1800, '
            'Acct-Terminate-Cause = User-Request')
    rec = parse_line(line, "syslog", CTX)
    assert (rec.fmt, rec.kind, rec.at, rec.session_time_s, rec.hotspot) == ("radius", "stop", AT, 1800,
                                                                            "wifi-patong-001")
    detail = """Sat Nov 21 10:15:01 2026
\tAcct-Status-Type = Start
\tCalling-Station-Id = "3C-22-FB-12-34-56"
\tNAS-Identifier = "wifi-patong-001"
\tAcct-Session-Id = "5F3A0002"
\tTimestamp = 1795230901

Sat Nov 21 10:25:01 2026
\tAcct-Status-Type = Bogus
\tCalling-Station-Id = "3C-22-FB-12-34-56"
"""
    records = list(parse_detail(detail, CTX))
    assert [n for n, _ in records] == [1, 8]
    first, second = records[0][1], records[1][1]
    assert not isinstance(first, ParseError) and (first.kind, first.at, first.session_id) == ("start", AT, "5F3A0002")
    assert isinstance(second, ParseError) and "Acct-Status-Type" in str(second)


def test_rfc3164_time_of_last_year() -> None:
    ctx = Context(now=datetime(2027, 1, 1, 0, 5, tzinfo=UTC), tz=ZoneInfo("Asia/Bangkok"))
    rec = parse_line("<30>Dec 31 23:59:00 ap1 hostapd: wlan0: AP-STA-CONNECTED 3c:22:fb:12:34:56", "syslog", ctx)
    assert rec.at == datetime(2026, 12, 31, 16, 59, tzinfo=UTC)


@pytest.mark.parametrize(("fmt", "line", "reason"), [
    ("jsonl", "not json at all", "not JSON"),
    ("jsonl", "[1, 2]", "object"),
    ("jsonl", '{"Acct-Status-Type": "Accounting-On", "Calling-Station-Id": "3c:22:fb:12:34:56"}',
     "Acct-Status-Type"),
    ("jsonl", '{"Acct-Status-Type": "Start", "NAS-Identifier": "x"}', "MAC"),
    ("jsonl", '{"Acct-Status-Type": "Stop", "Calling-Station-Id": "3c:22:fb:12:34:56", '
              '"Acct-Session-Time": "-5"}', "negative"),
    ("jsonl", '{"event": "associate", "mac": "3c:22:fb:12:34:56", "time": "yesterday-ish"}', "timestamp"),
    ("syslog", "<30>Nov 21 10:15:01 ap1 sshd[1]: Accepted publickey for root", "no syslog parser"),
    ("hostapd", "<30>Nov 21 10:15:01 ap1 hostapd: wlan0: AP-STA-CONNECTED not-a-mac", "station MAC"),
    ("cisco", "<134>Nov 21 10:15:01 ap 1: %DOT11-6-ASSOC: Interface Dot11Radio0, Station gone", "station MAC"),
    ("nope", "{}", "unknown format"),
])
def test_bad_records_are_refused_with_a_reason(fmt: str, line: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_line(line, fmt, CTX)


def test_mac_spellings_randomised_bit_and_scrubbing() -> None:
    for spelling in ("3C-22-FB-12-34-56", "3c22.fb12.3456", "3c22fb123456", "3c:22:fb:12:34:56"):
        assert normalise_mac(spelling) == "3c:22:fb:12:34:56"
    with pytest.raises(ParseError):
        normalise_mac("3c:22:fb:12:34")
    assert not is_randomised("3c:22:fb:12:34:56")       # 0x3c = 0011 1100: globally unique (OUI)
    assert is_randomised("3a:22:fb:12:34:56")           # 0x3a = 0011 1010: locally administered
    assert is_randomised("da:a1:19:00:00:01") and is_randomised("02:00:00:00:00:00")
    assert not is_randomised("00:11:22:33:44:55")
    text = 'x 3C-22-FB-12-34-56 y 3c22.fb12.3456 z 3c22fb123456 "3c:22:fb:12:34:56"'
    assert "3c" not in scrub(text).lower().replace("<mac>", "")
    assert scrub("Acct-Session-Time = 600") == "Acct-Session-Time = 600"
    assert set(formats()) >= {"jsonl", "radius", "hostapd", "cisco", "aruba", "syslog"}


def test_pseudonyms_rotate_with_the_bangkok_day() -> None:
    p = Pseudonymiser(SECRET)
    before = datetime(2026, 11, 21, 16, 59, tzinfo=UTC)     # 23:59 in Bangkok
    after = datetime(2026, 11, 21, 17, 1, tzinfo=UTC)       # 00:01 the next day
    mac = "3c:22:fb:12:34:56"
    assert p.device(mac, p.period_of(before)) == p.device(mac, p.period_of(before.replace(hour=3)))
    assert p.device(mac, p.period_of(before)) != p.device(mac, p.period_of(after))
    assert p.device(mac, p.period_of(after)) != Pseudonymiser(b"another-secret-0123456789-abcdefghijklmnop").device(
        mac, p.period_of(after))
    assert mac.replace(":", "") not in p.device(mac, 1) and len(p.device(mac, 1)) == 32
