"""Report photos: decode, keep only the GPS position of the EXIF data, re-encode as JPEG.

The browser sends the photo as taken. Its EXIF block can carry the camera's serial number, the owner's name,
the software and thumbnails of the uncropped picture; only the location is useful to the IOC, so every other
tag is dropped (the orientation is applied to the pixels first, so the picture still shows upright)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from citydata.errors import ValidationFailed

GPS_IFD = 0x8825
MAX_PIXELS = 40_000_000          # refuse decompression bombs before decoding
MAX_SIDE = 2048                  # larger photos are scaled down (the IOC needs evidence, not a poster)
FORMATS = frozenset({"JPEG", "PNG", "WEBP", "MPO"})


@dataclass(frozen=True)
class CleanPhoto:
    jpeg: bytes
    width: int
    height: int
    lat: float | None
    lon: float | None


def _ratio(value: Any) -> float:
    if isinstance(value, tuple) and len(value) == 2:
        return float(Fraction(int(value[0]), int(value[1]) or 1))
    return float(value)


def gps_position(gps: dict[int, Any]) -> tuple[float | None, float | None]:
    """(lat, lon) in degrees from an EXIF GPS IFD (tags 1-4), or (None, None)."""
    try:
        lat_ref, lat, lon_ref, lon = gps[1], gps[2], gps[3], gps[4]
        la = _ratio(lat[0]) + _ratio(lat[1]) / 60 + _ratio(lat[2]) / 3600
        lo = _ratio(lon[0]) + _ratio(lon[1]) / 60 + _ratio(lon[2]) / 3600
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
        return None, None
    la = -la if str(lat_ref).upper().startswith("S") else la
    lo = -lo if str(lon_ref).upper().startswith("W") else lo
    if not (-90 <= la <= 90 and -180 <= lo <= 180):
        return None, None
    return la, lo


def clean_photo(data: bytes) -> CleanPhoto:
    """Decode ``data`` (JPEG, PNG or WebP), strip EXIF except GPS, return a JPEG. Raises ``ValidationFailed``
    (code ``invalid_photo``) for anything that is not such an image."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format or ""
            if fmt not in FORMATS:
                raise ValidationFailed(f"photo: {fmt or 'unknown'} images are not accepted (JPEG, PNG or WebP)",
                                       code="invalid_photo", field="photo")
            if probe.width * probe.height > MAX_PIXELS:
                raise ValidationFailed("photo: the image has too many pixels", code="invalid_photo",
                                       field="photo")
            gps = dict(probe.getexif().get_ifd(GPS_IFD))
            image = ImageOps.exif_transpose(probe)
            image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as err:
        raise ValidationFailed("photo: not a readable image", code="invalid_photo", field="photo") from err
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    exif = Image.Exif()
    if gps:
        exif[GPS_IFD] = gps
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, exif=exif.tobytes() if gps else b"")
    lat, lon = gps_position(gps) if gps else (None, None)
    return CleanPhoto(out.getvalue(), image.width, image.height, lat, lon)
