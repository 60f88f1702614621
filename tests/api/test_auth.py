"""API authentication: the admin token, login sessions in an HttpOnly cookie, named users from KV
``users``, failed logins as security events, the open mode, and the generated token kept hashed."""

from __future__ import annotations

import asyncio
import io
import stat
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth import COOKIE, TOKEN_FILE, admin_token_hash
from evbus import cli
from evbus.passwords import verify_password
from evbus.settings import Settings
from schemas import subjects
from tests.conftest import API_TOKEN, Stack, running, stack_settings
from tests.support import eventually


@pytest.fixture(scope="module")
async def api_stack(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Only the projection and the API, one for the module: these tests need no station."""
    settings = stack_settings(nats_url, tmp_path_factory.mktemp("auth"))
    async with running(settings, gateway=False, processor=False, api=True) as s:
        yield s


def cookie_client(stack: Stack, session_id: str) -> httpx.AsyncClient:
    """A client with no token, only the session cookie (set by hand, as a browser would send it)."""
    return httpx.AsyncClient(base_url=stack.api_url, headers={"Cookie": f"{COOKIE}={session_id}"}, timeout=10)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- token login, session, logout -------------------------------------------------------------


async def test_a_token_login_opens_a_cookie_session_until_logout(api_stack: Stack) -> None:
    async with api_stack.http(token=None) as browser:
        response = await browser.post("/api/auth/login", json={"token": API_TOKEN})
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"sessionId", "user", "expiresAt"}
        assert body["user"] == {"name": "admin"}
        hours = api_stack.settings.api_session_hours
        expected = datetime.now(UTC) + timedelta(hours=hours)
        assert abs(moment(body["expiresAt"]) - expected) < timedelta(minutes=1)
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}={body['sessionId']};")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Path=/" in cookie
        session_id = body["sessionId"]

        # the cookie alone authorizes the API (the client keeps it, as a browser does)
        assert (await browser.get("/api/overview")).status_code == 200
        assert (await browser.get("/api/connections")).status_code == 200
        current = (await browser.get("/api/auth/session")).json()
        assert current == {"authenticated": True, "user": {"name": "admin"}, "expiresAt": body["expiresAt"]}

        logout = await browser.post("/api/auth/logout")
        assert logout.status_code == 200
        assert logout.json()["success"] is True
        assert COOKIE not in browser.cookies
        assert (await browser.get("/api/overview")).status_code == 401

    # the session is over on the server too, not only forgotten by the client
    async with cookie_client(api_stack, session_id) as replayed:
        response = await replayed.get("/api/overview")
        assert response.status_code == 401
        assert response.json()["error"]
        assert (await replayed.get("/api/auth/session")).json()["authenticated"] is False


async def test_a_session_cookie_is_not_a_token(api_stack: Stack) -> None:
    """The session id authorizes only as the cookie; as a bearer token it is refused."""
    async with api_stack.http(token=None) as browser:
        session_id = (await browser.post("/api/auth/login", json={"token": API_TOKEN})).json()["sessionId"]
    async with cookie_client(api_stack, session_id) as with_cookie:
        assert (await with_cookie.get("/api/stations")).status_code == 200
    async with api_stack.http(token=session_id) as with_bearer:
        assert (await with_bearer.get("/api/stations")).status_code == 401


# --- users ------------------------------------------------------------------------------------


async def add_user(stack: Stack, monkeypatch: pytest.MonkeyPatch, name: str, password: str) -> int:
    """`evbus user NAME --password-stdin`, then wait until the API's mirror of KV users has it."""
    monkeypatch.setenv("EVBUS_NATS_URL", stack.settings.nats_url or "")
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    code = await asyncio.to_thread(cli.main, ["user", name, "--password-stdin"])
    assert stack.api is not None
    users = stack.api.services.auth.users
    assert users is not None

    async def mirrored() -> bool:
        return users.get(subjects.kv_key(name)) is not None

    await eventually(mirrored)
    return code


async def test_a_user_from_the_cli_logs_in_with_a_password(
    api_stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"ops-{uuid.uuid4().hex[:6]}"
    assert await add_user(api_stack, monkeypatch, name, "correct horse battery") == 0
    assert f"user {name!r} can log in" in capsys.readouterr().out
    async with api_stack.http(token=None) as browser:
        response = await browser.post("/api/auth/login", json={"username": name, "password": "correct horse battery"})
        assert response.status_code == 200, response.text
        assert response.json()["user"] == {"name": name}
        assert (await browser.get("/api/stations")).status_code == 200
        assert (await browser.get("/api/auth/session")).json()["user"] == {"name": name}
        wrong = await browser.post("/api/auth/login", json={"username": name, "password": "correct horse battery!"})
        assert wrong.status_code == 401


async def test_the_cli_refuses_a_short_user_password(api_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVBUS_NATS_URL", api_stack.settings.nats_url or "")
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    with pytest.raises(SystemExit, match="at least 8 characters"):
        await asyncio.to_thread(cli.main, ["user", "shorty", "--password-stdin"])


# --- failed logins ----------------------------------------------------------------------------


async def security_events(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await api.get("/api/security", params={"category": "api_login_failed", "limit": 1000})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


async def failed_logins(api: httpx.AsyncClient) -> int:
    response = await api.get("/api/security", params={"category": "api_login_failed", "limit": 1})
    assert response.status_code == 200, response.text
    return int(response.headers["X-Total-Count"])


@pytest.mark.parametrize(
    ("credentials", "says", "address"),  # an address per case: events are one per address and minute
    [
        ({"token": "not-the-token"}, "token", "127.0.0.31"),
        ({"username": "nobody-{tag}", "password": "whatever-it-is"}, "nobody-{tag}", "127.0.0.32"),
        ({"username": "admin", "password": API_TOKEN}, "'admin'", "127.0.0.33"),
    ],
    ids=["token", "unknown-user", "admin-as-user"],
)
async def test_a_failed_login_is_401_and_a_security_event(
    api_stack: Stack, credentials: dict[str, str], says: str, address: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    credentials = {k: v.format(tag=tag) for k, v in credentials.items()}
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with (
        api_stack.http() as api,
        httpx.AsyncClient(base_url=api_stack.api_url, transport=transport, timeout=10) as browser,
    ):
        await api_stack.projected()
        seen = {e["id"] for e in await security_events(api)}
        response = await browser.post("/api/auth/login", json=credentials)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid credentials"
        assert "set-cookie" not in response.headers
        assert (await browser.get("/api/auth/session")).json()["authenticated"] is False

        async def new_event() -> list[dict[str, Any]]:
            return [e for e in await security_events(api) if e["id"] not in seen]

        (event,) = await eventually(new_event)
        assert event["category"] == "api_login_failed"
        assert says.format(tag=tag) in event["message"]
        assert event["details"]["remoteAddress"].startswith(f"{address}:")  # host:port, as the gateway writes it


async def test_failed_logins_from_one_address_are_one_event_a_minute(api_stack: Stack) -> None:
    """A password-guessing loop gets 401s but cannot flood the EVENTS stream."""
    address = "127.0.0.34"
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with (
        api_stack.http() as api,
        httpx.AsyncClient(base_url=api_stack.api_url, transport=transport, timeout=10) as guesser,
    ):
        await api_stack.projected()
        seen = {e["id"] for e in await security_events(api)}
        for attempt in range(5):
            answer = await guesser.post("/api/auth/login", json={"token": f"guess-{attempt}"})
            assert answer.status_code == 401

        async def from_there() -> list[dict[str, Any]]:
            return [
                e
                for e in await security_events(api)
                if e["id"] not in seen and e["details"]["remoteAddress"].startswith(f"{address}:")
            ]

        await eventually(from_there)
        await api_stack.projected()
        assert len(await from_there()) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"token": API_TOKEN, "admin": True},
        {"username": "someone", "password": "some password", "role": "admin"},
        {"token": API_TOKEN, "Token": API_TOKEN},
    ],
    ids=["token-and-admin", "user-and-role", "two-spellings"],
)
async def test_unknown_members_in_the_login_body_are_a_400(api_stack: Stack, body: dict[str, Any]) -> None:
    async with api_stack.http(token=None) as browser:
        response = await browser.post("/api/auth/login", json=body)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/json")
        problem = response.json()
        assert problem["error"]
        unknown = (set(body) - {"token", "username", "password"}).pop()
        assert f"`{unknown}`" in str(problem["detail"])
        assert "set-cookie" not in response.headers
        assert (await browser.get("/api/overview")).status_code == 401


@pytest.mark.parametrize(
    "body",
    [b'{"token": ', b'["token"]', b'{"token": 5}', b"{}", b'{"username": "admin"}', b'{"password": "secret"}'],
    ids=["truncated", "array", "number", "empty", "no-password", "no-username"],
)
async def test_a_login_body_that_is_no_credentials_is_a_400(api_stack: Stack, body: bytes) -> None:
    """Not a failed login but a malformed request: 400, and no security event."""
    async with api_stack.http() as api, api_stack.http(token=None) as browser:
        await api_stack.projected()
        before = await failed_logins(api)
        response = await browser.post("/api/auth/login", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text
        assert response.json()["error"]
        assert "set-cookie" not in response.headers
        await api_stack.projected()
        assert await failed_logins(api) == before


# --- open mode --------------------------------------------------------------------------------


async def test_api_open_lets_requests_without_a_token_through(settings: Settings) -> None:
    open_settings = settings.with_(api_open=True)
    async with running(open_settings, gateway=False, processor=False, api=True) as stack, stack.http(None) as anonymous:
        for path in ("/api/overview", "/api/stations", "/api/messages", "/metrics"):
            response = await anonymous.get(path)
            assert response.status_code == 200, (path, response.text)


async def test_the_api_is_closed_by_default(api_stack: Stack) -> None:
    """The counterpart of the open mode, on a stack with the default settings."""
    assert api_stack.settings.api_open is False
    async with api_stack.http(token=None) as anonymous:
        assert (await anonymous.get("/api/overview")).status_code == 401


# --- the generated admin token ----------------------------------------------------------------


def test_a_generated_admin_token_is_stored_hashed(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    token_hash, token = admin_token_hash(None, data_dir)
    assert token is not None
    assert len(token) >= 32
    path = data_dir / TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = path.read_text()
    assert stored.strip() == token_hash
    assert stored.startswith("$argon2id$")
    assert token not in stored
    assert verify_password(token_hash, token)
    assert not verify_password(token_hash, token + "x")

    again_hash, again = admin_token_hash(None, data_dir)
    assert again is None  # printed once only
    assert again_hash == token_hash
    assert path.read_text() == stored


def test_a_configured_admin_token_writes_no_file(tmp_path: Path) -> None:
    token_hash, generated = admin_token_hash("configured-token", tmp_path)
    assert generated is None
    assert verify_password(token_hash, "configured-token")
    assert not (tmp_path / TOKEN_FILE).exists()


async def test_the_generated_token_opens_the_api_across_restarts(settings: Settings) -> None:
    generated_settings = settings.with_(api_token=None)
    async with running(generated_settings, gateway=False, processor=False, api=True) as first:
        assert first.api is not None
        token = first.api.generated_token
        assert token is not None
        async with first.http(token=token) as api:
            assert (await api.get("/api/stations")).status_code == 200
        async with first.http() as api:  # the test token is not configured here
            assert (await api.get("/api/stations")).status_code == 401
    async with running(generated_settings, gateway=False, processor=False, api=True) as second:
        assert second.api is not None
        assert second.api.generated_token is None
        async with second.http(token=token) as api:
            assert (await api.get("/api/stations")).status_code == 200
