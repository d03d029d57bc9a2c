"""Personal data of travellers: field-by-field encryption, the passport blind index, and the ONE audited read.

* Each identity field is encrypted with AES-256-GCM (``cryptography``'s ``AESGCM``) under the newest key of
  ``Settings.pii_keys``, with a random 96-bit nonce. The stored text is ``<kid>:<base64url(nonce || ct)>``, so
  any configured key decrypts it and ``rotate_keys`` re-encrypts the rows still under an older key.
  The associated data ``citydata/tracking/<traveller_id>/<field>`` binds a ciphertext to its traveller and
  field: a ciphertext copied into another row or column does not decrypt.
* The passport number is also kept as a keyed HMAC-SHA256 blind index (key derived from the platform secret),
  so immigration can look a traveller up by passport number without any plaintext in the database.
* ``IdentityVault.read`` is the one way to get identity back. It checks the caller's role (and, for police
  roles, ``IncidentAccess``), then writes the audit record (who, when, which traveller, the purpose given)
  and only then decrypts. A denied attempt is audited too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import unicodedata
from collections.abc import Sequence
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.auth import Principal
from citydata.auth.audit import AuditLog
from citydata.auth.roles import Role
from citydata.clock import Clock
from citydata.errors import CityDataError, ConfigError, Forbidden, NotFound, ValidationFailed
from citydata.store import Store
from citydata.tracking.schema import tracking_identity, tracking_travellers

log = logging.getLogger(__name__)

FIELDS = ("name", "passport_no", "nationality", "birth_date", "phone")
COLUMNS = {"name": "name_ct", "passport_no": "passport_ct", "nationality": "nationality_ct",
           "birth_date": "birth_date_ct", "phone": "phone_ct"}
HOTEL_FIELDS = frozenset({"name"})
MIN_PURPOSE = 3


class DecryptionFailed(CityDataError):
    status, code, title = 500, "pii_decrypt_failed", "Personal data could not be decrypted"


def new_traveller_id() -> str:
    """A random pseudonymous id (``tr_`` + 20 base32 characters, 100 bits); never derived from the person."""
    return "tr_" + base64.b32encode(secrets.token_bytes(15)).decode().lower()[:20]


class PiiCipher:
    """AES-256-GCM per field with key ids; encrypts under the newest key, decrypts under any configured one."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ConfigError("no personal-data key configured")
        self.keys = list(keys)
        self.current_kid = self.keys[0][0]
        self._aead = {kid: AESGCM(key) for kid, key in self.keys}

    @staticmethod
    def aad(traveller_id: str, field: str) -> bytes:
        return f"citydata/tracking/{traveller_id}/{field}".encode()

    def encrypt(self, traveller_id: str, field: str, plaintext: str) -> str:
        nonce = secrets.token_bytes(12)
        ct = self._aead[self.current_kid].encrypt(nonce, plaintext.encode(), self.aad(traveller_id, field))
        return f"{self.current_kid}:{base64.urlsafe_b64encode(nonce + ct).decode().rstrip('=')}"

    @staticmethod
    def kid_of(token: str) -> str:
        return token.partition(":")[0]

    def decrypt(self, traveller_id: str, field: str, token: str) -> str:
        kid, sep, body = token.partition(":")
        aead = self._aead.get(kid)
        if not sep or aead is None:
            raise DecryptionFailed(f"no configured key {kid!r} for a stored {field}", code="pii_key_missing")
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        try:
            return aead.decrypt(raw[:12], raw[12:], self.aad(traveller_id, field)).decode()
        except InvalidTag as err:
            raise DecryptionFailed(f"stored {field} fails authentication (tampered or moved)") from err


def normalise_passport(value: str) -> str:
    text = unicodedata.normalize("NFKC", value).upper()
    return "".join(ch for ch in text if ch.isalnum())


class BlindIndex:
    """HMAC-SHA256 of the normalised passport number, under a key derived from the platform secret."""

    def __init__(self, secret_key: bytes) -> None:
        self._key = hmac.new(secret_key, b"citydata/tracking/passport-index", hashlib.sha256).digest()

    def __call__(self, passport_no: str) -> str:
        return hmac.new(self._key, normalise_passport(passport_no).encode(), hashlib.sha256).hexdigest()


class IncidentAccess(Protocol):
    """Whether a police-role caller may see a traveller: true only within an incident assigned to its agency."""

    async def traveller_visible_to(self, principal: Principal, traveller_id: str) -> bool: ...


class DenyIncidentAccess:
    """The default until incidents are wired: no incident links any traveller, so police roles see nothing."""

    async def traveller_visible_to(self, principal: Principal, traveller_id: str) -> bool:
        return False


def check_purpose(purpose: str | None) -> str:
    purpose = (purpose or "").strip()
    if len(purpose) < MIN_PURPOSE or len(purpose) > 300:
        raise ValidationFailed("reading personal data needs a purpose (3 to 300 characters, the `purpose` "
                               "query parameter or X-Purpose header)", code="purpose_required")
    return purpose


class IdentityVault:
    """The encrypted identity table and its one audited read."""

    def __init__(self, store: Store, audit: AuditLog, clock: Clock, keys: Sequence[tuple[str, bytes]],
                 secret_key: bytes, incident_access: IncidentAccess | None = None) -> None:
        self.store, self.audit, self.clock = store, audit, clock
        self.cipher = PiiCipher(keys)
        self.blind_index = BlindIndex(secret_key)
        self.incident_access: IncidentAccess = incident_access or DenyIncidentAccess()

    # -- writing ---------------------------------------------------------------------------------------------
    def identity_row(self, traveller_id: str, identity: dict[str, Any]) -> dict[str, Any]:
        """The ``tracking_identity`` row for an identity dict (plaintext never leaves this function)."""
        now = self.clock.now()
        row: dict[str, Any] = {"traveller_id": traveller_id, "created_at": now, "updated_at": now,
                               "passport_bidx": self.blind_index(str(identity["passport_no"]))}
        for field, column in COLUMNS.items():
            value = identity.get(field)
            row[column] = None if value is None else self.cipher.encrypt(traveller_id, field, str(value))
        return row

    # -- the one audited read --------------------------------------------------------------------------------
    async def allowed_fields(self, principal: Principal, traveller_id: str, hotel_id: str | None) -> frozenset[str]:
        """The identity fields ``principal`` may read for this traveller (empty: none)."""
        if principal.can("tracking.read_identity"):
            return frozenset(FIELDS)
        if principal.role == Role.HOTEL and principal.agency and hotel_id == principal.agency:
            return HOTEL_FIELDS
        if principal.can("tracking.read_identity_incident") and \
                await self.incident_access.traveller_visible_to(principal, traveller_id):
            return frozenset(FIELDS)
        return frozenset()

    async def read(self, principal: Principal, traveller_id: str, purpose: str | None, *,
                   fields: Sequence[str] | None = None, client: str | None = None,
                   action: str = "tracking.identity_read") -> dict[str, Any]:
        """Decrypt a traveller's identity for ``principal``: role check, audit record (awaited), then data.

        ``Forbidden`` (audited as ``tracking.identity_denied``) when the caller may not; ``NotFound`` when no
        identity is held (unknown or erased traveller)."""
        purpose = check_purpose(purpose)
        hotel = await self.store.fetch_one(select(tracking_travellers.c.hotel_id).where(
            tracking_travellers.c.traveller_id == traveller_id))
        allowed = await self.allowed_fields(principal, traveller_id, hotel["hotel_id"] if hotel else None)
        wanted = frozenset(fields) if fields is not None else (allowed or frozenset(FIELDS))
        unknown = wanted - set(FIELDS)
        if unknown:
            raise ValidationFailed(f"unknown identity field {sorted(unknown)[0]!r}", code="invalid_field")
        if not allowed or not wanted <= allowed:
            await self.audit.record(principal, "tracking.identity_denied", subject_type="traveller",
                                    subject_id=traveller_id, purpose=purpose,
                                    detail={"fields": sorted(wanted)}, client=client)
            raise Forbidden("this caller may not read this traveller's identity", code="identity_forbidden")
        row = await self.store.fetch_one(select(tracking_identity).where(
            tracking_identity.c.traveller_id == traveller_id))
        if row is None:
            raise NotFound("no identity held for this traveller", code="traveller_not_found")
        await self.audit.record(principal, action, subject_type="traveller", subject_id=traveller_id,
                                purpose=purpose, detail={"fields": sorted(wanted)}, client=client)
        out: dict[str, Any] = {"traveller_id": traveller_id}
        for field in FIELDS:
            if field in wanted:
                token = row[COLUMNS[field]]
                out[field] = None if token is None else self.cipher.decrypt(traveller_id, field, token)
        return out

    async def lookup_passport(self, principal: Principal, passport_no: str, purpose: str | None, *,
                              client: str | None = None) -> list[str]:
        """Traveller ids with this passport number (immigration), by blind index; audited."""
        purpose = check_purpose(purpose)
        principal.require("tracking.read_identity")
        rows = await self.store.fetch_all(select(tracking_identity.c.traveller_id).where(
            tracking_identity.c.passport_bidx == self.blind_index(passport_no)))
        ids = sorted(str(r["traveller_id"]) for r in rows)
        await self.audit.record(principal, "tracking.passport_lookup", subject_type="traveller",
                                subject_id=ids[0] if len(ids) == 1 else None, purpose=purpose,
                                detail={"matches": len(ids)}, client=client)
        return ids

    # -- key rotation ----------------------------------------------------------------------------------------
    async def rotate_keys(self, chunk: int = 500) -> int:
        """Re-encrypt every field not under the newest key and refresh the blind index, ``chunk`` rows per
        write transaction. Returns the number of rows rewritten."""
        current = self.cipher.current_kid
        done = 0
        after = ""
        while True:
            rows = await self.store.fetch_all(select(tracking_identity).where(
                tracking_identity.c.traveller_id > after).order_by(tracking_identity.c.traveller_id).limit(chunk))
            if not rows:
                return done
            after = str(rows[-1]["traveller_id"])
            updates: list[dict[str, Any]] = []
            for row in rows:
                tid = str(row["traveller_id"])
                stale = any(row[c] is not None and PiiCipher.kid_of(row[c]) != current for c in COLUMNS.values())
                passport = self.cipher.decrypt(tid, "passport_no", row["passport_ct"])
                bidx = self.blind_index(passport)
                if not stale and bidx == row["passport_bidx"]:
                    continue
                values: dict[str, Any] = {"passport_bidx": bidx, "updated_at": self.clock.now()}
                for field, column in COLUMNS.items():
                    if row[column] is not None:
                        values[column] = self.cipher.encrypt(tid, field,
                                                             self.cipher.decrypt(tid, field, row[column]))
                updates.append({"tid": tid, "values": values})

            async def op(conn: AsyncConnection, batch: list[dict[str, Any]] = updates) -> None:
                for item in batch:
                    await conn.execute(update(tracking_identity).where(
                        tracking_identity.c.traveller_id == item["tid"]).values(**item["values"]))

            if updates:
                await self.store.write(op, rows=len(updates))
                done += len(updates)
            log.info("tracking key rotation: %d rows re-encrypted so far", done)
