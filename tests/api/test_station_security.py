"""Station passwords and security profiles through the API: stored hashed, shown once when
generated, enforced by the gateway at once, and pushed to a connected station (1.6
``ChangeConfiguration AuthorizationKey``, 2.0.1 ``SetVariables BasicAuthPassword``) before they are
stored."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from api.stations import answer_status, generate_password, password_problem, push_call
from evbus.passwords import verify_password
from schemas import commands, subjects
from schemas.records import StationRecord
from tests.conftest import Stack, running, stack_settings
from tests.stations import Station16, Station201
from tests.support import eventually, present, stored, stored_frames

OLD = "old-password-0123"
NEW = "new-password-4567"


# --- pure parts -------------------------------------------------------------------------------


def test_password_rules() -> None:
    assert password_problem("x" * 16) is None
    assert password_problem("x" * 40) is None
    assert "16 to 40" in (password_problem("x" * 15) or "")
    assert "16 to 40" in (password_problem("x" * 41) or "")
    assert "printable ASCII" in (password_problem("with a space 12345") or "")
    assert "printable ASCII" in (password_problem("Ladesäule-passwort") or "")
    generated = {generate_password() for _ in range(50)}
    assert len(generated) == 50
    assert all(len(p) == 20 and p.isalnum() and password_problem(p) is None for p in generated)


def test_the_push_calls_of_each_version() -> None:
    assert push_call("ocpp1.6", "abcdefghijklmnop") == (
        "ChangeConfiguration",
        {"key": "AuthorizationKey", "value": "6162636465666768696a6b6c6d6e6f70"},
        ["/value"],
    )
    action, payload, secrets = push_call("ocpp2.0.1", "abcdefghijklmnop")
    assert secrets == ["/setVariableData/0/attributeValue"]
    assert action == "SetVariables"
    assert payload["setVariableData"] == [
        {
            "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "BasicAuthPassword"},
            "attributeValue": "abcdefghijklmnop",
        }
    ]
    assert answer_status("ChangeConfiguration", b'{"status": "RebootRequired"}') == "RebootRequired"
    assert answer_status("SetVariables", b'{"setVariableResult": [{"attributeStatus": "Rejected"}]}') == "Rejected"
    assert answer_status("SetVariables", b'{"setVariableResult": []}') == "Unreadable"


# --- against a stack --------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def site(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    settings = stack_settings(nats_url, tmp_path_factory.mktemp("station-security"))
    async with running(settings, api=True) as stack:
        yield stack


@pytest.fixture
def station() -> str:
    return f"SEC-{uuid.uuid4().hex[:10]}"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@contextlib.asynccontextmanager
async def charger(
    stack: Stack, station: str, password: str | None, cls: type = Station16, protocol: str = "ocpp1.6"
) -> AsyncIterator[Any]:
    """An ``ocpp`` library station that answers every CSMS call, connected with ``password``, booted."""
    headers = basic(station, password) if password else {}
    async with websockets.connect(stack.url(station), subprotocols=[protocol], additional_headers=headers) as ws:
        cp = cls(station, ws)
        task = asyncio.create_task(cp.start())
        try:
            await cp.boot()
            await eventually(lambda: present(stack.js, station))
            yield cp
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await task


async def refused(stack: Stack, station: str, password: str) -> int:
    with pytest.raises(InvalidStatus) as refusal:
        async with websockets.connect(
            stack.url(station), subprotocols=["ocpp1.6"], additional_headers=basic(station, password)
        ):
            pass
    return refusal.value.response.status_code


async def stored_record(stack: Stack, station: str) -> StationRecord:
    kv = await stack.js.key_value(subjects.BUCKET_REGISTRY)
    entry = await kv.get(subjects.kv_key(station))
    assert entry.value is not None
    return msgspec.json.decode(entry.value, type=StationRecord)


async def gateway_has(stack: Stack, station: str, password: str) -> bool:
    """The gateway's registry mirror holds the hash of ``password`` (so the next handshake needs it)."""
    assert stack.gateway is not None
    record = stack.gateway.registry.get(station)
    return bool(record and record.password_hash and verify_password(record.password_hash, password))


async def put(api: httpx.AsyncClient, station: str, **body: Any) -> httpx.Response:
    return await api.put(f"/api/stations/{station}/security", json=body)


# --- storing ----------------------------------------------------------------------------------


async def test_every_route_needs_auth(site: Stack, station: str) -> None:
    async with site.http(token=None) as anonymous:
        assert (await anonymous.get(f"/api/stations/{station}/security")).status_code == 401
        assert (await put(anonymous, station, password=NEW)).status_code == 401
        assert (await anonymous.delete(f"/api/stations/{station}/security")).status_code == 401


async def test_a_generated_password_is_shown_once_and_only_its_hash_is_stored(
    site: Stack, api: httpx.AsyncClient, station: str
) -> None:
    assert (await api.get(f"/api/stations/{station}/security")).status_code == 404
    first = await put(api, station, password=OLD)  # registers the station
    assert first.status_code == 200
    assert first.json() == {"identity": station, "securityProfile": 1, "hasPassword": True}

    answer = await put(api, station, generate=True)
    assert answer.status_code == 200
    generated = answer.json()["password"]
    assert len(generated) == 20
    assert answer.json()["securityProfile"] == 1

    shown = await api.get(f"/api/stations/{station}/security")
    assert shown.json() == {"identity": station, "securityProfile": 1, "hasPassword": True}
    assert generated not in shown.text
    record = await stored_record(site, station)
    assert record.password_hash is not None
    assert record.password_hash.startswith("$argon2id$")
    assert verify_password(record.password_hash, generated)
    kv = await site.js.key_value(subjects.BUCKET_REGISTRY)
    assert generated.encode() not in ((await kv.get(subjects.kv_key(station))).value or b"")

    # the gateway enforces it at once: the new password works, the old one does not
    await eventually(lambda: gateway_has(site, station, generated))
    async with charger(site, station, generated) as cp:
        assert cp.id == station
    assert await refused(site, station, OLD) == 401

    events = await stored(site.js, subjects.security_event("station_security_changed"), subjects.STREAM_EVENTS)
    mine = [msgspec.json.decode(m.data) for m in events if station.encode() in m.data]
    assert len(mine) == 2
    assert all(generated not in str(e) and OLD not in str(e) for e in mine)


async def test_profiles_are_checked_and_delete_returns_to_the_default(
    site: Stack, api: httpx.AsyncClient, station: str
) -> None:
    assert (await put(api, station, securityProfile=2)).status_code == 422  # profile 2 needs a password
    assert (await put(api, station, securityProfile=3)).json()["securityProfile"] == 3  # mutual TLS: none needed
    answer = await put(api, station, securityProfile=2, password=NEW)
    assert answer.json() == {"identity": station, "securityProfile": 2, "hasPassword": True}
    assert (await stored_record(site, station)).security_profile == 2

    deleted = await api.delete(f"/api/stations/{station}/security")
    assert deleted.json() == {"identity": station, "securityProfile": 0, "hasPassword": False}
    assert await stored_record(site, station) == StationRecord()  # still registered, open
    assert (await api.delete(f"/api/stations/{station}-unknown/security")).status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"password": "short"}, 422),
        ({"password": "x" * 41}, 422),
        ({"password": NEW, "generate": True}, 422),
        ({"push": True}, 422),
        ({"securityProfile": 4}, 400),
        ({"password": NEW, "owner": "me"}, 400),
    ],
)
async def test_bad_requests_store_nothing(api: httpx.AsyncClient, station: str, body: dict, status: int) -> None:
    answer = await put(api, station, **body)
    assert answer.status_code == status, answer.text
    assert NEW not in answer.text
    assert (await api.get(f"/api/stations/{station}/security")).status_code == 404


async def test_an_invalid_station_id_is_refused(api: httpx.AsyncClient) -> None:
    answer = await put(api, "A" * 49, password=NEW)
    assert answer.status_code == 422
    assert "48" in answer.json()["error"]


# --- pushing to the station -------------------------------------------------------------------


async def test_push_sets_the_authorization_key_of_a_16_station_before_storing_it(
    site: Stack, api: httpx.AsyncClient, station: str
) -> None:
    assert (await put(api, station, password=OLD)).status_code == 200
    await eventually(lambda: gateway_has(site, station, OLD))
    async with charger(site, station, OLD) as cp:
        held = cp.holding["ChangeConfiguration"] = asyncio.Event()
        pushing = asyncio.create_task(put(api, station, generate=True, push=True))
        await eventually(lambda: _async(cp.seen("ChangeConfiguration")))
        [request] = cp.seen("ChangeConfiguration")
        assert request["key"] == "AuthorizationKey"
        new = bytes.fromhex(request["value"]).decode()  # hex of the password (1.6 security whitepaper)
        assert verify_password((await stored_record(site, station)).password_hash or "", OLD)  # not stored yet
        held.set()
        answer = await pushing
    assert answer.status_code == 200, answer.text
    assert answer.json()["password"] == new
    assert answer.json()["pushed"]["status"] == "Accepted"
    assert answer.json()["pushed"]["action"] == "ChangeConfiguration"
    assert verify_password((await stored_record(site, station)).password_hash or "", new)

    await eventually(lambda: gateway_has(site, station, new))
    async with charger(site, station, new):
        pass
    assert await refused(site, station, OLD) == 401
    await assert_never_stored(site, station, new)


async def test_a_password_the_station_refuses_is_not_stored(site: Stack, api: httpx.AsyncClient, station: str) -> None:
    assert (await put(api, station, password=OLD)).status_code == 200
    await eventually(lambda: gateway_has(site, station, OLD))
    async with charger(site, station, OLD) as cp:
        cp.answers["ChangeConfiguration"] = {"status": "Rejected"}
        answer = await put(api, station, password=NEW, push=True)
        assert answer.status_code == 409
        assert answer.json()["detail"]["status"] == "Rejected"
        assert NEW not in answer.text
        too_long = await put(api, station, password="y" * 21, push=True)  # 1.6 AuthorizationKey: 16-20 bytes
        assert too_long.status_code == 422
    assert verify_password((await stored_record(site, station)).password_hash or "", OLD)

    offline = await put(api, station, password=NEW, push=True)
    assert offline.status_code == 409
    assert verify_password((await stored_record(site, station)).password_hash or "", OLD)


async def test_push_sets_basic_auth_password_of_a_201_station(
    site: Stack, api: httpx.AsyncClient, station: str
) -> None:
    async with charger(site, station, None, Station201, "ocpp2.0.1") as cp:  # unregistered: open
        password = "p" * 40  # 2.0.1 takes up to 40 characters
        answer = await put(api, station, password=password, push=True, securityProfile=1)
        assert answer.status_code == 200, answer.text
        assert answer.json()["pushed"]["action"] == "SetVariables"
        [request] = cp.seen("SetVariables")
        [data] = request["set_variable_data"]
        assert data["component"] == {"name": "SecurityCtrlr"}
        assert data["variable"] == {"name": "BasicAuthPassword"}
        assert data["attribute_value"] == password
    assert verify_password((await stored_record(site, station)).password_hash or "", password)
    await assert_never_stored(site, station, password)


async def assert_never_stored(site: Stack, station: str, secret: str) -> None:
    """The station got the secret; the OCPP and EVENTS streams hold the CALL with ``***`` instead."""
    frames = await stored_frames(site.js, station)
    events = await stored(site.js, "events.>", subjects.STREAM_EVENTS)
    for msg in [*frames, *events]:
        assert secret.encode() not in msg.data, msg.subject
        assert secret.encode().hex().encode() not in msg.data, msg.subject
    redacted = [m for m in frames if (m.headers or {}).get(commands.H_REDACTED)]
    assert len(redacted) == 1
    assert b'"***"' in redacted[0].data


async def _async(value: object) -> object:
    return value
