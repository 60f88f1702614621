"""Station passwords: argon2id hashes, verified off the event loop, with a cache of recent successes.

argon2 verification takes tens of milliseconds by design. A reconnect storm of thousands of
stations would spend minutes of CPU on it, so a successful (station, password, stored hash) triple
is remembered as a keyed SHA-256 digest (the plaintext is never kept); any change of the stored hash
invalidates it, and a wrong password is always checked against argon2.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections import OrderedDict

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class PasswordVerifier:
    def __init__(self, cache_size: int = 50_000) -> None:
        self._key = secrets.token_bytes(32)
        self._ok: OrderedDict[str, bytes] = OrderedDict()
        self._cache_size = cache_size

    def _digest(self, station: str, stored_hash: str, password: str) -> bytes:
        material = "\0".join((station, stored_hash, password)).encode()
        return hmac.new(self._key, material, hashlib.sha256).digest()

    async def verify(self, station: str, stored_hash: str, password: str) -> bool:
        digest = self._digest(station, stored_hash, password)
        remembered = self._ok.get(station)
        if remembered is not None and hmac.compare_digest(remembered, digest):
            self._ok.move_to_end(station)
            return True
        ok = await asyncio.to_thread(verify_password, stored_hash, password)
        if ok:
            self._ok[station] = digest
            self._ok.move_to_end(station)
            while len(self._ok) > self._cache_size:
                self._ok.popitem(last=False)
        return ok
