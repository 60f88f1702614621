"""The token store: idTags / idTokens in KV ``tokens``, the records the CSMS processor answers
Authorize and StartTransaction from.

Writers (the API, ``evbus token``) check each record here first; the processor's mirror of the
bucket sees a write within milliseconds. The store's own mirror answers reads, and remembers its
own writes at once, so a read after a write sees it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Final

from nats.js import JetStreamContext

from evbus.clock import parse_rfc3339, rfc3339
from evbus.kv import KvMirror
from schemas import subjects
from schemas.records import TokenRecord, encode

ID_TAG_MAX: Final = 36  # OCPP 2.x IdToken (1.6 idTag: 20)
WRITES_IN_FLIGHT: Final = 1000  # KV puts awaiting their acks at once


class TokenError(ValueError):
    """A token record that may not be stored; the message says why."""


def check_id_tag(text: str, what: str = "idTag") -> str:
    """``text`` if it is a usable idTag: 1 to 36 printable characters, no whitespace."""
    if not 1 <= len(text) <= ID_TAG_MAX:
        raise TokenError(f"{what} must have 1 to {ID_TAG_MAX} characters")
    if not text.isprintable() or any(c.isspace() for c in text):
        raise TokenError(f"{what} {text!r} must be printable characters without whitespace")
    return text


def normalised_expiry(text: str) -> str:
    """An RFC 3339 date-time as evbus stores it: UTC with a ``Z`` (no offset means UTC)."""
    try:
        if "T" not in text.upper():
            raise ValueError("no time")
        moment = parse_rfc3339(text)
    except ValueError:
        raise TokenError(f"expiryDate {text!r} is not an RFC 3339 date-time, e.g. 2027-01-01T00:00:00Z") from None
    return rfc3339(moment, "seconds" if moment.microsecond == 0 else "milliseconds")


def token_record(
    id_tag: str, status: str = "Accepted", expiry_date: str | None = None, parent_id_tag: str | None = None
) -> TokenRecord:
    """A checked, normalised record; :class:`TokenError` says what is wrong."""
    if status not in ("Accepted", "Blocked", "Expired", "Invalid"):
        raise TokenError(f"status {status!r} is not Accepted, Blocked, Expired or Invalid")
    return TokenRecord(
        id_tag=check_id_tag(id_tag),
        status=status,  # type: ignore[arg-type]  # checked above
        expiry_date=None if expiry_date is None else normalised_expiry(expiry_date),
        parent_id_tag=None if parent_id_tag is None else check_id_tag(parent_id_tag, "parentIdTag"),
    )


class TokenStore:
    def __init__(self, mirror: KvMirror[TokenRecord]) -> None:
        self._kv = mirror.kv
        self._mirror = mirror

    @classmethod
    async def open(cls, js: JetStreamContext) -> TokenStore:
        return cls(await KvMirror.open(js, subjects.BUCKET_TOKENS, TokenRecord))

    def get(self, id_tag: str) -> TokenRecord | None:
        return self._mirror.get(id_tag)

    def all(self) -> list[TokenRecord]:
        """Every token, sorted by idTag."""
        return sorted(self._mirror.values(), key=lambda r: r.id_tag)

    def __len__(self) -> int:
        return len(self._mirror)

    async def put(self, records: Iterable[TokenRecord]) -> int:
        """Store ``records`` (one KV put each, up to :data:`WRITES_IN_FLIGHT` awaiting acks at
        once); the number stored. A failed put raises once the others of its batch are done."""
        batch = list(records)
        for start in range(0, len(batch), WRITES_IN_FLIGHT):
            chunk = batch[start : start + WRITES_IN_FLIGHT]
            results = await asyncio.gather(
                *(self._kv.put(subjects.kv_key(r.id_tag), encode(r)) for r in chunk), return_exceptions=True
            )
            for record, result in zip(chunk, results, strict=True):
                if not isinstance(result, BaseException):
                    self._mirror.remember(record.id_tag, record)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise failed[0]
        return len(batch)

    async def delete(self, id_tag: str) -> bool:
        """Remove ``id_tag``; False if the store does not hold it."""
        if self._mirror.get(id_tag) is None:
            return False
        await self._kv.delete(subjects.kv_key(id_tag))
        self._mirror.forget(id_tag)
        return True

    async def stop(self) -> None:
        await self._mirror.stop()
