"""Watchlists: enrolment (several photos per subject, a reason, an expiry), matching, operator feedback.

* Enrolled embeddings are stored only encrypted (``vision_embeddings.vector_ct``) and held decrypted in memory
  for matching. Each enrolment writes an audit record before anything is stored.
* ``match`` compares a probe with every live (not expired) subject of the watchlists by cosine distance. A
  probe is a hit for the closest subject when the distance is at most that watchlist's threshold AND the probe
  is not closer to one of the subject's negative samples (faces operators marked as wrong hits) than to the
  subject's own photos. Nothing is kept about a probe that is not a hit: the caller drops it.
* ``mark`` (operator review): ``wrong`` turns the hit's stored embedding into a negative sample of the
  subject, so similar faces stop matching; ``confirmed`` keeps it as a hit record only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.auth import Principal
from citydata.auth.audit import AuditLog
from citydata.clock import Clock
from citydata.errors import NotFound, ValidationFailed
from citydata.store import Store
from citydata.vision.crypto import VisionCipher
from citydata.vision.faces import Embedding, cosine_distances, normalised
from citydata.vision.schema import vision_embeddings, vision_face_hits, vision_subjects, vision_watchlists

log = logging.getLogger(__name__)
DEFAULT_THRESHOLD = 0.07
ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


def check_id(value: str, what: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= 80 or not set(value) <= ID_CHARS:
        raise ValidationFailed(f"{what} must be 1 to 80 letters, digits or - _ . :", code=f"invalid_{what}")
    return value


@dataclass(slots=True)
class Subject:
    watchlist: str
    subject_id: str
    expires_at: datetime
    positives: list[Embedding] = field(default_factory=list)
    negatives: list[Embedding] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Match:
    watchlist: str
    subject_id: str
    score: float            # cosine distance to the closest enrolled photo
    threshold: float


class Watchlists:
    def __init__(self, store: Store, audit: AuditLog, clock: Clock, cipher: VisionCipher,
                 default_threshold: float = DEFAULT_THRESHOLD) -> None:
        self.store, self.audit, self.clock, self.cipher = store, audit, clock, cipher
        self.default_threshold = default_threshold
        self.thresholds: dict[str, float] = {}
        self.subjects: dict[tuple[str, str], Subject] = {}
        self._gallery: dict[str, tuple[npt.NDArray[np.float32], list[str]]] = {}
        self.suppressed = 0

    # -- loading ---------------------------------------------------------------------------------------------
    async def load(self) -> None:
        rows = await self.store.fetch_all(select(vision_watchlists))
        self.thresholds = {r["id"]: float(r["threshold"]) for r in rows}
        self.subjects = {}
        for r in await self.store.fetch_all(select(vision_subjects)):
            self.subjects[(r["watchlist_id"], r["subject_id"])] = Subject(r["watchlist_id"], r["subject_id"],
                                                                          r["expires_at"])
        rows = await self.store.fetch_all(select(vision_embeddings).where(
            vision_embeddings.c.kind.in_(("positive", "negative"))))
        for r in rows:
            subj = self.subjects.get((r["watchlist_id"], r["subject_id"]))
            if subj is None:
                continue
            vec = normalised(self.cipher.open_vector(self._ident(r["watchlist_id"], r["subject_id"]), r["vector_ct"]))
            (subj.positives if r["kind"] == "positive" else subj.negatives).append(vec)
        self._rebuild()

    @staticmethod
    def _ident(watchlist: str, subject_id: str) -> str:
        return f"{watchlist}/{subject_id}"

    def _rebuild(self) -> None:
        self._gallery = {}
        per: dict[str, tuple[list[Embedding], list[str]]] = {}
        for (wl, sid), subj in self.subjects.items():
            vecs, ids = per.setdefault(wl, ([], []))
            for v in subj.positives:
                vecs.append(v)
                ids.append(sid)
        for wl, (vecs, ids) in per.items():
            self._gallery[wl] = (np.stack(vecs).astype(np.float32) if vecs else np.zeros((0, 128), np.float32), ids)

    # -- watchlists and enrolment ----------------------------------------------------------------------------
    async def ensure_watchlist(self, principal: Principal, watchlist: str, *, name: str | None = None,
                               threshold: float | None = None) -> dict[str, Any]:
        watchlist = check_id(watchlist, "watchlist")
        if threshold is not None and not 0.0 < threshold < 1.0:
            raise ValidationFailed("threshold must be between 0 and 1 (cosine distance)", code="invalid_threshold")
        now = self.clock.now()
        existing = await self.store.fetch_one(select(vision_watchlists).where(vision_watchlists.c.id == watchlist))
        if existing is None:
            row = {"id": watchlist, "name": name or watchlist, "threshold": threshold or self.default_threshold,
                   "created_by": principal.subject[:100], "created_at": now}
            await self.store.insert_rows(vision_watchlists, [row])
        elif threshold is not None or name is not None:
            values: dict[str, Any] = {}
            if threshold is not None:
                values["threshold"] = threshold
            if name is not None:
                values["name"] = name
            await self.store.execute(update(vision_watchlists).where(vision_watchlists.c.id == watchlist)
                                     .values(**values))
        if existing is None or threshold is not None:
            await self.audit.record(principal, "vision.watchlist_set", subject_type="watchlist",
                                    subject_id=watchlist, detail={"threshold": threshold})
        out = await self.store.fetch_one(select(vision_watchlists).where(vision_watchlists.c.id == watchlist))
        assert out is not None
        self.thresholds[watchlist] = float(out["threshold"])
        return dict(out)

    async def enrol(self, principal: Principal, watchlist: str, subject_id: str, embeddings: Sequence[Embedding],
                    *, reason: str, expires_at: datetime, client: str | None = None) -> dict[str, Any]:
        """Add a subject (or more photos of one). ``embeddings``: one per photo, already checked to hold
        exactly one face each. Audited before anything is stored."""
        watchlist, subject_id = check_id(watchlist, "watchlist"), check_id(subject_id, "subject")
        reason = reason.strip()
        if not 3 <= len(reason) <= 500:
            raise ValidationFailed("an enrolment needs a reason (3 to 500 characters)", code="reason_required")
        if expires_at.tzinfo is None:
            raise ValidationFailed("expires_at needs a time zone", code="invalid_expiry")
        now = self.clock.now()
        if expires_at <= now:
            raise ValidationFailed("expires_at must be in the future", code="invalid_expiry")
        if not embeddings:
            raise ValidationFailed("at least one photo with one face is needed", code="no_face")
        if watchlist not in self.thresholds:
            await self.ensure_watchlist(principal, watchlist)
        await self.audit.record(principal, "vision.enrol", subject_type="watchlist_subject",
                                subject_id=f"{watchlist}/{subject_id}"[:100], purpose=reason[:300],
                                detail={"photos": len(embeddings), "expires_at": expires_at.isoformat()},
                                client=client)
        ident = self._ident(watchlist, subject_id)
        rows = [{"watchlist_id": watchlist, "subject_id": subject_id, "kind": "positive",
                 "vector_ct": self.cipher.seal_vector(ident, e), "source": f"enrol:{i}", "created_at": now}
                for i, e in enumerate(embeddings)]
        subject_row = {"watchlist_id": watchlist, "subject_id": subject_id, "reason": reason,
                       "expires_at": expires_at, "enrolled_by": principal.subject[:100], "created_at": now}

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(delete(vision_subjects).where(and_(vision_subjects.c.watchlist_id == watchlist,
                                                                  vision_subjects.c.subject_id == subject_id)))
            await conn.execute(vision_subjects.insert().values(**subject_row))
            await conn.execute(vision_embeddings.insert(), rows)

        await self.store.write(op, rows=len(rows) + 1)
        subj = self.subjects.get((watchlist, subject_id))
        if subj is None:
            subj = self.subjects[(watchlist, subject_id)] = Subject(watchlist, subject_id, expires_at)
        subj.expires_at = expires_at
        subj.positives.extend(normalised(e) for e in embeddings)
        self._rebuild()
        return {"watchlist": watchlist, "subject_id": subject_id, "photos": len(subj.positives),
                "expires_at": expires_at.isoformat()}

    async def remove(self, principal: Principal, watchlist: str, subject_id: str, *, reason: str) -> None:
        if (watchlist, subject_id) not in self.subjects:
            raise NotFound("no such subject on this watchlist", code="subject_not_found")
        await self.audit.record(principal, "vision.unenrol", subject_type="watchlist_subject",
                                subject_id=f"{watchlist}/{subject_id}"[:100], purpose=reason[:300] or None)
        await self._delete_subject(watchlist, subject_id)

    async def _delete_subject(self, watchlist: str, subject_id: str) -> None:
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(delete(vision_embeddings).where(and_(vision_embeddings.c.watchlist_id == watchlist,
                                                                    vision_embeddings.c.subject_id == subject_id)))
            await conn.execute(delete(vision_subjects).where(and_(vision_subjects.c.watchlist_id == watchlist,
                                                                  vision_subjects.c.subject_id == subject_id)))

        await self.store.write(op)
        self.subjects.pop((watchlist, subject_id), None)
        self._rebuild()

    async def purge_expired(self) -> int:
        now = self.clock.now()
        gone = [k for k, s in self.subjects.items() if s.expires_at <= now]
        for wl, sid in gone:
            await self._delete_subject(wl, sid)
        if gone:
            log.info("vision: %d expired watchlist subjects purged", len(gone))
        return len(gone)

    # -- matching --------------------------------------------------------------------------------------------
    def match(self, probe: Embedding, watchlists: Sequence[str] | None = None) -> Match | None:
        """The best live hit for ``probe`` over the given watchlists (all by default), or None."""
        now = self.clock.now()
        best: Match | None = None
        p = normalised(probe)
        for wl, (gallery, ids) in self._gallery.items():
            if (watchlists is not None and wl not in watchlists) or not ids:
                continue
            threshold = self.thresholds.get(wl, self.default_threshold)
            dists = cosine_distances(p, gallery)
            order = np.argsort(dists)
            for idx in order:
                d = float(dists[idx])
                if d > threshold:
                    break
                subj = self.subjects[(wl, ids[idx])]
                if subj.expires_at <= now:
                    continue
                if subj.negatives:
                    neg = float(cosine_distances(p, np.stack(subj.negatives)).min())
                    if neg < d:
                        self.suppressed += 1
                        continue
                if best is None or d < best.score:
                    best = Match(wl, subj.subject_id, d, threshold)
                break
        return best

    def nearest(self, probe: Embedding, watchlists: Sequence[str] | None = None) -> float | None:
        """The cosine distance to the closest live enrolled photo (None: no live subject)."""
        now = self.clock.now()
        best: float | None = None
        for wl, (gallery, ids) in self._gallery.items():
            if (watchlists is not None and wl not in watchlists) or not ids:
                continue
            dists = cosine_distances(normalised(probe), gallery)
            for idx in np.argsort(dists):
                if self.subjects[(wl, ids[idx])].expires_at > now:
                    d = float(dists[idx])
                    best = d if best is None else min(best, d)
                    break
        return best

    # -- hits ------------------------------------------------------------------------------------------------
    def hit_embedding_row(self, hit_id: str, match: Match, embedding: Embedding) -> dict[str, Any]:
        """The encrypted copy of a HIT's embedding (kept so a wrong hit can become a negative sample)."""
        return {"watchlist_id": match.watchlist, "subject_id": match.subject_id, "kind": "hit",
                "vector_ct": self.cipher.seal_vector(self._ident(match.watchlist, match.subject_id), embedding),
                "source": f"hit:{hit_id}", "created_at": self.clock.now()}

    async def mark(self, principal: Principal, hit_id: str, verdict: str, *,
                   client: str | None = None) -> dict[str, Any]:
        if verdict not in ("wrong", "confirmed"):
            raise ValidationFailed("verdict must be 'wrong' or 'confirmed'", code="invalid_verdict")
        hit = await self.store.fetch_one(select(vision_face_hits).where(vision_face_hits.c.id == hit_id))
        if hit is None:
            raise NotFound("no such hit", code="hit_not_found")
        await self.audit.record(principal, "vision.hit_review", subject_type="face_hit", subject_id=hit_id,
                                detail={"verdict": verdict, "subject": hit["subject_id"]}, client=client)
        kind = "negative" if verdict == "wrong" else "hit"

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(update(vision_face_hits).where(vision_face_hits.c.id == hit_id).values(
                status=verdict, reviewed_by=principal.subject[:100]))
            await conn.execute(update(vision_embeddings).where(vision_embeddings.c.source == f"hit:{hit_id}")
                               .values(kind=kind))

        await self.store.write(op)
        if verdict == "wrong":
            row = await self.store.fetch_one(select(vision_embeddings).where(
                vision_embeddings.c.source == f"hit:{hit_id}"))
            subj = self.subjects.get((hit["watchlist_id"], hit["subject_id"]))
            if row is not None and subj is not None:
                subj.negatives.append(normalised(self.cipher.open_vector(
                    self._ident(hit["watchlist_id"], hit["subject_id"]), row["vector_ct"])))
        return {"hit_id": hit_id, "status": verdict}

    def describe(self) -> list[dict[str, Any]]:
        now = self.clock.now()
        out: dict[str, dict[str, Any]] = {wl: {"id": wl, "threshold": t, "subjects": 0}
                                          for wl, t in self.thresholds.items()}
        for (wl, _), subj in self.subjects.items():
            if subj.expires_at > now and wl in out:
                out[wl]["subjects"] += 1
        return sorted(out.values(), key=lambda d: str(d["id"]))
