"""The state operators manage through the API: the token store (which the CSMS answers Authorize
from) and stored charging profiles. The module runs its own nats-server: 10 000 tokens stay out of
the session's token store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from nats.js.errors import KeyDeletedError, KeyNotFoundError
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16

from api import state
from evbus.embedded_nats import embedded_nats
from schemas import subjects
from tests.api.test_bad_input import assert_json_error
from tests.conftest import API_TOKEN, Stack, running, stack_settings
from tests.support import charge_point, eventually

pytestmark = pytest.mark.nats


@pytest.fixture(scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with embedded_nats(tmp_path_factory.mktemp("state-nats"), client_port=0, mqtt_port=0) as server:
        settings = stack_settings(server.url, tmp_path_factory.mktemp("state"))
        async with running(settings, api=True) as stack:
            yield stack


def tag(name: str = "T") -> str:
    """An idTag no other test uses."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def in_kv(stack: Stack, id_tag: str) -> bool:
    kv = await stack.js.key_value(subjects.BUCKET_TOKENS)
    try:
        await kv.get(subjects.kv_key(id_tag))
    except (KeyNotFoundError, KeyDeletedError):
        return False
    return True


# --- tokens -----------------------------------------------------------------------------------


async def test_tokens_round_trip(site: Stack, api: httpx.AsyncClient) -> None:
    prefix = tag("RT")
    a, b, c = f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"
    body = [
        {"idTag": c, "status": "Blocked"},
        {"idTag": a, "status": "Accepted", "expiryDate": "2027-01-01T02:00:00+02:00", "parentIdTag": "FLEET"},
        {"idTag": b, "status": "Expired", "expiryDate": "2026-06-01T12:00:00.250Z"},
    ]
    put = await api.put("/api/tokens", json=body)
    assert put.status_code == 200, put.text
    assert put.json() == {"upserted": 3}

    assert (await api.get(f"/api/tokens/{a}")).json() == {
        "idTag": a,
        "status": "Accepted",
        "expiryDate": "2027-01-01T00:00:00Z",  # stored in UTC
        "parentIdTag": "FLEET",
    }
    assert (await api.get(f"/api/tokens/{b}")).json()["expiryDate"] == "2026-06-01T12:00:00.250Z"
    assert (await api.get(f"/api/tokens/{c}")).json() == {"idTag": c, "status": "Blocked"}
    assert await in_kv(site, a)

    listed = await api.get("/api/tokens", params={"limit": 1000})
    tags = [t["idTag"] for t in listed.json()]
    assert tags == sorted(tags)
    assert [t for t in tags if t.startswith(prefix)] == [a, b, c]
    assert int(listed.headers["X-Total-Count"]) >= 3

    blocked = await api.get("/api/tokens", params={"status": "Blocked", "limit": 1000})
    assert {t["status"] for t in blocked.json()} == {"Blocked"}
    assert c in [t["idTag"] for t in blocked.json()]
    total = int(listed.headers["X-Total-Count"])
    second = await api.get("/api/tokens", params={"limit": 1, "offset": 1})
    assert second.json() == listed.json()[1:2]
    assert second.headers["X-Total-Count"] == str(total)

    one = await api.put("/api/tokens", json={"idTag": c, "status": "Accepted"})  # a single object
    assert one.json() == {"upserted": 1}
    assert (await api.get(f"/api/tokens/{c}")).json()["status"] == "Accepted"

    deleted = await api.delete(f"/api/tokens/{c}")
    assert deleted.status_code == 200
    assert deleted.json() == {"deleted": c}
    assert_json_error(await api.get(f"/api/tokens/{c}"), 404)
    assert_json_error(await api.delete(f"/api/tokens/{c}"), 404)
    assert not await in_kv(site, c)


INVALID: list[tuple[str, dict[str, Any], int]] = [
    ("bad-status", {"idTag": "X", "status": "Maybe"}, 400),
    ("missing-status", {"idTag": "X"}, 400),
    ("unknown-member", {"idTag": "X", "status": "Accepted", "colour": "red"}, 400),
    ("not-a-string", {"idTag": 42, "status": "Accepted"}, 400),
    ("bad-date", {"idTag": "X", "status": "Accepted", "expiryDate": "next tuesday"}, 422),
    ("date-without-time", {"idTag": "X", "status": "Accepted", "expiryDate": "2027-01-01"}, 422),
    ("whitespace", {"idTag": "A B", "status": "Accepted"}, 422),
    ("control-character", {"idTag": "A\u0007", "status": "Accepted"}, 422),
    ("empty", {"idTag": "", "status": "Accepted"}, 422),
    ("too-long", {"idTag": "X" * 37, "status": "Accepted"}, 422),
    ("bad-parent", {"idTag": "X", "status": "Accepted", "parentIdTag": "P Q"}, 422),
]


@pytest.mark.parametrize(("entry", "status"), [(e, s) for _, e, s in INVALID], ids=[n for n, _, _ in INVALID])
async def test_an_invalid_token_is_refused_and_nothing_is_written(
    site: Stack, api: httpx.AsyncClient, entry: dict[str, Any], status: int
) -> None:
    good = tag("GOOD")
    response = await api.put("/api/tokens", json=[{"idTag": good, "status": "Accepted"}, entry])
    body = assert_json_error(response, status)
    if status == 422:
        assert "$[1]" in body["error"]
        assert body["detail"][0]["at"] == "$[1]"
    assert_json_error(await api.get(f"/api/tokens/{good}"), 404)
    assert not await in_kv(site, good)


async def test_an_idtag_given_twice_is_refused(site: Stack, api: httpx.AsyncClient) -> None:
    twice = tag("TWICE")
    response = await api.put(
        "/api/tokens", json=[{"idTag": twice, "status": "Accepted"}, {"idTag": twice, "status": "Blocked"}]
    )
    body = assert_json_error(response, 422)
    assert "given twice" in body["error"]
    assert not await in_kv(site, twice)


async def test_ten_thousand_tokens_in_one_put(site: Stack, api: httpx.AsyncClient) -> None:
    prefix = tag("BULK")
    body = [{"idTag": f"{prefix}-{n:05d}", "status": "Invalid"} for n in range(state.MAX_TOKENS)]
    before = int((await api.get("/api/tokens", params={"status": "Invalid", "limit": 1})).headers["X-Total-Count"])

    put = await api.put("/api/tokens", json=body, timeout=60)

    assert put.status_code == 200, put.text
    assert put.json() == {"upserted": state.MAX_TOKENS}
    after = await api.get("/api/tokens", params={"status": "Invalid", "limit": 1})
    assert int(after.headers["X-Total-Count"]) == before + state.MAX_TOKENS
    assert await in_kv(site, f"{prefix}-09999")


async def test_more_than_ten_thousand_tokens_are_refused(site: Stack, api: httpx.AsyncClient) -> None:
    prefix = tag("TOO-MANY")
    body = [{"idTag": f"{prefix}-{n:05d}", "status": "Accepted"} for n in range(state.MAX_TOKENS + 1)]
    response = await api.put("/api/tokens", json=body, timeout=60)
    assert_json_error(response, 413)
    assert not await in_kv(site, f"{prefix}-00000")


async def test_a_token_put_through_the_api_changes_the_authorize_answer(site: Stack, api: httpx.AsyncClient) -> None:
    station, id_tag = tag("CP"), tag("CARD")
    async with charge_point(site.url(station), station, "ocpp1.6", ChargePoint16) as (cp, _):

        async def answer_is(expected: str) -> bool:
            answer = await cp.call(call16.Authorize(id_tag=id_tag))
            return bool(answer.id_tag_info["status"] == expected)

        assert await answer_is("Invalid")  # unknown: the default policy rejects it

        await api.put("/api/tokens", json=[{"idTag": id_tag, "status": "Accepted"}])
        await eventually(lambda: answer_is("Accepted"), timeout=5)

        await api.put("/api/tokens", json=[{"idTag": id_tag, "status": "Blocked"}])
        await eventually(lambda: answer_is("Blocked"), timeout=5)

        assert (await api.delete(f"/api/tokens/{id_tag}")).status_code == 200
        await eventually(lambda: answer_is("Invalid"), timeout=5)


# --- charging profiles ------------------------------------------------------------------------


def profile(**fields: Any) -> dict[str, Any]:
    """A valid stored profile; ``fields`` replace its top-level members."""
    body: dict[str, Any] = {
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative",
        "stackLevel": 1,
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}, {"startPeriod": 3600, "limit": 8.0}],
        },
    }
    return {**body, **fields}


async def test_charging_profiles_round_trip(api: httpx.AsyncClient) -> None:
    name = tag("evening")
    created = await api.post("/api/charging-profiles", json=profile(description=name))
    assert created.status_code == 201, created.text
    stored = created.json()
    pid = stored["id"]
    assert isinstance(pid, int)
    assert pid >= 1
    assert stored == {**profile(description=name), "id": pid}
    assert created.headers["Location"] == f"/api/charging-profiles/{pid}"

    again = await api.post("/api/charging-profiles", json=profile(description=tag("night")))
    assert again.json()["id"] > pid  # ids are allocated in order

    assert (await api.get(f"/api/charging-profiles/{pid}")).json() == stored
    v16 = (await api.get(f"/api/charging-profiles/{pid}", params={"protocol": "ocpp1.6"})).json()
    assert v16["chargingProfileId"] == pid
    assert v16["chargingSchedule"] == stored["chargingSchedule"]
    v201 = (await api.get(f"/api/charging-profiles/{pid}", params={"protocol": "ocpp2.0.1"})).json()
    assert v201["id"] == pid
    assert v201["chargingSchedule"][0]["chargingSchedulePeriod"] == stored["chargingSchedule"]["chargingSchedulePeriod"]
    assert_json_error(await api.get(f"/api/charging-profiles/{pid}", params={"protocol": "ocpp3"}), 400)
    listed = await api.get("/api/charging-profiles", params={"limit": 1000})
    ids = [p["id"] for p in listed.json()]
    assert ids == sorted(ids)
    assert pid in ids
    assert listed.headers["X-Total-Count"] == str(len(ids))

    changed = profile(description=name, stackLevel=2, validFrom="2027-01-01T01:00:00+01:00")
    replaced = await api.put(f"/api/charging-profiles/{pid}", json=changed)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["stackLevel"] == 2
    assert replaced.json()["validFrom"] == "2027-01-01T00:00:00Z"
    assert (await api.get(f"/api/charging-profiles/{pid}")).json() == replaced.json()

    deleted = await api.delete(f"/api/charging-profiles/{pid}")
    assert deleted.status_code == 200
    assert deleted.json() == {"deleted": pid}
    assert_json_error(await api.get(f"/api/charging-profiles/{pid}"), 404)
    assert_json_error(await api.delete(f"/api/charging-profiles/{pid}"), 404)
    assert_json_error(await api.put(f"/api/charging-profiles/{pid}", json=profile()), 404)


async def test_a_given_id_is_kept_and_a_taken_one_is_a_409(api: httpx.AsyncClient) -> None:
    wanted = 1_000_000 + uuid.uuid4().int % 1_000_000
    created = await api.post("/api/charging-profiles", json=profile(id=wanted))
    assert created.status_code == 201, created.text
    assert created.json()["id"] == wanted
    body = assert_json_error(await api.post("/api/charging-profiles", json=profile(id=wanted)), 409)
    assert str(wanted) in body["error"]


async def test_a_taken_description_is_a_409(api: httpx.AsyncClient) -> None:
    name = tag("solar")
    first = await api.post("/api/charging-profiles", json=profile(description=name))
    assert first.status_code == 201
    body = assert_json_error(await api.post("/api/charging-profiles", json=profile(description=name)), 409)
    assert name in body["error"]
    other = (await api.post("/api/charging-profiles", json=profile(description=tag("wind")))).json()["id"]
    assert_json_error(await api.put(f"/api/charging-profiles/{other}", json=profile(description=name)), 409)
    # its own description is no conflict
    own = await api.put(f"/api/charging-profiles/{first.json()['id']}", json=profile(description=name, stackLevel=3))
    assert own.status_code == 200, own.text


def schedule(*periods: dict[str, Any]) -> dict[str, Any]:
    return {"chargingRateUnit": "W", "chargingSchedulePeriod": list(periods)}


INVALID_PROFILES: list[tuple[str, dict[str, Any], int]] = [
    ("no-periods", profile(chargingSchedule=schedule()), 422),
    ("late-first-period", profile(chargingSchedule=schedule({"startPeriod": 60, "limit": 1})), 422),
    (
        "periods-not-ascending",
        profile(chargingSchedule=schedule({"startPeriod": 0, "limit": 1}, {"startPeriod": 0, "limit": 2})),
        422,
    ),
    ("negative-limit", profile(chargingSchedule=schedule({"startPeriod": 0, "limit": -1})), 422),
    ("negative-stack-level", profile(stackLevel=-1), 422),
    ("zero-id", profile(id=0), 422),
    ("id-beyond-32-bits", profile(id=2**31), 422),
    ("valid-to-before-from", profile(validFrom="2027-01-02T00:00:00Z", validTo="2027-01-01T00:00:00Z"), 422),
    ("bad-date", profile(validFrom="tomorrow"), 422),
    ("recurring-without-kind", profile(chargingProfileKind="Recurring"), 422),
    ("unknown-member", profile(colour="green"), 400),
    ("unknown-purpose", profile(chargingProfilePurpose="Cheap"), 400),
    ("unknown-period-member", profile(chargingSchedule=schedule({"startPeriod": 0, "limit": 1, "x": 1})), 400),
]


@pytest.mark.parametrize(
    ("body", "status"), [(b, s) for _, b, s in INVALID_PROFILES], ids=[n for n, _, _ in INVALID_PROFILES]
)
async def test_an_invalid_profile_is_refused(api: httpx.AsyncClient, body: dict[str, Any], status: int) -> None:
    name = tag("invalid")
    before = (await api.get("/api/charging-profiles", params={"limit": 1})).headers["X-Total-Count"]
    assert_json_error(await api.post("/api/charging-profiles", json={**body, "description": name}), status)
    assert (await api.get("/api/charging-profiles", params={"limit": 1})).headers["X-Total-Count"] == before


async def test_a_replacement_with_another_id_in_the_body_is_refused(api: httpx.AsyncClient) -> None:
    pid = (await api.post("/api/charging-profiles", json=profile())).json()["id"]
    assert_json_error(await api.put(f"/api/charging-profiles/{pid}", json=profile(id=pid + 1)), 422)


# --- authentication ---------------------------------------------------------------------------

ROUTES = [
    ("GET", "/api/tokens"),
    ("GET", "/api/tokens/X"),
    ("PUT", "/api/tokens"),
    ("DELETE", "/api/tokens/X"),
    ("GET", "/api/charging-profiles"),
    ("GET", "/api/charging-profiles/1"),
    ("POST", "/api/charging-profiles"),
    ("PUT", "/api/charging-profiles/1"),
    ("DELETE", "/api/charging-profiles/1"),
]


def test_every_state_route_is_listed_here() -> None:
    assert sum(len(h.http_methods) for h in state.ROUTES) == len(ROUTES)


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["none", "wrong"])
async def test_state_routes_need_the_token(site: Stack, method: str, path: str, token: str | None) -> None:
    assert token != API_TOKEN
    id_tag = tag("ANON")
    async with site.http(token=token) as anonymous:
        response = await anonymous.request(method, path, json=[{"idTag": id_tag, "status": "Accepted"}])
    assert_json_error(response, 401)
    assert not await in_kv(site, id_tag)
