"""Enrolment photos → embeddings: each photo must show exactly one face (else a 400 naming the photo)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from citydata.errors import Unavailable, ValidationFailed
from citydata.vision.faces import Embedding
from citydata.vision.frames import Image

if TYPE_CHECKING:
    from citydata.vision.service import VisionService


async def embeddings_for_enrolment(service: VisionService, images: Sequence[Image]) -> list[Embedding]:
    if not service.analyser.ready["faces"]:
        raise Unavailable(f"face analytics unavailable: {service.analyser.reasons['faces']}",
                          code="faces_unavailable")
    out: list[Embedding] = []
    for i, image in enumerate(images):
        faces = await service.analyser.faces(image)
        if len(faces) != 1:
            raise ValidationFailed(f"photo {i + 1} shows {len(faces)} faces; an enrolment photo must show exactly "
                                   "one", code="enrol_face_count")
        out.append(faces[0].embedding)
    return out
