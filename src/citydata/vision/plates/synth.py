"""Synthetic Thai licence plates with realistic degradations.

Used to train the CRNN (``tools/plates/train_crnn.py``), to measure it (``tools/plates/evaluate.py`` and the
tests), and by the simulator to place readable Thai plates in camera scenes. A private-car plate is white with a
thin black border: the registration on the top line (``กข 1234``, ``1กข 234``: an optional leading digit, one or
two consonants, then one to four digits) and the province name on the bottom line.

Degradations: perspective and rotation, loose or tight crops with background around the plate, lighting
gradients and shadows, Gaussian or motion blur, low resolution, sensor noise and JPEG compression.

Only numpy, Pillow and OpenCV are used, so the training environment can load this file by path.
"""

from __future__ import annotations

import functools
import io
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont, features

try:  # imported by path from the training environment, where the package is not on sys.path
    from citydata.vision.plates.provinces import PROVINCES
except ImportError:  # pragma: no cover - training environment only
    import importlib.util as _ilu

    _spec = _ilu.spec_from_file_location("_plate_provinces", Path(__file__).with_name("provinces.py"))
    assert _spec is not None and _spec.loader is not None
    _mod = _ilu.module_from_spec(_spec)
    _spec.loader.exec_module(_mod)
    PROVINCES = _mod.PROVINCES

#: Consonants used in plate series (the obsolete ฃ and ฅ never appear on plates).
CONSONANTS = "กขคฆงจฉชซฌญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรลวศษสหฬอฮ"
DIGITS = "0123456789"
FONT_DIR = Path(__file__).with_name("data") / "fonts"

_PLATE_W, _PLATE_H = 340, 150  # millimetres of a Thai car plate, rendered one pixel per millimetre


@dataclass(frozen=True)
class SynthPlate:
    image_bgr: np.ndarray  # the degraded crop around the plate
    registration: str  # normalised, e.g. "1กข234"
    province: str


def packaged_fonts() -> list[Path]:
    """The Thai fonts shipped with the package (TLWG, GPL-2+ with the font exception)."""
    return sorted(FONT_DIR.glob("*.ttf"))


def random_registration(rng: random.Random) -> tuple[str, str]:
    """A random registration: (normalised text, text as printed with its space)."""
    lead = str(rng.randint(1, 9)) if rng.random() < 0.3 else ""
    letters = "".join(rng.choice(CONSONANTS) for _ in range(rng.choice((1, 2, 2, 2))))
    number = str(rng.randint(1, 9999) if rng.random() < 0.7 else rng.randint(1, 999))
    return lead + letters + number, f"{lead}{letters} {number}"


@functools.lru_cache(maxsize=512)
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    engine = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC
    return ImageFont.truetype(str(path), size, layout_engine=engine)


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font_path: Path, box_w: int, box_h: int, size: int,
              fill: tuple[int, int, int], center: tuple[int, int], stretch: float) -> None:
    """Draw ``text`` centred, scaled to fit the box (horizontal stretch applied by the caller's canvas)."""
    font = _font(font_path, size)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    fit = min(1.0, box_w / max(1.0, (x1 - x0) * stretch), box_h / max(1, y1 - y0))
    if fit < 1.0:
        font = _font(font_path, max(8, int(size * fit)))
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    cx, cy = center
    draw.text((cx / stretch - (x1 + x0) / 2, cy - (y1 + y0) / 2), text, font=font, fill=fill)


def render_clean(registration_printed: str, province: str, font_path: Path, rng: random.Random,
                 scale: float = 1.0) -> np.ndarray:
    """The undegraded plate as a BGR image (``_PLATE_W*scale`` x ``_PLATE_H*scale``)."""
    w, h = int(_PLATE_W * scale), int(_PLATE_H * scale)
    fade = rng.randint(0, 25)
    paper = (250 - fade, 250 - fade, 248 - fade)
    dark = rng.randint(0, 40)
    ink = (dark, dark, dark)
    # Plate fonts are condensed: draw on a narrower canvas and stretch it to the plate width.
    stretch = rng.uniform(1.0, 1.35)
    canvas = Image.new("RGB", (int(w / stretch), h), paper)
    draw = ImageDraw.Draw(canvas)
    border = max(2, int(4 * scale))
    draw.rectangle((border, border, canvas.width - border - 1, h - border - 1), outline=ink, width=max(1, border // 2))
    top_h = int(h * rng.uniform(0.50, 0.58))
    _fit_text(draw, registration_printed, font_path, int(w * 0.9), int(top_h * 0.85), int(h * 0.62), ink,
              (w // 2, int(h * 0.08) + top_h // 2), stretch)
    _fit_text(draw, province, font_path, int(w * 0.86), int(h * 0.27), int(h * 0.3), ink,
              (w // 2, int(h * 0.08) + top_h + int(h * 0.15)), stretch)
    img = np.asarray(canvas.resize((w, h), Image.Resampling.BILINEAR))[:, :, ::-1]
    return np.ascontiguousarray(img)


def _background(rng: random.Random, h: int, w: int) -> np.ndarray:
    """Random colour, a smooth gradient and blotches: a tiny random image scaled up."""
    nrng = np.random.default_rng(rng.getrandbits(32))
    small = nrng.normal(nrng.integers(0, 255, size=3), nrng.uniform(5, 70),
                        size=(max(2, h // 8), max(2, w // 8), 3)).astype(np.float32)
    small += np.linspace(0, nrng.uniform(-80, 80), small.shape[1], dtype=np.float32)[None, :, None]
    bg = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(bg, 0, 255).astype(np.uint8)


def degrade(plate: np.ndarray, rng: random.Random, *, strength: float = 1.0) -> np.ndarray:
    """Place a clean plate on a background with a random perspective, crop around it and degrade the crop."""
    h, w = plate.shape[:2]
    s = strength
    margin_x = rng.uniform(-0.02, 0.12) * w
    margin_y = rng.uniform(-0.02, 0.15) * h
    jit = 0.07 * s
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    dst = np.array([[x + rng.uniform(-jit, jit) * w, y + rng.uniform(-jit, jit) * h] for x, y in src],
                   dtype=np.float32)
    angle = np.deg2rad(rng.uniform(-6, 6) * s)
    c, sn = np.cos(angle), np.sin(angle)
    centre = dst.mean(axis=0)
    dst = (dst - centre) @ np.array([[c, -sn], [sn, c]], dtype=np.float32).T + centre
    x0, y0 = dst.min(axis=0) - np.array([margin_x, margin_y])
    x1, y1 = dst.max(axis=0) + np.array([margin_x, margin_y])
    out_w, out_h = max(8, int(x1 - x0)), max(8, int(y1 - y0))
    dst = dst - np.array([x0, y0])
    matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    warped = cv2.warpPerspective(plate, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), matrix, (out_w, out_h))
    img: np.ndarray = np.where(mask[..., None] > 127, warped, _background(rng, out_h, out_w)).astype(np.float32)

    # lighting: contrast, brightness and a soft shadow or glare band
    img = img * rng.uniform(0.55, 1.15) + rng.uniform(-50, 40) * s
    if rng.random() < 0.5 * s:
        gx = np.linspace(0, 1, out_w, dtype=np.float32)[None, :]
        gy = np.linspace(0, 1, out_h, dtype=np.float32)[:, None]
        ramp = gx * rng.uniform(-1, 1) + gy * rng.uniform(-1, 1)
        ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
        img = img * (1 - rng.uniform(0.2, 0.6) * ramp[..., None])
    img = np.clip(img, 0, 255).astype(np.uint8)

    # low resolution: plates are often 60-140 px wide in a traffic frame
    target_w = int(rng.uniform(80, 220) if rng.random() < 0.85 else rng.uniform(60, 80))
    target_h = max(8, int(out_h * target_w / out_w))
    img = cv2.resize(img, (target_w, target_h), interpolation=cv2.INTER_AREA)

    r = rng.random()
    big = target_w > 130  # a 5-pixel kernel only where the plate is large enough to survive it
    if r < 0.35 * s:
        k = rng.choice((3, 5)) if big else 3
        img = cv2.GaussianBlur(img, (k, k), rng.uniform(0.3, 1.2) * s)
    elif r < 0.55 * s:
        k = rng.choice((3, 5)) if big else 3
        kernel = np.zeros((k, k), np.float32)
        if rng.random() < 0.5:
            kernel[k // 2, :] = 1.0 / k
        else:
            kernel[:, k // 2] = 1.0 / k
        img = cv2.filter2D(img, -1, kernel)
    if rng.random() < 0.7:
        sigma = rng.uniform(0, 12) * s
        noise = np.random.default_rng(rng.getrandbits(32)).normal(0, sigma, img.shape)
        img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.8:
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.uniform(25, 90))])
        decoded = cv2.imdecode(enc, cv2.IMREAD_COLOR) if ok else None
        if decoded is not None:
            img = np.asarray(decoded)
    return img


def random_plate(rng: random.Random, fonts: list[Path] | None = None, *, strength: float = 1.0,
                 province: str | None = None, registration: str | None = None) -> SynthPlate:
    """One degraded plate crop with its ground truth."""
    fonts = fonts or packaged_fonts()
    reg, printed = random_registration(rng)
    if registration is not None:
        reg, printed = registration, _printed(registration)
    prov = province or rng.choice(PROVINCES)
    clean = render_clean(printed, prov, rng.choice(fonts), rng, scale=0.65)  # crops end up 60-220 px wide
    return SynthPlate(degrade(clean, rng, strength=strength), reg, prov)


def _printed(registration: str) -> str:
    i = len(registration)
    while i > 0 and registration[i - 1].isdigit():
        i -= 1
    return f"{registration[:i]} {registration[i:]}" if 0 < i < len(registration) else registration


def plate_image(registration: str, province: str, *, width: int = 170, seed: int = 0) -> np.ndarray:
    """A clean, undegraded plate ``width`` pixels wide (BGR), for placing in simulated scenes."""
    rng = random.Random(seed)
    clean = render_clean(_printed(registration), province, packaged_fonts()[0], rng)
    height = round(width * clean.shape[0] / clean.shape[1])
    return cv2.resize(clean, (width, height), interpolation=cv2.INTER_AREA)


def place_in_scene(scene_bgr: np.ndarray, plate_bgr: np.ndarray, x: int, y: int) -> tuple[int, int, int, int]:
    """Paste a plate into a scene at (x, y) in place; returns the plate's (x, y, w, h) box, clipped to the scene."""
    h, w = plate_bgr.shape[:2]
    sh, sw = scene_bgr.shape[:2]
    x1, y1 = min(sw, x + w), min(sh, y + h)
    scene_bgr[y:y1, x:x1] = plate_bgr[: y1 - y, : x1 - x]
    return x, y, x1 - x, y1 - y


def jpeg_bytes(image_bgr: np.ndarray, quality: int = 90) -> bytes:
    """Encode an image as JPEG (helper for the simulator and the API tests)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image_bgr[:, :, ::-1])).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
