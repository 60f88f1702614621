"""Bad input gets a JSON answer with the right status: unknown stations 404, bad parameters 400
naming the parameter, no or a wrong token 401; SQL-looking filters are only strings."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api import app, commands, history, monitoring, operations, state, stations
from tests.api.test_sessions import session_16
from tests.conftest import API_TOKEN, Stack, running, stack_settings

OPEN = {"/api/auth/login", "/api/auth/session", "/api/auth/logout", "/healthz"}


@pytest.fixture(scope="module")
async def site(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Stack, str]]:
    """One stack and one finished 1.6 session for the whole module: these tests only read."""
    station = f"CP-{uuid.uuid4().hex[:10]}"
    async with running(stack_settings(nats_url, tmp_path_factory.mktemp("bad-input")), api=True) as stack:
        await session_16(stack, station)
        await stack.projected()
        yield stack, station


def assert_json_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) <= {"error", "detail"}
    assert isinstance(body["error"], str)
    assert body["error"]
    assert "Traceback" not in response.text
    return body


# --- unknown stations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/api/stations/{unknown}", {}),
        ("GET", "/api/connections/{unknown}", {}),
        ("DELETE", "/api/connections/{unknown}", {}),
        ("GET", "/api/transactions/{unknown}", {}),
        ("GET", "/api/transactions/1", {"identity": "{unknown}"}),
        ("GET", "/api/replay", {"identity": "{unknown}"}),
    ],
)
async def test_an_unknown_station_is_a_json_404(
    site: tuple[Stack, str], method: str, path: str, params: dict[str, str]
) -> None:
    stack, _ = site
    unknown = f"NOPE-{uuid.uuid4().hex[:8]}"
    async with stack.http() as api:
        response = await api.request(
            method, path.format(unknown=unknown), params={k: v.format(unknown=unknown) for k, v in params.items()}
        )
    body = assert_json_error(response, 404)
    assert "unknown" in body["error"] or "no " in body["error"]


async def test_the_known_station_is_found(site: tuple[Stack, str]) -> None:
    """The 404s above are about the id: the same routes find the module's station."""
    stack, station = site
    async with stack.http() as api:
        for path in (f"/api/stations/{station}", f"/api/connections/{station}"):
            assert (await api.get(path)).status_code == 200
        replay = await api.get("/api/replay", params={"identity": station})
        assert replay.status_code == 200
        assert replay.text.count("\n") == 18  # connected, 16 frames, disconnected


# --- bad query parameters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "param", "value"),
    [
        ("/api/messages", "limit", "0"),
        ("/api/messages", "limit", "abc"),
        ("/api/messages", "limit", "1001"),
        ("/api/messages", "offset", "-1"),
        ("/api/messages", "direction", "SIDEWAYS"),
        ("/api/messages", "type", "PING"),
        ("/api/messages", "since", "notadate"),
        ("/api/messages", "until", "yesterday"),
        ("/api/messages", "order", "random"),
        ("/api/connections", "status", "maybe"),
        ("/api/connections", "offset", "x"),
        ("/api/stations", "online", "perhaps"),
        ("/api/stations", "limit", "-5"),
        ("/api/transactions", "format", "xml"),
        ("/api/transactions", "active", "perhaps"),
        ("/api/transactions", "since", "notadate"),
        ("/api/liveness", "threshold", "-1"),
        ("/api/liveness", "threshold", "0"),
        ("/api/liveness", "threshold", "abc"),
        ("/api/liveness", "threshold", "nan"),
        ("/api/liveness", "threshold", "inf"),
        ("/api/liveness", "sort", "loudness"),
        ("/api/security", "severity", "extreme"),
        ("/api/security", "limit", "0"),
        ("/api/replay", "since", "notadate"),
        ("/api/replay", "until", "later"),
    ],
)
async def test_a_bad_query_parameter_is_a_400_naming_it(
    site: tuple[Stack, str], path: str, param: str, value: str
) -> None:
    stack, station = site
    params = {"identity": station} if path == "/api/replay" else {}
    async with stack.http() as api:
        response = await api.get(path, params={**params, param: value})
    body = assert_json_error(response, 400)
    assert f"'{param}'" in body["error"]


@pytest.mark.parametrize(
    "path", ["/api/messages", "/api/transactions", "/api/security", "/api/devices/evcc.lp1/readings"]
)
@pytest.mark.parametrize(
    ("since", "until"),
    [("0001-01-01T00:00:00+01:00", None), (None, "9999-12-31T23:59:59-01:00"), (None, "0001-01-01T00:30:00+01:00")],
)
async def test_times_without_a_utc_form_are_the_ends_of_time_not_a_500(
    site: tuple[Stack, str], path: str, since: str | None, until: str | None
) -> None:
    stack, _ = site
    params = {name: value for name, value in (("since", since), ("until", until)) if value is not None}
    async with stack.http() as api:
        response = await api.get(path, params=params)
    assert response.status_code in (200, 400, 404), response.text  # a range from or to the end of time
    assert response.headers["content-type"].startswith("application/json")


async def test_a_missing_required_parameter_is_a_400_naming_it(site: tuple[Stack, str]) -> None:
    stack, _ = site
    async with stack.http() as api:
        response = await api.get("/api/replay")
    body = assert_json_error(response, 400)
    assert "'identity'" in body["error"]


# --- authentication ---------------------------------------------------------------------------


def guarded_routes() -> list[tuple[str, str]]:
    """(method, path) of every route that needs a token, path parameters filled in."""
    found = []
    modules = (monitoring, operations, commands, history, state, stations)
    for handler in [*(h for m in modules for h in m.ROUTES), app.healthz, app.metrics]:
        for path in handler.paths:
            if path in OPEN:
                continue
            for method in sorted(handler.http_methods):
                found.append((method, re.sub(r"\{(\w+):(\w+)\}", lambda m: "1" if m[2] == "int" else "x", path)))
    return found


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {API_TOKEN}"},
        {"Authorization": API_TOKEN},
        {"Cookie": "evbus_session=forged"},
    ],
    ids=["none", "wrong", "empty", "basic", "no-scheme", "forged-cookie"],
)
async def test_every_guarded_route_is_401_without_a_valid_token(
    site: tuple[Stack, str], headers: dict[str, str]
) -> None:
    stack, _ = site
    routes = guarded_routes()
    assert ("GET", "/metrics") in routes
    assert ("DELETE", "/api/connections/x") in routes
    assert ("POST", "/api/stations/x/commands/x") in routes
    assert ("PUT", "/api/stations/x/security") in routes
    async with stack.http(token=None) as anonymous:
        for method, path in routes:
            response = await anonymous.request(method, path, params={"identity": "x"}, headers=headers)
            assert_json_error(response, 401)


async def test_the_same_routes_answer_with_the_token(site: tuple[Stack, str]) -> None:
    """The 401s above are about the token: with it no guarded GET is refused."""
    stack, station = site
    async with stack.http() as api:
        for method, path in guarded_routes():
            if method == "GET":
                response = await api.get(path.replace("/x", f"/{station}"), params={"identity": station})
                assert response.status_code in {200, 404}, (path, response.text)  # 404: transaction 1 of nobody


async def test_health_and_the_session_are_open(site: tuple[Stack, str]) -> None:
    stack, _ = site
    async with stack.http(token=None) as anonymous:
        health = await anonymous.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        session = await anonymous.get("/api/auth/session")
        assert session.status_code == 200
        assert session.json()["authenticated"] is False
        assert (await anonymous.post("/api/auth/logout")).status_code == 200


# --- SQL-looking input ------------------------------------------------------------------------

INJECTIONS = ["x' OR '1'='1", "; DROP TABLE messages; --", "' OR 1=1 --", "x\\' UNION SELECT * FROM stations --"]


async def test_sql_looking_filters_are_only_strings(site: tuple[Stack, str]) -> None:
    stack, station = site
    async with stack.http() as api:
        before = (await api.get("/api/messages", params={"identity": station})).headers["X-Total-Count"]
        assert before == "16"
        for text in INJECTIONS:
            for path, param in [
                ("/api/messages", "identity"),
                ("/api/messages", "method"),
                ("/api/connections", "protocol"),
                ("/api/transactions", "identity"),
                ("/api/transactions", "idTag"),
                ("/api/security", "category"),
                ("/api/security", "identity"),
            ]:
                response = await api.get(path, params={param: text})
                assert response.status_code == 200, (path, param, text, response.text)
                assert response.json() == [], (path, param, text)
                assert response.headers["X-Total-Count"] == "0"
            assert (await api.get("/api/metrics/actions", params={"identity": text})).json() == []
            for path in ("/api/stations/{}", "/api/connections/{}", "/api/transactions/{}"):
                assert_json_error(await api.get(path.format(text)), 404)
            assert_json_error(await api.get("/api/replay", params={"identity": text}), 404)
        # the tables are intact: the station's rows are all still there
        after = await api.get("/api/messages", params={"identity": station})
        assert after.headers["X-Total-Count"] == before
        assert (await api.get(f"/api/stations/{station}")).json()["identity"] == station
        assert len((await api.get("/api/transactions", params={"identity": station})).json()) == 1


async def test_every_answer_has_the_security_headers_and_no_cors(site: tuple[Stack, str]) -> None:
    stack, _ = site
    async with stack.http() as api, stack.http(token=None) as anonymous:
        answers = [
            await api.get("/api/overview"),
            await api.get("/api/stations/nope"),  # an error answer too
            await anonymous.get("/api/overview", headers={"Origin": "https://evil.example"}),
            await anonymous.get("/healthz"),
        ]
    for response in answers:
        for name, value in app.SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.url, name)
        assert "access-control-allow-origin" not in response.headers
