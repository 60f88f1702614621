"""`GET /api/reservations` and `GET /api/stations/{id}/local-list`: what operator commands left at
the stations, read from frames stored on the stream and folded by the API's own projection.

The app here is :func:`api.app.create_app` with :data:`api.history.ROUTES` added when it does not
hold them yet, and a clock of the test's own (reservations expire at query time)."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api import history
from api.app import create_app
from tests.conftest import API_TOKEN, Stack, running, stack_settings
from tests.projections.synthetic import Script, publish

BEFORE_EXPIRY = datetime(2026, 11, 21, 6, 30, tzinfo=UTC)  # Script's reservations expire an hour after 06:00
AFTER_EXPIRY = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


@dataclasses.dataclass
class Site:
    stack: Stack
    station: str  # reservations and a local list
    bare: str  # connected and booted, nothing else


@pytest.fixture(scope="module")
async def site(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    tag = uuid.uuid4().hex[:8]
    station, bare = f"CP-{tag}", f"CP-{tag}-bare"
    s = Script()
    messages = []
    for st in (station, bare):
        boot = {"chargePointVendor": "V", "chargePointModel": "M"}
        booted = {"status": "Accepted", "interval": 300, "currentTime": s.at(0)}
        messages += [s.conn(st, f"{st}-c", "ocpp1.6", "connected", 0)]
        messages += s.call(st, f"{st}-c", "ocpp1.6", "BootNotification", boot, booted, 0.1)
    messages += s.commands_16(station, f"{station}-c", 0, 1)  # n = 0: one reservation accepted, one cancelled
    settings = stack_settings(nats_url, tmp_path_factory.mktemp("history"))
    async with running(settings, gateway=False, processor=False, api=True) as stack:
        await publish(stack.js, messages)
        await stack.projected()
        yield Site(stack, station, bare)


def app_at(stack: Stack, now: datetime) -> Litestar:
    assert stack.api is not None
    app = create_app(dataclasses.replace(stack.api.services, clock=lambda: now))
    served = {route.path for route in app.routes}
    for handler in history.ROUTES:
        if not set(handler.paths) & served:
            app.register(handler)
    return app


@contextlib.asynccontextmanager
async def client(stack: Stack, now: datetime = BEFORE_EXPIRY) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app_at(stack, now)) as c:
        c.headers["Authorization"] = f"Bearer {API_TOKEN}"
        yield c


async def test_reservations_of_a_station(site: Site) -> None:
    async with client(site.stack) as api:
        response = await api.get("/api/reservations", params={"identity": site.station})
    assert response.status_code == 200, response.text
    assert response.headers["X-Total-Count"] == "2"
    assert response.json() == [
        {
            "reservationId": 200,
            "identity": site.station,
            "connectorId": 2,
            "evseId": None,
            "idTag": "OTHER",
            "parentIdTag": "PARENT",
            "expiryDate": "2026-11-21T08:00:01.000000Z",
            "status": "cancelled",
            "transactionId": None,
            "requestedAt": "2026-11-21T06:00:01.200000Z",
            "updatedAt": "2026-11-21T06:00:01.350000Z",
        },
        {
            "reservationId": 100,
            "identity": site.station,
            "connectorId": 1,
            "evseId": None,
            "idTag": "TAG0",
            "parentIdTag": None,
            "expiryDate": "2026-11-21T07:00:01.000000Z",
            "status": "accepted",
            "transactionId": None,
            "requestedAt": "2026-11-21T06:00:01.000000Z",
            "updatedAt": "2026-11-21T06:00:01.050000Z",
        },
    ]


async def test_reservations_by_status_as_of_now(site: Site) -> None:
    params = {"identity": site.station, "status": "accepted"}
    async with client(site.stack) as api:
        accepted = await api.get("/api/reservations", params=params)
        paged = await api.get("/api/reservations", params={"identity": site.station, "limit": 1, "offset": 1})
    assert [r["reservationId"] for r in accepted.json()] == [100]
    assert [r["reservationId"] for r in paged.json()] == [100]
    assert paged.headers["X-Total-Count"] == "2"
    async with client(site.stack, AFTER_EXPIRY) as api:
        assert (await api.get("/api/reservations", params=params)).json() == []
        expired = await api.get("/api/reservations", params={**params, "status": "expired"})
    assert [(r["reservationId"], r["status"]) for r in expired.json()] == [(100, "expired")]


async def test_a_bad_reservation_status_is_a_400(site: Site) -> None:
    async with client(site.stack) as api:
        response = await api.get("/api/reservations", params={"status": "maybe"})
    assert response.status_code == 400
    assert "'status'" in response.json()["error"]


async def test_the_station_detail_shows_what_the_station_reported(site: Site) -> None:
    async with client(site.stack) as api:
        detail = (await api.get(f"/api/stations/{site.station}")).json()
    assert (detail["firmwareStatus"], detail["firmwareStatusAt"]) == ("Installed", "2026-11-21T06:00:01.900000Z")
    assert (detail["diagnosticsStatus"], detail["diagnosticsStatusAt"]) == ("Uploaded", "2026-11-21T06:00:02.000000Z")
    # open reservations as of the wall clock (getStation does not pass the services' clock yet)
    assert isinstance(detail["reservations"], list)


async def test_a_local_list(site: Site) -> None:
    async with client(site.stack) as api:
        response = await api.get(f"/api/stations/{site.station}/local-list")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "identity": site.station,
        "listVersion": 2,
        "reportedVersion": 2,
        "updateType": "Differential",
        "updatedAt": "2026-11-21T06:00:01.550000Z",
        "entries": [
            {"idTag": "A0", "type": None, "status": "Accepted", "expiryDate": "2026-11-22T06:00:00.000000Z",
             "parentIdTag": None},
            {"idTag": "C0", "type": None, "status": "Accepted", "expiryDate": None, "parentIdTag": None},
        ],
    }  # fmt: skip


async def test_a_station_without_a_local_list_has_an_empty_one(site: Site) -> None:
    async with client(site.stack) as api:
        response = await api.get(f"/api/stations/{site.bare}/local-list")
    assert response.status_code == 200
    assert response.json() == {
        "identity": site.bare,
        "listVersion": None,
        "reportedVersion": None,
        "updateType": None,
        "updatedAt": None,
        "entries": [],
    }


async def test_the_local_list_of_an_unknown_station_is_a_404(site: Site) -> None:
    async with client(site.stack) as api:
        response = await api.get("/api/stations/NOPE-x/local-list")
    assert response.status_code == 404
    assert "unknown station" in response.json()["error"]
