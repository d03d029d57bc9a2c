"""Checks on screenshots: did the map actually draw the province where the map's projection puts it?"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image
from shapely.geometry import MultiPolygon, Point, Polygon

BACKGROUND = (232, 238, 245)        # the plain map background (#e8eef5) used when there are no tiles

OUTLINE_JS = """() => {
  const c = window.citydata
  const map = c.map
  const polygons = []
  const toXY = (ring) => ring.map((ll) => { const p = map.latLngToContainerPoint(ll); return [p.x, p.y] })
  const walk = (a) => {
    if (!a.length) return
    if (a[0].lat !== undefined) { polygons.push([toXY(a)]); return }
    if (a[0].length && a[0][0].lat !== undefined) { polygons.push(a.map(toXY)); return }
    a.forEach(walk)
  }
  c.reference.province.eachLayer((layer) => walk(layer.getLatLngs()))
  const size = map.getSize()
  return { polygons, width: size.x, height: size.y }
}"""


def province_on_screen(page: Any) -> tuple[MultiPolygon, int, int]:
    """The home province's outline in the map element's pixel coordinates, computed in the page by Leaflet."""
    out = page.evaluate(OUTLINE_JS)
    polys = [Polygon(rings[0], rings[1:]) for rings in out["polygons"] if len(rings[0]) >= 3]
    return MultiPolygon(polys), int(out["width"]), int(out["height"])


def _blank(px: tuple[int, ...]) -> bool:
    r, g, b = px[:3]
    near_bg = abs(r - BACKGROUND[0]) + abs(g - BACKGROUND[1]) + abs(b - BACKGROUND[2]) < 20
    return near_bg or (r > 250 and g > 250 and b > 250)


def province_drawn(png: bytes, outline: MultiPolygon, step: int = 5) -> dict[str, float]:
    """Sample the screenshot of the map element on a grid inside the outline (away from its edge): the share
    of non-blank pixels, and of pixels tinted by the province fill (blue over the light background)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    inner = outline.buffer(-3)
    inside = drawn = tinted = 0
    for y in range(0, image.height, step):
        for x in range(0, image.width, step):
            if not inner.contains(Point(x, y)):
                continue
            inside += 1
            px = image.getpixel((x, y))
            assert isinstance(px, tuple)
            if not _blank(px):
                drawn += 1
                if px[2] > px[0] + 20:
                    tinted += 1
    return {"samples": inside, "drawn": drawn / inside if inside else 0.0,
            "tinted": tinted / inside if inside else 0.0}
