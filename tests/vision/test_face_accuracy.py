"""Face matching on ../shared/data/faces (pairs.csv): false match and false non-match rates at the default
threshold. Figures are printed (``-s``) and recorded in docs/vision.md."""

from __future__ import annotations

import csv
from typing import Any

import numpy as np

from citydata.config import Settings
from citydata.vision.faces import cosine_distance, cosine_distances, normalised
from tests.vision.conftest import FACES


def _pairs(face_embeddings: dict[str, Any]) -> list[tuple[int, float]]:
    out = []
    with open(FACES / "pairs.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            a, b = face_embeddings.get(row["file_a"]), face_embeddings.get(row["file_b"])
            if a is None or b is None:
                continue
            out.append((int(row["same_person"]), cosine_distance(a, b)))
    return out


def test_fmr_fnmr_at_the_default_threshold(face_embeddings: dict[str, Any]) -> None:
    threshold = Settings.model_fields["vision_face_threshold"].default
    pairs = _pairs(face_embeddings)
    genuine = [d for same, d in pairs if same]
    impostor = [d for same, d in pairs if not same]
    assert len(genuine) >= 12 and len(impostor) >= 40, "the pairs file lost most of its faces"
    fmr = sum(d <= threshold for d in impostor) / len(impostor)
    fnmr = sum(d > threshold for d in genuine) / len(genuine)
    print(f"\nfaces @ cosine {threshold}: FMR {fmr:.3%} ({len(impostor)} impostor pairs, closest "
          f"{min(impostor):.3f}), FNMR {fnmr:.3%} ({len(genuine)} genuine pairs, farthest {max(genuine):.3f})")
    assert fmr == 0.0            # goal: at most 0.1 %; no impostor pair may match on this set
    assert fnmr <= 1 / len(genuine)


def test_vectorised_distance_agrees(face_embeddings: dict[str, Any]) -> None:
    vecs = list(face_embeddings.values())
    gallery = np.stack([normalised(v) for v in vecs[1:]])
    got = cosine_distances(vecs[0], gallery)
    want = [cosine_distance(vecs[0], v) for v in vecs[1:]]
    assert np.allclose(got, want, atol=1e-5)


def test_watchlist_probe_protocol(face_embeddings: dict[str, Any]) -> None:
    """The README's protocol: enrol one photo each of obama, biden, lacamoire; the other photos of them match
    their subject, the two distractors match nobody."""
    threshold = Settings.model_fields["vision_face_threshold"].default
    enrolled = {"obama": "images/barack_obama_01.jpg", "biden": "images/joe_biden_01.jpg",
                "lacamoire": "images/alex_lacamoire_01.jpg"}
    gallery = {k: normalised(face_embeddings[v]) for k, v in enrolled.items()}
    for file, emb in face_embeddings.items():
        if file in enrolled.values():
            continue
        dists = {k: cosine_distance(emb, g) for k, g in gallery.items()}
        best = min(dists, key=lambda k: dists[k])
        hit = best if dists[best] <= threshold else None
        expected = next((k for k in enrolled if k in file), None)
        assert hit == expected, (file, dists)
