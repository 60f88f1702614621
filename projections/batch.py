"""Turn stream messages into column batches for DuckDB's bulk path (Arrow tables, no executemany).

This is the only per-message Python in the projection: read the headers the gateway wrote, slice
the payload out of the frame without re-encoding it (``msgspec.Raw``), append to column lists.
A telemetry reading is not even decoded here: its JSON text goes to DuckDB as it is, which parses
the whole batch at once (``from_json``). Everything else happens set-wise in SQL
(:mod:`projections.fold`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
import pyarrow as pa

from schemas import subjects

_frame = msgspec.json.Decoder(list[msgspec.Raw])
_text = msgspec.json.Decoder(str)
_object = msgspec.json.Decoder(dict[str, Any])
_encode = msgspec.json.Encoder().encode

# where the payload sits in each kind of OCPP-J frame
_PAYLOAD_AT: Final = {"CALL": 3, "SEND": 3, "CALLRESULT": 2, "CALLERROR": 4, "CALLRESULTERROR": 4}
_ERRORS: Final = frozenset({"CALLERROR", "CALLRESULTERROR"})

FRAME_COLUMNS: Final = (
    "seq",
    "stream_us",
    "ts",
    "station",
    "direction",
    "type",
    "action",
    "unique_id",
    "protocol",
    "connection",
    "payload",
    "error_code",
    "error_description",
)
CONN_COLUMNS: Final = (
    "seq",
    "stream_us",
    "ts",
    "station",
    "event",
    "connection",
    "remote_address",
    "protocol",
    "gateway",
    "close_code",
    "reason",
)
EVENT_COLUMNS: Final = (
    "seq",
    "stream_us",
    "ts",
    "kind",
    "name",
    "station",
    "severity",
    "remote_address",
    "detail",
    "body",
)
READING_COLUMNS: Final = ("seq", "stream_us", "device_id", "source", "device", "body")


_EMPTY: Final[dict[str, str]] = {}
_RECEIVED_AT, _STATION, _TYPE, _ACTION, _ID, _PROTOCOL, _CONNECTION, _ERROR, _GATEWAY = (
    subjects.H_RECEIVED_AT,
    subjects.H_STATION,
    subjects.H_TYPE,
    subjects.H_ACTION,
    subjects.H_ID,
    subjects.H_PROTOCOL,
    subjects.H_CONNECTION,
    subjects.H_ERROR,
    subjects.H_GATEWAY,
)


def _columns(names: tuple[str, ...]) -> dict[str, list[Any]]:
    return {name: [] for name in names}


@dataclass(slots=True)
class Batch:
    """Messages of both streams taken since the last flush, as columns."""

    frames: dict[str, list[Any]] = field(default_factory=lambda: _columns(FRAME_COLUMNS))
    conns: dict[str, list[Any]] = field(default_factory=lambda: _columns(CONN_COLUMNS))
    events: dict[str, list[Any]] = field(default_factory=lambda: _columns(EVENT_COLUMNS))
    readings: dict[str, list[Any]] = field(default_factory=lambda: _columns(READING_COLUMNS))
    last_ocpp: int = 0
    last_events: int = 0
    last_telemetry: int = 0
    size: int = 0
    _frame_columns: tuple[Callable[[Any], None], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._frame_columns = tuple(column.append for column in self.frames.values())

    def add_ocpp(self, seq: int, stream_ns: int, subject: str, headers: dict[str, str] | None, data: bytes) -> None:
        """One message of the OCPP stream: a frame or a connection event."""
        self.last_ocpp = seq
        self.size += 1
        parts = subject.split(".")
        if len(parts) < 4:
            return
        get = (headers or _EMPTY).get
        ts = get(_RECEIVED_AT)
        stream_us = stream_ns // 1000
        station = get(_STATION) or subjects.untoken(parts[1])
        where = parts[2]
        if where == "conn":
            self._add_conn(seq, stream_us, ts, station, subjects.untoken(parts[3]), headers or _EMPTY, data)
            return
        kind, payload, error_code, error_description = frame_content(where, parts[3], get, data)
        c = self._frame_columns  # in the order of FRAME_COLUMNS
        c[0](seq)
        c[1](stream_us)
        c[2](ts)
        c[3](station)
        c[4]("IN" if where == "in" else "OUT")
        c[5](kind)
        c[6](get(_ACTION) or None)
        c[7](get(_ID) or None)
        c[8](get(_PROTOCOL) or None)
        c[9](get(_CONNECTION) or None)
        c[10](payload)
        c[11](error_code)
        c[12](error_description)

    def _add_conn(
        self, seq: int, stream_us: int, ts: str | None, station: str, event: str, headers: dict[str, str], data: bytes
    ) -> None:
        try:
            body = _object.decode(data)
        except msgspec.DecodeError:
            body = {}
        c = self.conns
        c["seq"].append(seq)
        c["stream_us"].append(stream_us)
        c["ts"].append(ts)
        c["station"].append(station)
        c["event"].append(event)
        c["connection"].append(_str(body.get("connection")))
        c["remote_address"].append(_str(body.get("remoteAddress")))
        c["protocol"].append(_str(body.get("protocol")) or headers.get(_PROTOCOL))
        c["gateway"].append(headers.get(_GATEWAY))
        code = body.get("closeCode")
        c["close_code"].append(code if isinstance(code, int) else None)
        c["reason"].append(_str(body.get("reason")))

    def add_event(self, seq: int, stream_ns: int, subject: str, headers: dict[str, str] | None, data: bytes) -> None:
        """One message of the EVENTS stream: ``events.{kind}.…``."""
        self.last_events = seq
        self.size += 1
        parts = subject.split(".")
        if len(parts) < 3:
            return
        kind, name, station, body = event_content(parts, headers or _EMPTY, data)
        e = self.events
        e["seq"].append(seq)
        e["stream_us"].append(stream_ns // 1000)
        e["ts"].append(_str(body.get("at")))
        e["kind"].append(kind)
        e["name"].append(name)
        e["station"].append(station)
        e["severity"].append(_str(body.get("severity")))
        e["remote_address"].append(_str(body.get("remoteAddress")))
        e["detail"].append(_str(body.get("detail")) or _str(body.get("reason")))
        e["body"].append(_encode(body).decode())

    def add_reading(self, seq: int, stream_ns: int, subject: str, _headers: dict[str, str] | None, data: bytes) -> None:
        """One message of the TELEMETRY stream: a reading on ``telemetry.{source}.{device}``. The
        runner's consumer filters on ``telemetry.*.*``; anything longer (raw MQTT messages) only
        moves the position."""
        self.last_telemetry = seq
        self.size += 1
        names = subjects.reading_device(subject)
        if names is None:
            return
        device_id, source, device = names
        r = self.readings
        r["seq"].append(seq)
        r["stream_us"].append(stream_ns // 1000)
        r["device_id"].append(device_id)
        r["source"].append(source)
        r["device"].append(device)
        r["body"].append(data.decode("utf-8", "replace"))

    def readings_table(self) -> pa.Table:
        return pa.table(self.readings, schema=READING_SCHEMA)

    def tables(self) -> tuple[pa.Table, pa.Table, pa.Table]:
        return (
            pa.table(self.frames, schema=FRAME_SCHEMA),
            pa.table(self.conns, schema=CONN_SCHEMA),
            pa.table(self.events, schema=EVENT_SCHEMA),
        )


def frame_content(
    where: str, action: str, get: Callable[[str], str | None], data: bytes
) -> tuple[str, str | None, str | None, str | None]:
    """A frame's type, payload (its JSON text, unchanged) and, for a CALLERROR, error code and
    description, from its subject's direction (``in``/``out``) and action tokens and its headers
    (``get``). A frame that is not OCPP-J is ``INVALID`` with its text as a JSON string, and
    ``Ocpp-Error`` as the description."""
    kind = get(_TYPE) or ""
    payload: str | None = None
    error_code = error_description = None
    if kind == "INVALID" or action == subjects.INVALID:
        kind = "INVALID" if where == "in" else kind or "CALLERROR"
    if kind == "INVALID":
        return kind, _encode(data.decode("utf-8", "replace")).decode(), None, get(_ERROR)
    try:
        elements = _frame.decode(data)
        at = _PAYLOAD_AT.get(kind)
        if at is not None and len(elements) > at:
            payload = bytes(elements[at]).decode()
        if kind in _ERRORS and len(elements) > 3:
            error_code = _as_text(elements[2])
            error_description = _as_text(elements[3])
    except (msgspec.DecodeError, UnicodeDecodeError):  # not JSON, or not UTF-8 inside
        payload = _encode(data.decode("utf-8", "replace")).decode()
    return kind, payload, error_code, error_description


def event_content(
    parts: list[str], headers: dict[str, str], data: bytes
) -> tuple[str, str, str | None, dict[str, Any]]:
    """An ``events.{kind}.…`` message's kind, name, station and body (``{"raw": text}`` when the
    body is not a JSON object). Security events are ``events.security.{category}``; the others
    ``events.{kind}.{station}.{name}``."""
    try:
        body = _object.decode(data)
    except msgspec.DecodeError:
        body = {"raw": data.decode("utf-8", "replace")}
    kind = parts[1]
    station = headers.get(_STATION) or _str(body.get("station"))
    if kind == "security":
        name = subjects.untoken(parts[2])
        body.setdefault("severity", "warning")  # stored before the field was always written
    else:
        if station is None and len(parts) > 3:
            station = subjects.untoken(parts[2])
        name = subjects.untoken(parts[-1])
    return kind, name, station, body


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _as_text(raw: msgspec.Raw) -> str | None:
    try:
        value = _text.decode(raw)
    except msgspec.DecodeError:
        return bytes(raw).decode("utf-8", "replace")
    return value


def _schema(names: tuple[str, ...], ints: tuple[str, ...]) -> pa.Schema:
    return pa.schema([(n, pa.int64() if n in ints else pa.string()) for n in names])


FRAME_SCHEMA: Final = _schema(FRAME_COLUMNS, ("seq", "stream_us"))
CONN_SCHEMA: Final = _schema(CONN_COLUMNS, ("seq", "stream_us", "close_code"))
EVENT_SCHEMA: Final = _schema(EVENT_COLUMNS, ("seq", "stream_us"))
READING_SCHEMA: Final = _schema(READING_COLUMNS, ("seq", "stream_us"))
