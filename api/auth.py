"""API authentication: an admin bearer token, named users, and login sessions (ocpp-ws-board style).

- The admin token is ``EVBUS_API_TOKEN``, or one generated at first start: printed once, only its
  argon2 hash is kept (``{data_dir}/api-token.argon2``).
- Users for ``{username, password}`` logins live in KV ``users`` (argon2 hashes), set with
  ``evbus user NAME``.
- A login creates a session: a random id in an HttpOnly cookie, kept in this process's memory as a
  SHA-256 digest with its expiry. Sessions end at expiry, at logout, or when the process restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from evbus.files import write_once
from evbus.kv import KvMirror
from evbus.passwords import PasswordVerifier, hash_password
from schemas import subjects
from schemas.records import UserRecord

log = logging.getLogger(__name__)

COOKIE: Final = "evbus_session"
ADMIN: Final = "admin"
TOKEN_FILE: Final = "api-token.argon2"  # noqa: S105 - a file name, the hash inside


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    expires_at: float  # epoch seconds


def admin_token_hash(token: str | None, data_dir: Path) -> tuple[str, str | None]:
    """The admin token's hash, and the token itself when it was generated now (to print once)."""
    if token:
        return hash_password(token), None
    generated = secrets.token_urlsafe(32)
    token_hash, created = write_once(data_dir / TOKEN_FILE, lambda: hash_password(generated))
    return token_hash, generated if created else None


class Auth:
    def __init__(
        self,
        token_hash: str,
        users: KvMirror[UserRecord] | None = None,
        *,
        open_access: bool = False,
        session_ttl_s: float = 12 * 3600,
    ) -> None:
        self.token_hash = token_hash
        self.users = users
        self.open_access = open_access
        self.session_ttl_s = session_ttl_s
        self._verifier = PasswordVerifier()
        self._sessions: dict[bytes, Session] = {}

    async def check_token(self, token: str) -> bool:
        return bool(token) and await self._verifier.verify(ADMIN, self.token_hash, token)

    async def check_user(self, username: str, password: str) -> bool:
        record = self.users.get(subjects.kv_key(username)) if self.users and username else None
        if record is None:
            return False
        return await self._verifier.verify(f"user:{username}", record.password_hash, password)

    def start_session(self, user: str) -> tuple[str, Session]:
        self._expire()
        session_id = secrets.token_urlsafe(32)
        session = Session(user=user, expires_at=time.time() + self.session_ttl_s)
        self._sessions[_digest(session_id)] = session
        return session_id, session

    def session(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(_digest(session_id))
        if session is None or session.expires_at <= time.time():
            return None
        return session

    def end_session(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(_digest(session_id), None)

    def _expire(self) -> None:
        now = time.time()
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if hmac.compare_digest(scheme.lower().encode(), b"bearer") else None
