"""Diagnostics and log files stations upload (1.6 GetDiagnostics, 2.x GetLog), and the operator
routes that list, fetch and delete them.

Stations cannot send the admin token, so the URL a get-diagnostics or get-log command hands them
carries a capability instead: ``/api/uploads/{ticket}/``, the ticket being
``{station id, base64url}.{expiry, epoch seconds}.{MAC}`` with the MAC the first 16 bytes of an
HMAC-SHA256 over station and expiry, keyed by a secret generated once into
``{data_dir}/upload-key``. A forged, altered, other station's or expired ticket is a 403 and an
``events.security.upload_refused`` event.

Real chargers upload with ``PUT`` and the raw body (``curl -T``), ``POST`` multipart/form-data (the
first part with a file name: ``curl -F diag=@file``) or ``POST`` with the raw body; a file name may
follow the ticket. The body streams into a hidden temporary file in the station's folder,
``{data_dir}/uploads/{station as its subject token}/``, hashed on the way and bounded by
``EVBUS_UPLOAD_MAX_BYTES`` (413, nothing kept); then it is synced, renamed to its stored name and
recorded as ``events.upload.{station}.received``.

The stored name is never the network's: ``{UTC time}_{safe base name}`` (:func:`safe_name`), and the
resolved path must lie in the station's folder before anything is written there or read from it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
import unicodedata
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, NoReturn

import msgspec
from litestar import Request, Response, delete, get, route
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath
from litestar.response import File
from litestar.types import Method
from multipart import (
    MultipartError,
    MultipartSegment,
    PushMultipartParser,
    parse_content_disposition,
    parse_options_header,
)

from api.monitoring import Done, Limit, Offset, listing
from api.services import Services, Svc, json_response, remote_address
from evbus.clock import rfc3339
from evbus.files import write_once
from evbus.settings import Settings
from schemas import subjects

log = logging.getLogger(__name__)

KEY_FILE: Final = "upload-key"  # hex of the 32-byte HMAC key, made at first use
UPLOADS_DIR: Final = "uploads"
MAC_BYTES: Final = 16  # 128 bits: half of SHA-256, the shortest truncation RFC 2104 recommends
BASE_MAX: Final = 80  # characters of a safe base name, extension included
EXTENSION: Final = re.compile(r"[A-Za-z0-9]{1,10}")
UNSAFE_RUN: Final = re.compile(r"[^A-Za-z0-9._-]+")
STORED: Final = re.compile(r"[0-9]{8}T[0-9]{6}\.[0-9]{6}Z(-[0-9]{1,3})?_[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
DEFAULT_BASE: Final = "upload"
MAX_PARTS: Final = 16  # of a multipart body
REFUSED: Final = "invalid or expired upload URL"


# --- tickets: the capability in the upload URL ------------------------------------------------


class TicketRefused(ValueError):
    """The ticket is malformed, not ours, or expired (the message says which; never the key)."""

    def __init__(self, reason: str, station: str | None = None) -> None:
        super().__init__(reason)
        self.station = station  # set once the MAC proved it: an expired ticket's station


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Tickets:
    """Issues and checks upload tickets with one key."""

    _FORMAT: Final = re.compile(
        r"(?P<station>[A-Za-z0-9_-]{1,256})\.(?P<expires>[0-9]{1,12})\.(?P<mac>[A-Za-z0-9_-]{22})"
    )

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("an upload key has at least 32 bytes")
        self._key = key

    def _mac(self, station: str, expires: int) -> str:
        message = msgspec.json.encode(["evbus-upload", station, expires])  # unambiguous for any station id
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest()[:MAC_BYTES])

    def issue(self, station: str, expires: int) -> str:
        """A ticket that lets ``station`` upload until ``expires`` (epoch seconds)."""
        return f"{_b64(station.encode())}.{expires}.{self._mac(station, expires)}"

    def check(self, ticket: str, now: float) -> str:
        """The station the ticket was issued to; :class:`TicketRefused` if it is not valid now."""
        found = self._FORMAT.fullmatch(ticket)
        if found is None:
            raise TicketRefused("malformed ticket")
        try:
            station = _unb64(found["station"]).decode()
        except (ValueError, UnicodeDecodeError):
            raise TicketRefused("malformed ticket") from None
        expires = int(found["expires"])
        if _b64(station.encode()) != found["station"] or not hmac.compare_digest(
            self._mac(station, expires), found["mac"]
        ):
            raise TicketRefused(f"wrong signature (claims station {station[:64]!r})")
        if expires <= now:
            raise TicketRefused("expired", station)
        return station


def upload_key(data_dir: Path) -> bytes:
    """The HMAC key of upload tickets: ``{data_dir}/upload-key``, generated at first use."""
    key, _ = write_once(data_dir / KEY_FILE, lambda: secrets.token_hex(32))
    return bytes.fromhex(key)


@functools.cache
def tickets(data_dir: Path) -> Tickets:
    """The tickets of one data directory (its key is read once per process: the API's bootstrap
    reads it before serving, so no request waits for the file)."""
    return Tickets(upload_key(data_dir))


def upload_location(svc: Services, request: Request[Any, Any, Any], station: str) -> Callable[[], str]:
    """How :class:`processors.commands.named.Context` gets the station's upload URL: made only when
    a command needs one, valid ``EVBUS_UPLOAD_TICKET_HOURS``, on ``EVBUS_PUBLIC_URL`` or else the
    base URL of ``request`` (the operator's request that sends the command)."""

    def location() -> str:
        base = svc.settings.public_url or str(request.base_url)
        expires = int(svc.now().timestamp() + svc.settings.upload_ticket_hours * 3600)
        return f"{base.rstrip('/')}/api/uploads/{tickets(svc.settings.data_dir).issue(station, expires)}/"

    return location


# --- file names -------------------------------------------------------------------------------


def safe_name(sent: str | None) -> str:
    """A base name of only ``[A-Za-z0-9._-]`` made from the name a station sent: directory parts
    (``/`` and ``\\``) dropped, accents folded and other characters replaced by ``_``, no leading
    or trailing dots, dashes or underscores, at most :data:`BASE_MAX` characters keeping an
    extension of up to 10 letters and digits; ``upload`` when nothing is left."""
    name = (sent or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    name = UNSAFE_RUN.sub("_", name).strip("._-")
    stem, dot, extension = name.rpartition(".")
    if not (dot and stem and EXTENSION.fullmatch(extension)):
        stem, extension = name, ""
    stem = stem[: BASE_MAX - len(extension) - 1].rstrip("._-") or DEFAULT_BASE
    return f"{stem}.{extension}" if extension else stem


def station_folder(data_dir: Path, station: str) -> Path:
    """``{data_dir}/uploads/{station's subject token}``, resolved (tokens are ``[A-Za-z0-9_%-]``)."""
    return (data_dir / UPLOADS_DIR / subjects.token(station)).resolve()


def stored_path(folder: Path, name: str) -> Path | None:
    """The stored file ``name`` in ``folder``, or None if ``name`` is not a stored name or its
    resolved path is not directly inside the (resolved) folder."""
    if not STORED.fullmatch(name):
        return None
    path = (folder / name).resolve()
    return path if path.is_relative_to(folder) and path.parent == folder else None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


# --- receiving --------------------------------------------------------------------------------


class TooLarge(Exception):
    """The body went over ``EVBUS_UPLOAD_MAX_BYTES``."""


class UploadReceived(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """Body of ``events.upload.{station}.received``, and the answer to the station."""

    station: str
    file: str
    bytes: int
    sha256: str
    content_type: str | None = None
    sent_name: str | None = None  # as the station sent it (at most 200 characters), for the record
    remote_address: str | None = None
    at: str


class UploadDeleted(msgspec.Struct, kw_only=True, rename="camel"):
    """Body of ``events.upload.{station}.deleted``."""

    station: str
    file: str
    deleted_by: str
    at: str


class _Draft:
    """The file being received: a hidden temporary file in the station's folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / f".{secrets.token_hex(8)}.part"  # never a stored name: a leading dot
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # logs may hold secrets
        self._file = os.fdopen(fd, "wb")
        self.size = 0
        self.sha256 = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self.size += len(chunk)
        self.sha256.update(chunk)

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    async def commit(self, base: str, at: datetime) -> str:
        """Sync the file, then rename it to ``{time}_{base}`` (``{time}-{n}_{base}`` when taken).
        The free-name check and the rename run without an await between them: no other upload of
        this process can take the name meanwhile."""
        await asyncio.to_thread(self._sync)
        stamp = _stamp(at)
        for n in range(1000):
            name = f"{stamp}_{base}" if n == 0 else f"{stamp}-{n}_{base}"
            target = stored_path(self.folder, name)
            if target is None:
                raise ValueError(f"{name!r} is not a safe stored name")  # safe_name() makes this unreachable
            if not target.exists():
                os.rename(self.path, target)
                return name
        raise FileExistsError(f"no free name for {base!r} at {stamp}")

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


async def _bounded(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise TooLarge
        yield chunk  # the last one is empty: the end of the body


async def _raw(chunks: AsyncIterator[bytes], draft: _Draft) -> None:
    async for chunk in chunks:
        draft.write(chunk)


async def _multipart(chunks: AsyncIterator[bytes], boundary: str, draft: _Draft) -> tuple[str, str | None]:
    """Write the first part that has a file name; its name and content type."""
    chosen: MultipartSegment | None = None
    current: MultipartSegment | None = None
    with PushMultipartParser(boundary, max_segment_count=MAX_PARTS) as parser:
        async for chunk in chunks:
            if parser.closed:
                continue  # an epilogue after the last boundary: read, not parsed
            for event in parser.parse(chunk):
                if isinstance(event, MultipartSegment):
                    current = event
                    if chosen is None and event.filename is not None:
                        chosen = event
                elif event:
                    if current is chosen and chosen is not None:
                        draft.write(event)
                else:
                    current = None
        if not parser.closed:
            raise MultipartError("the multipart body ends early")
    if chosen is None:
        raise MultipartError("no part with a file name (curl -F name=@file)")
    return chosen.filename, chosen.content_type


async def _refuse(svc: Services, request: Request[Any, Any, Any], reason: TicketRefused) -> NoReturn:
    try:
        await svc.security_event(
            "upload_refused",
            remote_address(request),
            f"upload refused: {reason}",
            station=reason.station,
            throttled=True,
        )
    except Exception as exc:  # the 403 stands; its event is best effort
        log.error("security event for a refused upload not stored: %r", exc)
    raise HTTPException(status_code=403, detail=REFUSED)


def _operation_id(handler: Any, method: Method, components: list[Any]) -> str:
    named = any(getattr(c, "name", None) == "filename" for c in components)
    verb = str(getattr(method, "value", method)).title()
    return f"upload{verb}{'Named' if named else ''}"  # uploadPut, uploadPostNamed, …


@route(
    ["/api/uploads/{ticket:str}", "/api/uploads/{ticket:str}/{filename:str}"],
    http_method=["PUT", "POST"],
    operation_id=_operation_id,
    tags=["uploads"],
    exclude_from_auth=True,  # the ticket is the credential
    request_max_body_size=None,  # bounded here, by EVBUS_UPLOAD_MAX_BYTES, not by the API's 4 MiB
)
async def receive_upload(svc: Svc, request: Request[Any, Any, Any], ticket: FromPath[str]) -> Response[bytes]:
    """A station uploads a diagnostics or log file to the URL a get-diagnostics or get-log command
    gave it: ``PUT`` raw body, ``POST`` multipart/form-data (first part with a file name) or
    ``POST`` raw body. 200 with what was stored; 403 bad or expired URL; 413 too large."""
    try:
        station = tickets(svc.settings.data_dir).check(ticket, svc.now().timestamp())
    except TicketRefused as reason:
        await _refuse(svc, request, reason)
    limit = svc.settings.upload_max_bytes
    if (request.content_length or 0) > limit:
        raise HTTPException(status_code=413, detail=f"larger than the upload limit of {limit} bytes")
    content_type, options = parse_options_header(request.headers.get("Content-Type", ""))
    sent_name = (
        request.path_params.get("filename")
        or parse_content_disposition(request.headers.get("Content-Disposition", ""))[2]
    )
    folder = station_folder(svc.settings.data_dir, station)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    draft = _Draft(folder)
    chunks = _bounded(request.stream(), limit)
    try:
        if request.method == "POST" and content_type == "multipart/form-data":
            sent_name, part_type = await _multipart(chunks, options.get("boundary", ""), draft)
            content_type = part_type or "application/octet-stream"
        else:
            await _raw(chunks, draft)
        name = await draft.commit(safe_name(sent_name), svc.now())
    except TooLarge:
        draft.discard()
        raise HTTPException(status_code=413, detail=f"larger than the upload limit of {limit} bytes") from None
    except MultipartError as exc:
        draft.discard()
        raise HTTPException(status_code=400, detail=f"invalid multipart body: {exc}") from None
    except BaseException:
        draft.discard()
        raise
    received = UploadReceived(
        station=station,
        file=name,
        bytes=draft.size,
        sha256=draft.sha256.hexdigest(),
        content_type=content_type or None,
        sent_name=sent_name[:200] if sent_name else None,
        remote_address=remote_address(request),
        at=rfc3339(svc.now()),
    )
    await _record(svc, received, folder / name)
    return json_response(received)


async def _record(svc: Services, received: UploadReceived, path: Path) -> None:
    """``events.upload.{station}.received``, published after the rename: whoever reads the event
    finds the file. Not stored in the stream → the file goes too, and the station may retry."""
    try:
        await svc.js.publish(
            subjects.upload_event(received.station, "received"),
            msgspec.json.encode(received),
            headers={
                subjects.H_STATION: received.station,
                subjects.H_MSG_ID: f"upload:{subjects.token(received.station)}:{received.file}",
            },
        )
    except Exception as exc:
        log.error("upload %s of %s not recorded, removed: %r", received.file, received.station, exc)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise HTTPException(status_code=503, detail="the upload could not be recorded; try again") from exc


# --- operator routes --------------------------------------------------------------------------


class Upload(msgspec.Struct, kw_only=True, rename="camel"):
    file: str
    bytes: int
    received_at: str


def _listing(folder: Path) -> list[Upload]:
    if not folder.is_dir():
        return []
    found = []
    for entry in os.scandir(folder):
        if STORED.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            info = entry.stat(follow_symlinks=False)
            at = rfc3339(datetime.fromtimestamp(info.st_mtime, UTC))
            found.append(Upload(file=entry.name, bytes=info.st_size, received_at=at))
    return sorted(found, key=lambda u: u.file, reverse=True)


def _found(settings: Settings, identity: str, file: str) -> Path:
    path = stored_path(station_folder(settings.data_dir, identity), file)
    if path is None or not path.is_file():
        raise NotFoundException(f"no upload {file[:100]!r} of station {identity!r}")
    return path


@get("/api/stations/{identity:str}/uploads", operation_id="listUploads", tags=["uploads"])
async def list_uploads(
    svc: Svc, identity: FromPath[str], limit: Limit = 100, offset: Offset = 0
) -> Response[list[Upload]]:
    """Files the station uploaded, newest first."""
    rows = await asyncio.to_thread(_listing, station_folder(svc.settings.data_dir, identity))
    return listing(rows[offset : offset + limit], len(rows))


@get(
    "/api/stations/{identity:str}/uploads/{file:str}",
    operation_id="getUpload",
    tags=["uploads"],
    media_type="application/octet-stream",
)
async def get_upload(svc: Svc, identity: FromPath[str], file: FromPath[str]) -> File:
    """One uploaded file, as an ``application/octet-stream`` attachment (never rendered)."""
    path = await asyncio.to_thread(_found, svc.settings, identity, file)
    return File(path, filename=path.name, media_type="application/octet-stream", content_disposition_type="attachment")


@delete(
    "/api/stations/{identity:str}/uploads/{file:str}", operation_id="deleteUpload", tags=["uploads"], status_code=200
)
async def delete_upload(
    svc: Svc, request: Request[Any, Any, Any], identity: FromPath[str], file: FromPath[str]
) -> Done:
    """Delete one uploaded file; recorded as ``events.upload.{station}.deleted`` first (no record,
    no deletion: 503, and the file is still there)."""
    path = await asyncio.to_thread(_found, svc.settings, identity, file)
    deleted = UploadDeleted(
        station=identity, file=path.name, deleted_by=svc.requested_by(request), at=rfc3339(svc.now())
    )
    try:
        await svc.js.publish(
            subjects.upload_event(identity, "deleted"),
            msgspec.json.encode(deleted),
            headers={
                subjects.H_STATION: identity,
                subjects.H_MSG_ID: f"upload-deleted:{subjects.token(identity)}:{path.name}",
            },
        )
    except Exception as exc:
        log.error("deleting upload %s of %s not recorded, kept: %r", path.name, identity, exc)
        raise HTTPException(status_code=503, detail="the deletion could not be recorded; try again") from exc
    with contextlib.suppress(FileNotFoundError):  # deleted meanwhile: the outcome is the same
        await asyncio.to_thread(path.unlink)
    return Done(message=f"{path.name} deleted")


ROUTES = [receive_upload, list_uploads, get_upload, delete_upload]
