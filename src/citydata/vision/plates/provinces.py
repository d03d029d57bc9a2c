"""The 77 Thai province names as written on the bottom line of a plate, and closest-name matching.

The names are the ``pro_th`` values of ``citydata/geo/data/phuket/thailand_provinces.geojson`` (a test checks
that both lists agree). The order is fixed: the CRNN's province head outputs one score per name in this order, so
never reorder or edit this tuple without retraining the model.
"""

from __future__ import annotations

import unicodedata

PROVINCES: tuple[str, ...] = (
    "กรุงเทพมหานคร", "สมุทรปราการ", "นนทบุรี", "ปทุมธานี", "พระนครศรีอยุธยา", "อ่างทอง", "ลพบุรี",
    "สิงห์บุรี", "ชัยนาท", "สระบุรี", "ชลบุรี", "ระยอง", "จันทบุรี", "ตราด", "ฉะเชิงเทรา", "ปราจีนบุรี",
    "นครนายก", "สระแก้ว", "นครราชสีมา", "บุรีรัมย์", "สุรินทร์", "ศรีสะเกษ", "อุบลราชธานี", "ยโสธร",
    "ชัยภูมิ", "อำนาจเจริญ", "บึงกาฬ", "หนองบัวลำภู", "ขอนแก่น", "อุดรธานี", "เลย", "หนองคาย",
    "มหาสารคาม", "ร้อยเอ็ด", "กาฬสินธุ์", "สกลนคร", "นครพนม", "มุกดาหาร", "เชียงใหม่", "ลำพูน",
    "ลำปาง", "อุตรดิตถ์", "แพร่", "น่าน", "พะเยา", "เชียงราย", "แม่ฮ่องสอน", "นครสวรรค์", "อุทัยธานี",
    "กำแพงเพชร", "ตาก", "สุโขทัย", "พิษณุโลก", "พิจิตร", "เพชรบูรณ์", "ราชบุรี", "กาญจนบุรี",
    "สุพรรณบุรี", "นครปฐม", "สมุทรสาคร", "สมุทรสงคราม", "เพชรบุรี", "ประจวบคีรีขันธ์",
    "นครศรีธรรมราช", "กระบี่", "พังงา", "ภูเก็ต", "สุราษฎร์ธานี", "ระนอง", "ชุมพร", "สงขลา", "สตูล",
    "ตรัง", "พัทลุง", "ปัตตานี", "ยะลา", "นราธิวาส",
)  # fmt: skip

_INDEX = {name: i for i, name in enumerate(PROVINCES)}


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def province_index(name: str) -> int:
    """Position of an exact province name in :data:`PROVINCES` (KeyError if it is not one)."""
    return _INDEX[name]


def match_province(text: str, *, max_ratio: float = 0.5) -> str | None:
    """The province name closest to an OCR reading of the bottom line, or None when nothing is close enough.

    Closeness is the edit distance over the name length; a reading further than ``max_ratio`` from every name
    (noise, an empty line, a Latin plate) matches nothing rather than the least bad province.
    """
    cleaned = "".join(c for c in unicodedata.normalize("NFC", text) if "\u0e00" <= c <= "\u0e7f")
    if not cleaned:
        return None
    if cleaned in _INDEX:
        return cleaned
    best, best_score = None, max_ratio
    for name in PROVINCES:
        score = _levenshtein(cleaned, name) / max(len(name), len(cleaned))
        if score < best_score or (score == best_score and best is None):
            best, best_score = name, score
    return best
