"""A synthetic but realistic OCPP/EVENTS/TELEMETRY stream, published with the gateway's and
processor's headers: connections, boots, statuses, 1.6 and 2.0.1 transactions with meter values, a
CALLERROR, a malformed frame, a station retrying a CALL, security events; operator commands and
what they cause (reservations used, cancelled, refused and expired, local lists, firmware and
diagnostics status) and their events; MQTT devices' readings with raw messages between them
(sessions, evcc's restart burst, a gateway restart's retained replay, a body that is no reading)."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import msgspec
from nats.js import JetStreamContext

from projections import fold
from projections.batch import Batch
from schemas import subjects
from schemas.commands import CommandEvent, encode
from schemas.telemetry import Reading
from schemas.telemetry import encode as encode_reading


@dataclass
class Message:
    subject: str
    headers: dict[str, str]
    data: bytes


def fresh_ids() -> Iterator[int]:
    """``Nats-Msg-Id`` numbers no other script of the test session uses: tests share one
    nats-server, whose streams drop a message whose id they saw in the last 2 minutes."""
    return itertools.count(uuid.uuid4().int % 10**12 * 10**6)


@dataclass
class Script:
    """Builds the messages of many stations' sessions, interleaved like real traffic."""

    t0: datetime = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
    ids: Iterator[int] = field(default_factory=fresh_ids)

    def at(self, seconds: float) -> str:
        return (self.t0 + timedelta(seconds=seconds)).isoformat(timespec="microseconds").replace("+00:00", "Z")

    def frame(
        self,
        station: str,
        conn: str,
        protocol: str,
        direction: str,
        kind: str,
        action: str,
        uid: str,
        body: Any,
        t: float,
    ) -> Message:
        n = next(self.ids)
        headers = subjects.frame_headers(
            station=station,
            direction=direction,  # type: ignore[arg-type]
            kind=kind,
            action=action,
            unique_id=uid,
            protocol=protocol,
            msg_id=f"syn:{n}",
            received_at=self.at(t),
            gateway="gw-1",
            connection=conn,
        )
        return Message(subjects.ocpp_frame(station, direction, action), headers, json.dumps(body).encode())  # type: ignore[arg-type]

    def conn(self, station: str, conn: str, protocol: str, event: str, t: float, **extra: Any) -> Message:
        n = next(self.ids)
        headers = {
            subjects.H_STATION: station,
            subjects.H_GATEWAY: "gw-1",
            subjects.H_RECEIVED_AT: self.at(t),
            subjects.H_PROTOCOL: protocol,
            subjects.H_MSG_ID: f"syn:{n}",
        }
        body = {"event": event, "connection": conn, "protocol": protocol, "remoteAddress": "10.0.0.1:4000", **extra}
        return Message(subjects.ocpp_conn(station, event), headers, json.dumps(body).encode())

    def call(self, station: str, conn: str, protocol: str, action: str, req: Any, res: Any, t: float) -> list[Message]:
        uid = f"u{next(self.ids)}"
        return [
            self.frame(station, conn, protocol, "in", "CALL", action, uid, [2, uid, action, req], t),
            self.frame(station, conn, protocol, "out", "CALLRESULT", action, uid, [3, uid, res], t + 0.004),
        ]

    def command(
        self, station: str, conn: str, protocol: str, action: str, req: Any, res: Any, t: float, error: str = ""
    ) -> list[Message]:
        """A CALL evbus sends and the station's answer: CALLRESULT ``res``, or CALLERROR ``error``."""
        uid = f"c{next(self.ids)}"
        answer = [4, uid, error, "refused", {}] if error else [3, uid, res]
        return [
            self.frame(station, conn, protocol, "out", "CALL", action, uid, [2, uid, action, req], t),
            self.frame(station, conn, protocol, "in", "CALLERROR" if error else "CALLRESULT", action, uid, answer,
                       t + 0.05),
        ]  # fmt: skip

    def commands_16(self, station: str, c: str, n: int, t: float) -> list[Message]:
        """Reservations (one to use, one cancelled or refused), local list updates, firmware and
        diagnostics notifications of a 1.6 station."""
        p = "ocpp1.6"
        out = self.command(station, c, p, "ReserveNow", {"connectorId": 1, "expiryDate": self.at(t + 3600),
                           "idTag": f"TAG{n}", "reservationId": 100 + n}, {"status": "Accepted"}, t)  # fmt: skip
        # a cancellation the station refuses leaves the reservation as it was
        out += self.command(station, c, p, "CancelReservation", {"reservationId": 100 + n}, {"status": "Rejected"},
                            t + 0.1)  # fmt: skip
        other = {"connectorId": 2, "expiryDate": self.at(t + 7200), "idTag": "OTHER", "parentIdTag": "PARENT",
                 "reservationId": 200 + n}  # fmt: skip
        if n % 4 == 0:
            out += self.command(station, c, p, "ReserveNow", other, {"status": "Accepted"}, t + 0.2)
            out += self.command(station, c, p, "CancelReservation", {"reservationId": 200 + n}, {"status": "Accepted"},
                                t + 0.3)  # fmt: skip
        else:
            out += self.command(station, c, p, "ReserveNow", other, None, t + 0.2, error="NotSupported")
        full = {"listVersion": 1, "updateType": "Full", "localAuthorizationList": [
                {"idTag": f"A{n}", "idTagInfo": {"status": "Accepted", "expiryDate": self.at(86400)}},
                {"idTag": f"B{n}", "idTagInfo": {"status": "Blocked", "parentIdTag": "P"}}]}  # fmt: skip
        out += self.command(station, c, p, "SendLocalList", full, {"status": "Accepted"}, t + 0.4)
        diff = {"listVersion": 2, "updateType": "Differential", "localAuthorizationList": [
                {"idTag": f"B{n}"}, {"idTag": f"C{n}", "idTagInfo": {"status": "Accepted"}}]}  # fmt: skip
        out += self.command(station, c, p, "SendLocalList", diff, {"status": "Accepted"}, t + 0.5)
        refused = {"listVersion": 3, "updateType": "Differential", "localAuthorizationList": [{"idTag": f"A{n}"}]}
        out += self.command(station, c, p, "SendLocalList", refused, {"status": "VersionMismatch"}, t + 0.6)
        out += self.command(station, c, p, "GetLocalListVersion", {}, {"listVersion": 2}, t + 0.7)
        out += self.call(station, c, p, "FirmwareStatusNotification", {"status": "Downloading"}, {}, t + 0.8)
        out += self.call(station, c, p, "FirmwareStatusNotification", {"status": "Installed"}, {}, t + 0.9)
        out += self.call(station, c, p, "DiagnosticsStatusNotification", {"status": "Uploaded"}, {}, t + 1.0)
        return out

    def commands_201(self, station: str, c: str, n: int, t: float) -> list[Message]:
        """The same for a 2.0.1 station: a reservation to use, one the station reports expired."""
        p = "ocpp2.0.1"
        reserve = {"id": 300 + n, "evseId": 1, "expiryDateTime": self.at(t + 3600),
                   "idToken": {"idToken": f"TOK{n}", "type": "ISO14443"}}  # fmt: skip
        out = self.command(station, c, p, "ReserveNow", reserve, {"status": "Accepted"}, t)
        lapsing = {"id": 400 + n, "evseId": 2, "expiryDateTime": self.at(t + 60),
                   "idToken": {"idToken": "X", "type": "Central"},
                   "groupIdToken": {"idToken": "G", "type": "Central"}}  # fmt: skip
        out += self.command(station, c, p, "ReserveNow", lapsing, {"status": "Accepted"}, t + 0.1)
        out += self.call(station, c, p, "ReservationStatusUpdate",
                         {"reservationId": 400 + n, "reservationUpdateStatus": "Expired"}, {}, t + 0.2)  # fmt: skip
        full = {"versionNumber": 5, "updateType": "Full", "localAuthorizationList": [
                {"idToken": {"idToken": f"T{n}", "type": "ISO14443"}, "idTokenInfo": {"status": "Accepted",
                 "cacheExpiryDateTime": self.at(86400), "groupIdToken": {"idToken": "G", "type": "Central"}}},
                {"idToken": {"idToken": "U", "type": "eMAID"}, "idTokenInfo": {"status": "Invalid"}}]}  # fmt: skip
        out += self.command(station, c, p, "SendLocalList", full, {"status": "Accepted"}, t + 0.3)
        out += self.command(station, c, p, "GetLocalListVersion", {}, {"versionNumber": 5}, t + 0.4)
        out += self.call(station, c, p, "FirmwareStatusNotification", {"status": "Installing", "requestId": 7}, {},
                         t + 0.5)  # fmt: skip
        out += self.call(station, c, p, "LogStatusNotification", {"status": "Uploading", "requestId": 8}, {}, t + 0.6)
        return out

    def session_16(self, station: str, n: int, t: float) -> list[Message]:
        c, p, tx = f"{station}-c", "ocpp1.6", 1000 + n
        out = [self.conn(station, c, p, "connected", t)]
        out += self.call(station, c, p, "BootNotification", {"chargePointVendor": "V", "chargePointModel": f"M{n % 3}"},
                         {"status": "Accepted", "interval": 300, "currentTime": self.at(t)}, t + 0.1)  # fmt: skip
        out += self.commands_16(station, c, n, t + 0.2)
        out += self.call(station, c, p, "StatusNotification", {"connectorId": 1, "errorCode": "NoError",
                         "status": "Preparing"}, {}, t + 1.5)  # fmt: skip
        start = {"connectorId": 1, "idTag": f"TAG{n}", "meterStart": 1000 * n, "timestamp": self.at(t + 2),
                 "reservationId": 100 + n}  # fmt: skip
        out += self.call(station, c, p, "StartTransaction", start,
                         {"transactionId": tx, "idTagInfo": {"status": "Accepted"}}, t + 2)  # fmt: skip
        # the station retries the same MeterValues (same unique id): two CALLs, two answers
        register = {"value": str(1000 * n + 500), "measurand": "Energy.Active.Import.Register"}
        mv = {
            "connectorId": 1,
            "transactionId": tx,
            "meterValue": [{"timestamp": self.at(t + 60), "sampledValue": [register]}],
        }
        uid = f"u{next(self.ids)}"
        for k in range(2):
            out.append(
                self.frame(station, c, p, "in", "CALL", "MeterValues", uid, [2, uid, "MeterValues", mv], t + 60 + k)
            )
            out.append(self.frame(station, c, p, "out", "CALLRESULT", "MeterValues", uid, [3, uid, {}], t + 60.01 + k))
        out += self.call(station, c, p, "Heartbeat", {}, {"currentTime": self.at(t + 90)}, t + 90)
        bad = f"u{next(self.ids)}"
        out.append(self.frame(station, c, p, "in", "CALL", "Authorize", bad, [2, bad, "Authorize", {}], t + 95))
        out.append(self.frame(station, c, p, "out", "CALLERROR", "Authorize", bad,
                              [4, bad, "FormationViolation", "idTag is required", {}], t + 95.002))  # fmt: skip
        out.append(Message(subjects.ocpp_invalid(station, "in"), {subjects.H_STATION: station,
                   subjects.H_RECEIVED_AT: self.at(t + 96), subjects.H_MSG_ID: f"syn:{next(self.ids)}",
                   subjects.H_ERROR: "not JSON"}, b"[2, oops"))  # fmt: skip
        stop = {"transactionId": tx, "meterStop": 1000 * n + 900, "timestamp": self.at(t + 120), "reason": "Local"}
        out += self.call(station, c, p, "StopTransaction", stop, {}, t + 120)
        out.append(self.conn(station, c, p, "disconnected", t + 130, closeCode=1000))
        return out

    def session_201(self, station: str, n: int, t: float) -> list[Message]:
        c, p, tx = f"{station}-c", "ocpp2.0.1", f"tx-{n}"
        out = [self.conn(station, c, p, "connected", t)]
        boot = {"chargingStation": {"vendorName": "W", "model": "X"}, "reason": "PowerUp"}
        out += self.call(station, c, p, "BootNotification", boot, {"status": "Accepted", "interval": 60,
                         "currentTime": self.at(t)}, t + 0.1)  # fmt: skip
        out += self.commands_201(station, c, n, t + 0.2)
        for i, (kind, wh) in enumerate((("Started", 2.0), ("Updated", 3.5), ("Ended", 4.0))):
            event = {"eventType": kind, "timestamp": self.at(t + 10 + i * 60), "triggerReason": "Authorized",
                     **({"reservationId": 300 + n} if kind != "Ended" else {}),  # Updated repeats it
                     "seqNo": i, "transactionInfo": {"transactionId": tx, **({"stoppedReason": "StoppedByEV"}
                     if kind == "Ended" else {})}, "evse": {"id": 1, "connectorId": 1},
                     "idToken": {"idToken": f"TOK{n}", "type": "ISO14443"},
                     "meterValue": [{"timestamp": self.at(t + 10 + i * 60), "sampledValue": [{"value": wh,
                     "unitOfMeasure": {"unit": "kWh"}}]}]}  # fmt: skip
            out += self.call(station, c, p, "TransactionEvent", event, {}, t + 10 + i * 60)
        out.append(self.conn(station, c, p, "disconnected", t + 200, closeCode=1005))
        return out

    def traffic(self, stations: int) -> list[Message]:
        """Sessions of ``stations`` stations, half 1.6 and half 2.0.1, interleaved round-robin."""
        sessions = [
            self.session_16(f"S16.{n}", n, n * 0.5) if n % 2 == 0 else self.session_201(f"S201:{n}", n, n * 0.5)
            for n in range(stations)
        ]
        merged = [m for group in itertools.zip_longest(*sessions) for m in group if m is not None]
        return merged


def security_events(count: int) -> list[Message]:
    return [
        Message(
            subjects.security_event("auth_failed"),
            {subjects.H_STATION: f"S16.{i}", subjects.H_MSG_ID: f"sec:{i}"},
            json.dumps(
                {
                    "category": "auth_failed",
                    "station": f"S16.{i}",
                    "detail": "wrong password",
                    "at": f"2026-11-21T06:00:{i % 60:02d}Z",
                }
            ).encode(),
        )
        for i in range(count)
    ]


def command_events(stations: int) -> list[Message]:
    """The events of one command per station of :meth:`Script.traffic`: answered, refused by the
    station, or not answered in time; and one for a station that was offline."""
    out: list[Message] = []

    def event(station: str, command_id: str, status: str, second: int, **fields: Any) -> None:
        body = CommandEvent(command_id=command_id, station=station, action="Reset", status=status,  # type: ignore[arg-type]
                            at=f"2026-11-21T07:00:{second:02d}.000000Z", **fields)  # fmt: skip
        headers = {subjects.H_STATION: station, subjects.H_MSG_ID: f"cmd:{command_id}:{status}"}
        out.append(Message(subjects.command_event(station, status), headers, encode(body)))

    for n in range(stations):
        station = f"S16.{n}" if n % 2 == 0 else f"S201:{n}"
        cid, second = f"cmd-{n}", n % 50
        event(station, cid, "requested", second, command="reset", requested_by="admin", payload=RAW_RESET)
        event(station, cid, "sent", second, gateway="gw-1", protocol="ocpp1.6" if n % 2 == 0 else "ocpp2.0.1")
        if n % 3 == 0:
            event(station, cid, "answered", second + 1, response=RAW_ACCEPTED, duration_ms=12.5)
        elif n % 3 == 1:
            event(station, cid, "failed", second + 1, outcome="error", error_code="NotSupported",
                  error_description="no", error_details=RAW_DETAILS, duration_ms=8.0)  # fmt: skip
        else:
            event(station, cid, "timed_out", second + 5, timeout_s=5.0, duration_ms=5000.0)
    event("GONE", "cmd-offline", "requested", 0, payload=RAW_RESET)
    event("GONE", "cmd-offline", "failed", 0, outcome="offline", detail="no gateway holds GONE")
    return out


RAW_RESET = msgspec.Raw(b'{"type":"Hard"}')
RAW_ACCEPTED = msgspec.Raw(b'{"status":"Accepted"}')
RAW_DETAILS = msgspec.Raw(b'{"why":["x",1]}')


# --- telemetry ----------------------------------------------------------------------------------

T0 = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="microseconds").replace("+00:00", "Z")


_readings = itertools.count()


def reading(source: str, device: str, t: float, **fields: Any) -> Message:
    """A reading as the MQTT gateway publishes it: the device's whole state after a message at
    ``t`` seconds after :data:`T0` (``changed`` is not what the fold reads; it is left empty)."""
    fields.setdefault("changed", [])
    fields.setdefault("kind", "evse")
    fields.setdefault("raw_topic", f"{source}/{device}")  # None: a reading the gateway writes itself
    body = Reading(source=source, device=device, ts=at(t), **fields)
    headers = {subjects.H_MQTT_GATEWAY: "gw-1", subjects.H_MSG_ID: f"r:{next(_readings)}"}
    return Message(subjects.telemetry(source, device), headers, encode_reading(body))


def raw(topic: str, payload: bytes = b"1") -> Message:
    """A raw MQTT message (``telemetry.raw.mqtt.…``): stored beside the readings, never projected."""
    return Message(subjects.mqtt_raw(topic), {subjects.H_MSG_ID: f"raw:{next(_readings)}"}, payload)


def device_traffic(devices: int, evcc: str = "evcc", charger: str = "openevse") -> list[Message]:
    """``devices`` evcc loadpoints (``{evcc}.lp{n}``) and as many charging-only devices
    (``{charger}.oe{n}``, no ``connected``), interleaved round-robin, each with a raw message before
    every reading, as the gateway stores them:

    - evcc: online and unplugged; plugged in (session 1), charging with a rising counter, unplugged
      with its session energy; evcc's restart burst (every value erased: NULL, not 0); the gateway
      restarts and the broker replays retained values (``title`` only first, then ``connected``:
      opens nothing); plugged in again, live (session 2, still active).
    - charging-only: charges (session 1) and stops; charges again (session 2, active). Device 0
      also publishes one body that is not a reading.
    """
    lanes = []
    for n in range(devices):
        lp, oe, e0 = f"lp{n}", f"oe{n}", 10_000.0 * (n + 1)
        base = {"online": True, "last_seen_at": at(0), "title": f"Garage {n}", "mode": "pv"}
        loadpoint = [
            reading(evcc, lp, 0, connected=False, charging=False, energy_wh=e0, **base),
            reading(evcc, lp, 60, connected=True, charging=False, energy_wh=e0, session_energy_wh=0, **base),
            reading(evcc, lp, 61, connected=True, charging=True, power_w=7200.5, currents_a=[10.5, 10.5, 10.5],
                    voltages_v=[230.1, 229.9, None], energy_wh=e0 + 100, session_energy_wh=100, soc_pct=40, **base),
            reading(evcc, lp, 1861, connected=True, charging=True, power_w=7000, energy_wh=e0 + 3600,
                    session_energy_wh=3600, soc_pct=70, **base),
            reading(evcc, lp, 1900, connected=False, charging=False, power_w=0, energy_wh=e0 + 3700,
                    session_energy_wh=3650, soc_pct=71, **base),
            # evcc restarts: its cleanup erases every value (the gateway's reading leaves them out)
            reading(evcc, lp, 2000, online=True, last_seen_at=at(2000)),
            # the gateway restarts: replayed retained values, the title first, then the plug
            reading(evcc, lp, 2100, retained=True, title=f"Garage {n}"),
            reading(evcc, lp, 2100.1, retained=True, title=f"Garage {n}", connected=True, energy_wh=e0 + 3700),
            reading(evcc, lp, 2200, connected=True, charging=True, power_w=3600, energy_wh=e0 + 3800,
                    session_energy_wh=100, online=True, last_seen_at=at(2200), title=f"Garage {n}"),
        ]  # fmt: skip
        charging_only = [
            reading(charger, oe, 10, charging=False, energy_wh=e0, online=True),
            reading(charger, oe, 20, charging=True, power_w=3000, energy_wh=e0, online=True),
            reading(charger, oe, 920, charging=True, power_w=3000, energy_wh=e0 + 750, online=True),
            reading(charger, oe, 930, charging=False, power_w=0, energy_wh=e0 + 760, online=True),
            reading(charger, oe, 1000, charging=True, power_w=1000, online=True),  # no counter yet
            reading(charger, oe, 1100, charging=True, power_w=1000, energy_wh=e0 + 800, online=True),
        ]
        lane = []
        for m in [*loadpoint, *charging_only]:
            lane += [raw(f"{m.subject.split('.')[1]}/{m.subject.split('.')[2]}/x"), m]
        if n == 0:
            lane.append(Message(subjects.telemetry(charger, oe), {}, b"not a reading"))
        lanes.append(lane)
    return [m for group in itertools.zip_longest(*lanes) for m in group if m is not None]


def project(con: duckdb.DuckDBPyConnection, messages: list[Message], batch_size: int) -> None:
    """Fold ``messages`` into ``con`` as the runner would, ``batch_size`` at a time (each stream
    numbered from 1 in the order given), without a server. Raw MQTT messages take a TELEMETRY
    sequence but are not folded: the runner's filter (``telemetry.*.*``) never delivers them."""
    seqs = {"OCPP": 0, "EVENTS": 0, "TELEMETRY": 0}
    batch = Batch()
    for i, m in enumerate(messages):
        stream_ns = 1_795_000_000_000_000_000 + i * 1000
        if m.subject.startswith("events."):
            seqs["EVENTS"] += 1
            batch.add_event(seqs["EVENTS"], stream_ns, m.subject, m.headers, m.data)
        elif m.subject.startswith("telemetry."):
            seqs["TELEMETRY"] += 1
            if m.subject.count(".") == 2:
                batch.add_reading(seqs["TELEMETRY"], stream_ns, m.subject, m.headers, m.data)
        else:
            seqs["OCPP"] += 1
            batch.add_ocpp(seqs["OCPP"], stream_ns, m.subject, m.headers, m.data)
        if batch.size >= batch_size:
            fold.apply(con, batch)
            batch = Batch()
    if batch.size:
        fold.apply(con, batch)


async def publish(js: JetStreamContext, messages: list[Message]) -> None:
    """Publish pipelined (publish_async) and wait for every ack."""
    futures = [await js.publish_async(m.subject, m.data, headers=m.headers) for m in messages]
    for future in futures:
        await future
