"""The Atom feed of public warnings (``/cap/feed.xml``): one entry per current CAP message, linking to the
CAP document (``/cap/alerts/{identifier}.xml``, ``application/cap+xml``), as in the OASIS CAP feeds note."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lxml import etree

ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def build_feed(entries: list[dict[str, Any]], *, base_url: str, now: datetime, title: str, author: str,
               city: str) -> bytes:
    """``entries``: rows with identifier, msg_type, sent, headline and the warning's state."""
    base = base_url.rstrip("/")
    root = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})
    _sub(root, "id", f"{base}/cap/feed.xml")
    _sub(root, "title", title)
    _sub(root, "subtitle", f"CAP 1.2 public warnings for {city}")
    newest = max((e["sent"] for e in entries), default=now)
    _sub(root, "updated", newest.replace(microsecond=0).isoformat())
    _sub(root, "link", rel="self", href=f"{base}/cap/feed.xml", type="application/atom+xml")
    person = _sub(root, "author")
    _sub(person, "name", author)
    _sub(root, "generator", "CityData")
    for e in entries:
        url = f"{base}/cap/alerts/{e['identifier']}.xml"
        entry = _sub(root, "entry")
        _sub(entry, "id", f"urn:cap:{e['identifier']}")
        prefix = "Cancelled: " if e["msg_type"] == "Cancel" else ""
        _sub(entry, "title", prefix + str(e.get("headline") or e["identifier"]))
        sent = e["sent"].replace(microsecond=0).isoformat()
        _sub(entry, "updated", sent)
        _sub(entry, "published", sent)
        _sub(entry, "link", rel="alternate", href=url, type=CAP_MEDIA_TYPE)
        _sub(entry, "summary", f"{e['msg_type']}: {e.get('headline') or ''}".strip())
        _sub(entry, "category", term=str(e["msg_type"]))
        _sub(entry, "content", type=CAP_MEDIA_TYPE, src=url)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
