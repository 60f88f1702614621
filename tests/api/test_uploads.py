"""Diagnostics and log uploads (api/uploads.py): the upload URL's ticket, the three ways real
chargers upload, stored names that never leave the station's folder whatever name the network
sends, the size limit, the `events.upload` record, the operator routes, and a real 1.6 and 2.0.1
station that uploads where a get-diagnostics command told it to."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import msgspec
import pytest
from ocpp.routing import after
from ocpp.v16 import call as call16

from api.app import create_app, serve
from api.uploads import (
    STORED,
    TicketRefused,
    Tickets,
    safe_name,
    station_folder,
    stored_path,
    tickets,
    upload_location,
)
from evbus.settings import Settings
from schemas import subjects
from tests.conftest import API_TOKEN, Stack, running, stack_settings
from tests.stations import Station16, Station201
from tests.support import charge_point, eventually, present, stored

LIMIT = 256 * 1024  # EVBUS_UPLOAD_MAX_BYTES of this module's stack
HOUR = 3600


@pytest.fixture(scope="module")
async def site(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    settings = stack_settings(nats_url, tmp_path_factory.mktemp("uploads")).with_(upload_max_bytes=LIMIT)
    async with running(settings, api=True) as stack:
        yield stack


def new_station() -> str:
    return f"CP.up-{uuid.uuid4().hex[:8]}"  # a dot: the folder is the escaped subject token


def upload_url(stack: Stack, station: str, expires_in: float = HOUR) -> str:
    ticket = tickets(stack.settings.data_dir).issue(station, int(time.time() + expires_in))
    return f"{stack.api_url}/api/uploads/{ticket}/"


def folder_of(stack: Stack, station: str) -> Path:
    return station_folder(stack.settings.data_dir, station)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@contextlib.contextmanager
def nothing_escapes(stack: Stack, station: str) -> Iterator[None]:
    """Every file that appears under the data directory meanwhile is a stored name directly in
    the station's folder (the projection's own files aside)."""
    root = stack.settings.data_dir.resolve()
    before = set(root.rglob("*"))
    yield
    new = {p for p in set(root.rglob("*")) - before if not p.name.startswith("projections.duckdb")}
    folder = folder_of(stack, station)
    for path in new:
        if path == folder or path == folder.parent:
            continue
        assert path.parent == folder, path
        assert STORED.fullmatch(path.name), path


def multipart(filename: str, data: bytes, boundary: str = "evbus-test-boundary") -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body with a text field and one file part, its file name verbatim."""
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="comment"\r\n\r\n'
            "nightly logs\r\n"
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="diag"; filename="{filename}"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


async def upload_events(stack: Stack, station: str, event: str = "received") -> list[dict[str, Any]]:
    msgs = await stored(stack.js, subjects.upload_event(station, event), subjects.STREAM_EVENTS)
    return [json.loads(m.data) for m in msgs]


async def refusals(stack: Stack) -> list[dict[str, Any]]:
    msgs = await stored(stack.js, subjects.security_event("upload_refused"), subjects.STREAM_EVENTS)
    return [json.loads(m.data) for m in msgs]


def assert_json_error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    assert body["error"]
    return body


# --- names and tickets (pure) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "safe"),
    [
        ("diagnostics.zip", "diagnostics.zip"),
        ("diag.tar.gz", "diag.tar.gz"),
        ("../../etc/passwd", "passwd"),
        ("..\\x", "x"),
        ("C:\\Windows\\system32\\log.ZIP", "log.ZIP"),
        ("/etc/shadow", "shadow"),
        ("%2e%2e%2f", "2e_2e_2f"),
        ("a\x00b.txt", "a_b.txt"),
        ("....", "upload"),
        (".", "upload"),
        ("", "upload"),
        (None, "upload"),
        (".bashrc", "bashrc"),
        ("-rf", "rf"),
        ("Ladesäule-日志.log", "Ladesaule.log"),
        ("日志", "upload"),
        ("a b;c$(d).log", "a_b_c_d.log"),
        ("x" * 500 + ".log", "x" * 76 + ".log"),
        ("name.extension-too-long", "name.extension-too-long"),
    ],
)
def test_safe_name(sent: str | None, safe: str) -> None:
    assert safe_name(sent) == safe


def test_a_stored_name_stays_in_its_folder(tmp_path: Path) -> None:
    folder = tmp_path.resolve()
    good = "20261121T100000.123456Z_diag.zip"
    assert stored_path(folder, good) == folder / good
    for name in ("../x", "..", ".", "", "/etc/passwd", ".abc.part", "upload-key", "20261121T100000.123456Z_../x"):
        assert stored_path(folder, name) is None, name


def test_tickets_name_their_station_and_expire() -> None:
    issuer = Tickets(b"k" * 32)
    ticket = issuer.issue("CP.01", 2000)
    assert issuer.check(ticket, now=1999) == "CP.01"
    with pytest.raises(TicketRefused, match="expired") as expired:
        issuer.check(ticket, now=2000)
    assert expired.value.station == "CP.01"
    with pytest.raises(TicketRefused, match="wrong signature"):
        Tickets(b"o" * 32).check(ticket, now=0)
    station, expires, mac = ticket.split(".")
    other = issuer.issue("CP.02", 2000).split(".")[0]
    for forged in (
        f"{other}.{expires}.{mac}",
        f"{station}.9999.{mac}",
        f"{station}.{expires}.{'B' if mac[0] == 'A' else 'A'}{mac[1:]}",
    ):
        with pytest.raises(TicketRefused, match=r"wrong signature|malformed"):
            issuer.check(forged, now=0)
    for malformed in ("", "x", "a.b.c", f"{station}.{expires}", f"{station}.-1.{mac}", ticket + "/x"):
        with pytest.raises(TicketRefused, match="malformed"):
            issuer.check(malformed, now=0)


def test_the_upload_url_uses_the_public_url_or_the_requests_base(tmp_path: Path) -> None:
    now = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    request = SimpleNamespace(base_url="http://10.0.0.9:8000/")
    for public, base in ((None, "http://10.0.0.9:8000"), ("https://evbus.example/csms/", "https://evbus.example/csms")):
        settings = Settings(data_dir=tmp_path, public_url=public, upload_ticket_hours=2)
        svc = SimpleNamespace(settings=settings, now=lambda: now)
        url = upload_location(svc, request, "CP.01")()  # type: ignore[arg-type]
        assert url.startswith(f"{base}/api/uploads/")
        assert url.endswith("/")
        ticket = url.removeprefix(f"{base}/api/uploads/").rstrip("/")
        assert tickets(tmp_path).check(ticket, now.timestamp() + 2 * HOUR - 1) == "CP.01"
        with pytest.raises(TicketRefused, match="expired"):
            tickets(tmp_path).check(ticket, now.timestamp() + 2 * HOUR)
    assert oct((tmp_path / "upload-key").stat().st_mode & 0o777) == "0o600"


# --- the three ways chargers upload -----------------------------------------------------------

DATA = os.urandom(100_000)


@pytest.mark.parametrize("way", ["put-raw", "post-multipart", "post-raw"])
async def test_an_upload_lands_in_the_stations_folder_and_the_stream(site: Stack, way: str) -> None:
    station = new_station()
    url = upload_url(site, station)
    async with httpx.AsyncClient(timeout=10) as client:
        if way == "put-raw":  # curl -T diag.zip URL/diag.zip
            r = await client.put(url + "diag.zip", content=DATA, headers={"Content-Type": "application/zip"})
            sent, kind = "diag.zip", "application/zip"
        elif way == "post-multipart":  # curl -F diag=@diag.zip URL
            r = await client.post(url, files={"diag": ("diag.zip", DATA, "application/zip")}, data={"n": "1"})
            sent, kind = "diag.zip", "application/zip"
        else:  # curl --data-binary @diag.zip URL
            r = await client.post(url, content=DATA, headers={"Content-Type": "application/octet-stream"})
            sent, kind = None, "application/octet-stream"
    assert r.status_code == 200, r.text
    answer = r.json()
    name = answer["file"]
    assert STORED.fullmatch(name)
    assert name.endswith("_diag.zip" if sent else "_upload")
    stored_file = folder_of(site, station) / name
    assert stored_file.read_bytes() == DATA
    assert folder_of(site, station).name == "CP%2Eup-" + station.removeprefix("CP.up-")
    assert files_in(folder_of(site, station)) == [name]  # no temporary file left
    sha = hashlib.sha256(DATA).hexdigest()
    assert (answer["station"], answer["bytes"], answer["sha256"], answer["contentType"]) == (
        station,
        len(DATA),
        sha,
        kind,
    )
    [event] = await eventually(lambda: upload_events(site, station))
    assert {k: event[k] for k in ("station", "file", "bytes", "sha256", "contentType")} == {
        "station": station,
        "file": name,
        "bytes": len(DATA),
        "sha256": sha,
        "contentType": kind,
    }
    assert event["remoteAddress"].startswith("127.0.0.1:")
    assert event["at"].endswith("Z")
    assert event.get("sentName") == sent


async def test_a_name_in_content_disposition_is_used_for_a_put(site: Stack) -> None:
    station = new_station()
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.put(
            upload_url(site, station), content=b"log", headers={"Content-Disposition": 'attachment; filename="cp.log"'}
        )
    assert r.status_code == 200, r.text
    assert r.json()["file"].endswith("_cp.log")


async def test_two_uploads_of_one_name_are_both_kept(site: Stack) -> None:
    station = new_station()
    url = upload_url(site, station) + "same.log"
    async with httpx.AsyncClient(timeout=10) as client:
        first, second = [await client.put(url, content=body) for body in (b"one", b"two")]
    names = {first.json()["file"], second.json()["file"]}
    assert len(names) == 2
    assert {(folder_of(site, station) / n).read_bytes() for n in names} == {b"one", b"two"}


# --- hostile names ----------------------------------------------------------------------------

HOSTILE = [
    "../../etc/passwd",
    "..\\x",
    "..\\..\\..\\upload-key",
    "/etc/passwd",
    "/root/.ssh/authorized_keys",
    "%2e%2e%2f%2e%2e%2fescape",
    "..%2F..%2Fescape",
    "a\x00b",
    "x" * 5000,
    "....",
    "..",
    ".",
    "ä/../../ü",
    "日志/../../escape",
    "\u202egpj.exe",  # right-to-left override
    "C:\\Windows\\win.ini",
    ".hidden.part",
]


@pytest.mark.parametrize("name", HOSTILE)
async def test_a_hostile_multipart_file_name_never_escapes_the_folder(site: Stack, name: str) -> None:
    station = new_station()
    body, headers = multipart(name, b"payload")
    with nothing_escapes(site, station):
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(upload_url(site, station), content=body, headers=headers)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert stored_path(folder_of(site, station), r.json()["file"]) is not None
        assert files_in(folder_of(site, station)) == [r.json()["file"]]
    else:
        assert files_in(folder_of(site, station)) == []


@pytest.mark.parametrize("name", HOSTILE)
async def test_a_hostile_name_in_the_url_or_header_never_escapes_the_folder(site: Stack, name: str) -> None:
    station = new_station()
    quoted = httpx.URL(upload_url(site, station)).raw_path.decode() + "".join(
        f"%{b:02X}" if not chr(b).isalnum() else chr(b) for b in name.encode()
    )
    with nothing_escapes(site, station):
        async with httpx.AsyncClient(base_url=site.api_url, timeout=10) as client:
            in_path = await client.put(quoted, content=b"payload")
            in_raw_path = await client.put(upload_url(site, station) + name.replace("\x00", ""), content=b"payload")
            disposition = name.encode("ascii", "replace").decode().replace("\x00", "").replace('"', "")
            in_header = await client.put(
                upload_url(site, station),
                content=b"payload",
                headers={"Content-Disposition": f'attachment; filename="{disposition}"'},
            )
    for r in (in_path, in_raw_path, in_header):
        # 404: more path segments route nowhere; 403: the client resolved `..` into another ticket
        assert r.status_code in (200, 403, 404), r.text
        if r.status_code == 200:
            assert stored_path(folder_of(site, station), r.json()["file"]) is not None
    assert in_header.status_code == 200


# --- refused tickets --------------------------------------------------------------------------


def forged_tickets(site: Stack, station: str) -> dict[str, str]:
    issuer = tickets(site.settings.data_dir)
    good = issuer.issue(station, int(time.time() + HOUR))
    own, expires, mac = good.split(".")
    other = issuer.issue(f"{station}-other", int(time.time() + HOUR))
    return {
        "malformed": "not-a-ticket",
        "altered-mac": f"{own}.{expires}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}",
        "later-expiry": f"{own}.{int(expires) + 1}.{mac}",
        "other-station": f"{other.split('.')[0]}.{expires}.{mac}",  # B's name on A's signature
        "other-key": Tickets(os.urandom(32)).issue(station, int(time.time() + HOUR)),
        "expired": issuer.issue(station, int(time.time() - 1)),
    }


BAD_TICKETS = ["malformed", "altered-mac", "later-expiry", "other-station", "other-key", "expired"]


@pytest.mark.parametrize("case", BAD_TICKETS)
async def test_a_bad_ticket_is_a_403_and_a_security_event(site: Stack, case: str) -> None:
    station = new_station()
    ticket = forged_tickets(site, station)[case]
    before = len(await refusals(site))
    address = f"127.0.0.{40 + BAD_TICKETS.index(case)}"  # an address of its own: events are per address
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(timeout=10, transport=transport) as client:
        put = await client.put(f"{site.api_url}/api/uploads/{ticket}/x.log", content=b"x")
        post = await client.post(f"{site.api_url}/api/uploads/{ticket}", files={"f": ("x.log", b"x")})
    for r in (put, post):
        body = assert_json_error(r, 403)
        assert body["error"] == "invalid or expired upload URL"
    assert not folder_of(site, station).exists()
    events = await eventually(lambda: _more(refusals(site), before))
    assert len(events) == before + 1, "one event per address per minute: the POST's is held back"
    newest = events[-1]
    assert newest["category"] == "upload_refused"
    assert newest["gateway"] == "api"
    assert newest["remoteAddress"].startswith(f"{address}:")
    reason = {"malformed": "malformed", "expired": "expired"}.get(case, "wrong signature")
    assert reason in newest["detail"]
    if case == "expired":
        assert newest["station"] == station


async def _more(found: Any, at_least: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = await found
    return events if len(events) >= at_least else []


async def test_the_admin_token_is_no_upload_ticket(site: Stack) -> None:
    async with site.http() as api:
        r = await api.put("/api/uploads/x/diag.zip", content=b"x")
    assert_json_error(r, 403)


# --- the size limit ---------------------------------------------------------------------------


async def test_an_announced_body_over_the_limit_is_a_413_and_nothing_is_stored(site: Stack) -> None:
    station = new_station()
    async with httpx.AsyncClient(timeout=10) as client:
        at_limit = await client.put(upload_url(site, station) + "max.bin", content=b"m" * LIMIT)
        over = await client.put(upload_url(site, station) + "over.bin", content=b"o" * (LIMIT + 1))
    assert_json_error(over, 413)  # at once, from Content-Length: the body is never read
    assert at_limit.status_code == 200, at_limit.text
    assert files_in(folder_of(site, station)) == [at_limit.json()["file"]]
    assert len(await upload_events(site, station)) == 1


async def test_a_streamed_body_over_the_limit_is_a_413_and_nothing_is_stored(site: Stack) -> None:
    """Chunked, no Content-Length: counted while it streams in; the partial file is removed."""
    station = new_station()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(LIMIT // 8192 + 2):
            yield b"c" * 8192

    async with httpx.AsyncClient(timeout=10) as client:
        streamed = await client.put(upload_url(site, station) + "big.bin", content=chunks())
        multi, headers = multipart("big.bin", b"m" * LIMIT)  # the file fits, the whole body does not
        in_parts = await client.post(upload_url(site, station), content=multi, headers=headers)
    assert_json_error(streamed, 413)
    assert_json_error(in_parts, 413)
    assert files_in(folder_of(site, station)) == []
    assert await upload_events(site, station) == []


async def test_a_broken_multipart_body_is_a_400_and_nothing_is_stored(site: Stack) -> None:
    station = new_station()
    body, headers = multipart("x.log", b"data")
    no_file = body.replace(b'; filename="x.log"', b"")
    async with httpx.AsyncClient(timeout=10) as client:
        cut = await client.post(upload_url(site, station), content=body[:-20], headers=headers)
        nameless = await client.post(upload_url(site, station), content=no_file, headers=headers)
        no_boundary = await client.post(
            upload_url(site, station), content=body, headers={"Content-Type": "multipart/form-data"}
        )
    for r in (cut, nameless, no_boundary):
        assert_json_error(r, 400)
    assert files_in(folder_of(site, station)) == []


# --- operator routes --------------------------------------------------------------------------


async def test_list_download_and_delete(site: Stack, api: httpx.AsyncClient) -> None:
    station = new_station()
    async with httpx.AsyncClient(timeout=10) as client:
        names = []
        for n in range(3):
            r = await client.put(upload_url(site, station) + f"log-{n}.txt", content=f"log {n}".encode())
            names.append(r.json()["file"])
    listed = await api.get(f"/api/stations/{station}/uploads")
    assert listed.status_code == 200, listed.text
    assert listed.headers["X-Total-Count"] == "3"
    rows = listed.json()
    assert [row["file"] for row in rows] == names[::-1]  # newest first
    assert {row["bytes"] for row in rows} == {5}
    assert all(row["receivedAt"].endswith("Z") for row in rows)
    page = await api.get(f"/api/stations/{station}/uploads", params={"limit": 1, "offset": 1})
    assert [row["file"] for row in page.json()] == [names[1]]
    assert page.headers["X-Total-Count"] == "3"

    got = await api.get(f"/api/stations/{station}/uploads/{names[0]}")
    assert got.status_code == 200, got.text
    assert got.content == b"log 0"
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment")
    assert got.headers["x-content-type-options"] == "nosniff"

    deleted = await api.delete(f"/api/stations/{station}/uploads/{names[0]}")
    assert deleted.status_code == 200, deleted.text
    assert names[0] not in files_in(folder_of(site, station))
    [event] = await eventually(lambda: upload_events(site, station, "deleted"))
    assert (event["file"], event["deletedBy"]) == (names[0], "admin")
    assert_json_error(await api.get(f"/api/stations/{station}/uploads/{names[0]}"), 404)
    assert_json_error(await api.delete(f"/api/stations/{station}/uploads/{names[0]}"), 404)


@pytest.mark.parametrize(
    "file",
    [
        "20261121T100000.123456Z_nothing.log",
        "..%2F..%2Fupload-key",
        "..%2Fprojections.duckdb",
        "%2E%2E",
        ".x.part",
        "upload-key",
        "x" * 300,
    ],
)
async def test_unknown_or_unsafe_names_are_a_404(site: Stack, api: httpx.AsyncClient, file: str) -> None:
    station = new_station()
    async with httpx.AsyncClient(timeout=10) as client:
        await client.put(upload_url(site, station) + "real.log", content=b"x")
    (folder_of(site, station) / ".x.part").write_bytes(b"partial")  # as a temporary file would be
    assert_json_error(await api.get(f"/api/stations/{station}/uploads/{file}"), 404)
    assert_json_error(await api.delete(f"/api/stations/{station}/uploads/{file}"), 404)
    assert (folder_of(site, station) / ".x.part").exists()


async def test_a_station_without_uploads_has_an_empty_list(api: httpx.AsyncClient) -> None:
    r = await api.get(f"/api/stations/{new_station()}/uploads")
    assert (r.status_code, r.json(), r.headers["X-Total-Count"]) == (200, [], "0")


async def test_the_operator_routes_need_the_token(site: Stack) -> None:
    async with site.http(token=None) as anonymous:
        for method, path in (
            ("GET", "/api/stations/x/uploads"),
            ("GET", "/api/stations/x/uploads/20261121T100000.123456Z_a.log"),
            ("DELETE", "/api/stations/x/uploads/20261121T100000.123456Z_a.log"),
        ):
            assert_json_error(await anonymous.request(method, path), 401)


# --- end to end: a real station uploads where get-diagnostics told it to ------------------------


class Diagnosing16(Station16):
    """Uploads a file to the GetDiagnostics location (PUT, the file name appended), then says so."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.uploads: list[httpx.Response] = []

    @after("GetDiagnostics")
    async def after_get_diagnostics(self, location: str, **_: Any) -> None:
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                self.uploads.append(await client.put(location + "diagnostics.zip", content=b"PK diagnostics"))
            await self.call(call16.DiagnosticsStatusNotification(status="Uploaded"))
        except BaseException as exc:
            self.errors.append(exc)
            raise


class Diagnosing201(Station201):
    """Uploads a file to the GetLog remoteLocation (POST multipart/form-data)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.uploads: list[httpx.Response] = []

    @after("GetLog")
    async def after_get_log(self, log: dict[str, Any], **_: Any) -> None:
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                files = {"file": ("station-log.tar.gz", b"\x1f\x8b log", "application/gzip")}
                self.uploads.append(await client.post(log["remote_location"], files=files))
        except BaseException as exc:
            self.errors.append(exc)
            raise


@pytest.mark.parametrize(
    ("protocol", "cls", "action", "stored_as", "content"),
    [
        ("ocpp1.6", Diagnosing16, "GetDiagnostics", "_diagnostics.zip", b"PK diagnostics"),
        ("ocpp2.0.1", Diagnosing201, "GetLog", "_station-log.tar.gz", b"\x1f\x8b log"),
    ],
)
async def test_get_diagnostics_without_a_location_uploads_to_evbus(
    site: Stack, api: httpx.AsyncClient, protocol: str, cls: type, action: str, stored_as: str, content: bytes
) -> None:
    station = new_station()
    async with charge_point(site.url(station), station, protocol, cls) as (cp, _):
        await cp.boot()
        await eventually(lambda: present(site.js, station))
        r = await api.post(f"/api/stations/{station}/commands/get-diagnostics", json={})
        assert r.status_code == 200, r.text
        assert r.json()["action"] == action

        async def listed() -> list[dict[str, Any]]:
            found = await api.get(f"/api/stations/{station}/uploads")
            rows: list[dict[str, Any]] = found.json()
            return rows

        async def answered() -> list[int]:
            return [u.status_code for u in cp.uploads]

        [row] = await eventually(listed)
        assert await eventually(answered) == [200]  # the station's client has the answer a moment later
        assert not cp.errors
    [request] = cp.seen(action)
    location = request["location"] if action == "GetDiagnostics" else request["log"]["remote_location"]
    assert location.startswith(f"{site.api_url}/api/uploads/")  # the base URL of the command's request
    assert row["file"].endswith(stored_as)
    got = await api.get(f"/api/stations/{station}/uploads/{row['file']}")
    assert got.content == content
    [event] = await eventually(lambda: upload_events(site, station))
    assert (event["file"], event["sha256"]) == (row["file"], hashlib.sha256(content).hexdigest())


async def test_an_explicit_location_is_sent_as_given(site: Stack, api: httpx.AsyncClient) -> None:
    station = new_station()
    async with charge_point(site.url(station), station, "ocpp1.6", Station16) as (cp, _):
        await cp.boot()
        await eventually(lambda: present(site.js, station))
        r = await api.post(
            f"/api/stations/{station}/commands/get-diagnostics", json={"location": "ftp://logs.example/"}
        )
        assert r.status_code == 200, r.text
    assert cp.seen("GetDiagnostics")[0]["location"] == "ftp://logs.example/"


def test_the_event_body_is_camel_case() -> None:
    from api.uploads import UploadReceived

    body = msgspec.json.decode(
        msgspec.json.encode(
            UploadReceived(station="s", file="f", bytes=1, sha256="h", content_type="c", remote_address="r", at="t")
        )
    )
    assert set(body) == {"station", "file", "bytes", "sha256", "contentType", "remoteAddress", "at"}


async def test_public_url_setting_goes_into_the_command(site: Stack) -> None:
    """EVBUS_PUBLIC_URL, not the request's base URL: a second API server of the same services with it set."""
    assert site.api is not None
    public = "http://192.0.2.10:8000"
    services = dataclasses.replace(site.api.services, settings=site.settings.with_(public_url=public))
    station = new_station()
    async with (
        charge_point(site.url(station), station, "ocpp1.6", Station16) as (cp, _),
        serve(create_app(services), "127.0.0.1", 0) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {API_TOKEN}"}) as api,
    ):
        await cp.boot()
        await eventually(lambda: present(site.js, station))
        r = await api.post(f"/api/stations/{station}/commands/get-diagnostics", json={"retries": 1})
        assert r.status_code == 200, r.text
    [request] = cp.seen("GetDiagnostics")
    assert request["location"].startswith(f"{public}/api/uploads/")
    assert request["retries"] == 1
    ticket = request["location"].removeprefix(f"{public}/api/uploads/").rstrip("/")
    assert tickets(site.settings.data_dir).check(ticket, time.time()) == station
