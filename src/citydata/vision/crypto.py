"""Encryption at rest for biometric data (embeddings) and hit snapshots, and the keyed plate hash.

AES-256-GCM under the newest ``Settings.pii_keys`` key, random 96-bit nonce, stored as
``<kid>:<base64url(nonce || ct)>`` (text) or ``<kid>\\n`` + nonce + ct (files). The associated data binds each
ciphertext to its purpose and row (``citydata/vision/<what>/<id>``), so a ciphertext moved elsewhere does not
decrypt. Plates not on a hotlist are kept as HMAC-SHA256 under a key derived from the platform secret: the
same plate gives the same hash (traffic counts), and without the secret the hash cannot be reversed by
enumerating the few million possible registrations.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from citydata.errors import CityDataError, ConfigError


class VisionDecryptFailed(CityDataError):
    status, code, title = 500, "vision_decrypt_failed", "Stored biometric data could not be decrypted"


class VisionCipher:
    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ConfigError("no personal-data key configured")
        self.current_kid = keys[0][0]
        self._aead = {kid: AESGCM(key) for kid, key in keys}

    @staticmethod
    def _aad(what: str, ident: str) -> bytes:
        return f"citydata/vision/{what}/{ident}".encode()

    def seal(self, what: str, ident: str, data: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return self.current_kid.encode() + b"\n" + nonce + \
            self._aead[self.current_kid].encrypt(nonce, data, self._aad(what, ident))

    def open(self, what: str, ident: str, blob: bytes) -> bytes:
        kid, sep, body = blob.partition(b"\n")
        aead = self._aead.get(kid.decode(errors="replace"))
        if not sep or aead is None:
            raise VisionDecryptFailed(f"no configured key for this {what}", code="pii_key_missing")
        try:
            return aead.decrypt(body[:12], body[12:], self._aad(what, ident))
        except InvalidTag as err:
            raise VisionDecryptFailed(f"stored {what} fails authentication (tampered or moved)") from err

    def seal_vector(self, ident: str, vector: np.ndarray) -> str:
        blob = self.seal("embedding", ident, np.asarray(vector, dtype="<f4").tobytes())
        kid, _, body = blob.partition(b"\n")
        return kid.decode() + ":" + base64.urlsafe_b64encode(body).decode().rstrip("=")

    def open_vector(self, ident: str, token: str) -> np.ndarray:
        kid, _, body = token.partition(":")
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return np.frombuffer(self.open("embedding", ident, kid.encode() + b"\n" + raw), dtype="<f4").copy()


class PlateHasher:
    """HMAC-SHA256 (hex) of a normalised plate under a key derived from the platform secret."""

    def __init__(self, secret_key: bytes) -> None:
        self._key = hmac.new(secret_key, b"citydata/vision/plate-hash", hashlib.sha256).digest()

    def __call__(self, plate: str) -> str:
        return hmac.new(self._key, plate.encode(), hashlib.sha256).hexdigest()
