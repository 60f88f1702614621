"""A realistic synthetic OCPP + EVENTS stream, generated in memory, for the projection benchmarks.

Each station is a generator of what its gateway and the CSMS would publish, in time order:
``connected`` events, BootNotification, Heartbeat (every interval), StatusNotification, charging
sessions (1.6: StartTransaction / MeterValues / StopTransaction; 2.0.1: TransactionEvent
Started / Updated / Ended), each CALL answered by the CSMS with a CALLRESULT (a few with a
CALLERROR), now and then a CSMS-initiated CALL answered by the station, a frame that is not OCPP-J
(``_invalid`` + the gateway's CALLERROR + a ``bad_frame`` security event), disconnects (some never
published: a gateway that died) and reconnects. All stations are merged by time into one OCPP
stream with sequence numbers; EVENTS messages get their own sequence.

Frames carry exactly the headers the gateway and the CSMS write (:func:`schemas.subjects.frame_headers`).
The generator is seeded: the same arguments give the same stream.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from schemas import subjects

T0: Final = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
T0_US: Final = int(T0.timestamp() * 1_000_000)
HEARTBEAT_S: Final = 300
GATEWAYS: Final = ("gw-a1b2c3", "gw-d4e5f6")

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Message:
    """One stored message, as the projection runner gets it from JetStream."""

    stream: str  # OCPP | EVENTS
    seq: int
    stream_ns: int
    subject: str
    headers: dict[str, str]
    data: bytes


def iso(t_us: int) -> str:
    """Gateway clock format (:func:`evbus.clock.rfc3339`): microseconds and a ``Z``."""
    return (T0 + timedelta(microseconds=t_us - T0_US)).isoformat(timespec="microseconds").replace("+00:00", "Z")


def iso_ms(t_us: int) -> str:
    """What stations send: milliseconds and a ``Z``."""
    return iso(t_us)[:23] + "Z"


def uid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


# (time in µs, stream, subject, headers, body)
Item = tuple[int, str, str, dict[str, str], bytes]


class Station:
    """One charge point and everything published about it."""

    def __init__(self, index: int, rng: random.Random, counters: dict[str, int]) -> None:
        self.rng = rng
        self.counters = counters
        self.index = index
        self.protocol = "ocpp2.0.1" if index % 10 < 3 else "ocpp1.6"  # 30 % 2.0.1
        self.v16 = self.protocol == "ocpp1.6"
        self.name = f"{'CP16' if self.v16 else 'CS201'}-{index:05d}"
        self.gateway = GATEWAYS[index % len(GATEWAYS)]
        self.connectors = 2 if index % 3 == 0 else 1
        self.register = [0.0] + [rng.uniform(1e5, 5e6) for _ in range(self.connectors)]  # Wh per connector
        self.address = f"10.{index // 250 % 250}.{index % 250}.{rng.randint(2, 250)}"
        self.vendor, self.model = rng.choice(
            [("ABB", "Terra AC"), ("Alfen", "Eve Single"), ("Wallbox", "Pulsar Plus"), ("Kempower", "S-Series")]
        )
        self.firmware = rng.choice(["1.8.2", "4.11.0", "5.2.1"])
        self.t = T0_US + rng.randint(0, 300_000_000)  # stations come up within 5 minutes
        self.out: list[Item] = []
        self.connection = ""
        self.frames = 0

    # --- publishing ------------------------------------------------------------------------------

    def _frame(
        self, t: int, direction: subjects.Direction, kind: str, action: str, unique_id: str, body: bytes, at: str = ""
    ) -> None:
        if direction == "in" or kind == "CALL":
            self.frames += 1
            msg_id = f"{self.gateway}:{self.connection}:{self.frames}"
        else:
            msg_id = f"csms:{unique_id}"
        headers = subjects.frame_headers(
            station=self.name,
            direction=direction,
            kind=kind,
            action=action,
            unique_id=unique_id,
            protocol=self.protocol,
            msg_id=msg_id,
            received_at=at or iso(t),
            gateway=self.gateway,
            connection=self.connection,
        )
        subject = (
            subjects.ocpp_invalid(self.name, direction)
            if action == subjects.INVALID
            else subjects.ocpp_frame(self.name, direction, action)
        )
        self.out.append((t, "OCPP", subject, headers, body))

    def call(self, action: str, payload: dict[str, Any], answer: dict[str, Any] | None = None) -> dict[str, Any]:
        """The station's CALL and the CSMS's CALLRESULT (a few CALLERRORs); time moves on."""
        rng = self.rng
        unique_id = uid(rng)
        self._frame(self.t, "in", "CALL", action, unique_id, _encode([2, unique_id, action, payload]))
        self.t += rng.randint(2_000, 40_000) if rng.random() < 0.97 else rng.randint(40_000, 900_000)
        if rng.random() < 0.003:
            code = "FormationViolation" if self.v16 else "FormatViolation"
            frame = [4, unique_id, code, "payload does not match the schema", {}]
            self._frame(self.t, "out", "CALLERROR", action, unique_id, _encode(frame))
        else:
            answer = {} if answer is None else answer
            self._frame(self.t, "out", "CALLRESULT", action, unique_id, _encode([3, unique_id, answer]))
        self.t += rng.randint(5_000, 200_000)
        return answer or {}

    def csms_call(self) -> None:
        """A command from the CSMS, answered by the station."""
        rng = self.rng
        unique_id = uid(rng)
        action, payload, answer = rng.choice(
            [
                ("TriggerMessage", {"requestedMessage": "StatusNotification"}, {"status": "Accepted"}),
                (
                    "GetConfiguration" if self.v16 else "GetVariables",
                    {} if self.v16 else {"getVariableData": [{"component": {"name": "OCPPCommCtrlr"}}]},
                    {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]}
                    if self.v16
                    else {"getVariableResult": [{"attributeStatus": "Accepted"}]},
                ),
                ("ChangeAvailability", {"connectorId": 0, "type": "Operative"}, {"status": "Accepted"}),
            ]
        )
        self._frame(self.t, "out", "CALL", action, unique_id, _encode([2, unique_id, action, payload]))
        self.t += rng.randint(30_000, 800_000)
        if rng.random() < 0.02:  # the station does not know it
            frame = [4, unique_id, "NotImplemented", "", {}]
            self._frame(self.t, "in", "CALLERROR", action, unique_id, _encode(frame))
        else:
            self._frame(self.t, "in", "CALLRESULT", action, unique_id, _encode([3, unique_id, answer]))
        self.t += rng.randint(5_000, 100_000)

    def invalid(self) -> None:
        """A frame that is not OCPP-J: stored as _invalid, answered by the gateway, reported."""
        rng = self.rng
        unique_id = uid(rng)
        body = rng.choice([b'[2,"' + unique_id.encode() + b'","Heartbeat"', b"hello", b'{"not":"a frame"}'])
        reason = "frame is not a JSON array"
        self._frame(self.t, "in", "INVALID", subjects.INVALID, unique_id, body)
        headers = self.out[-1][3]
        headers[subjects.H_ERROR] = reason
        self.t += rng.randint(200, 2_000)
        code = "FormationViolation" if self.v16 else "RpcFrameworkError"
        self._frame(self.t, "out", "CALLERROR", subjects.INVALID, unique_id, _encode([4, "-1", code, reason, {}]))
        self._event("events.security.bad_frame", {"category": "bad_frame", "detail": reason})

    def _event(self, subject: str, body: dict[str, Any], station: bool = True) -> None:
        body = {
            **body,
            "severity": body.get("severity", "warning"),
            "station": self.name,
            "remoteAddress": f"{self.address}:{self.rng.randint(1024, 65535)}",
            "gateway": self.gateway,
            "at": iso(self.t),
        }
        headers = {subjects.H_MSG_ID: f"{self.gateway}:{self.rng.getrandbits(64):016x}"}
        if station:
            headers[subjects.H_STATION] = self.name
        self.out.append((self.t, "EVENTS", subject, headers, _encode(body)))

    def conn(self, event: str, **body: Any) -> None:
        headers = {
            subjects.H_STATION: self.name,
            subjects.H_GATEWAY: self.gateway,
            subjects.H_RECEIVED_AT: iso(self.t),
            subjects.H_PROTOCOL: self.protocol,
        }
        if event == "connected":
            self.frames = 0
        self.frames += 1
        headers[subjects.H_MSG_ID] = f"{self.gateway}:{self.connection}:{self.frames}"
        payload = {
            "event": event,
            "remoteAddress": f"{self.address}:{self.rng.randint(1024, 65535)}",
            "protocol": self.protocol,
            **body,
            "connection": self.connection,
        }
        self.out.append((self.t, "OCPP", subjects.ocpp_conn(self.name, event), headers, _encode(payload)))

    # --- behaviour -------------------------------------------------------------------------------

    def boot(self) -> None:
        if self.v16:
            payload: dict[str, Any] = {
                "chargePointVendor": self.vendor,
                "chargePointModel": self.model,
                "chargePointSerialNumber": f"SN-{self.index:06d}",
                "firmwareVersion": self.firmware,
            }
        else:
            payload = {
                "chargingStation": {
                    "model": self.model,
                    "vendorName": self.vendor,
                    "serialNumber": f"SN-{self.index:06d}",
                    "firmwareVersion": self.firmware,
                },
                "reason": "PowerUp",
            }
        self.call(
            "BootNotification", payload, {"currentTime": iso_ms(self.t), "interval": HEARTBEAT_S, "status": "Accepted"}
        )

    def heartbeat(self) -> None:
        self.call("Heartbeat", {}, {"currentTime": iso_ms(self.t)})

    def status(self, connector: int, status: str) -> None:
        if self.v16:
            payload: dict[str, Any] = {"connectorId": connector, "errorCode": "NoError", "status": status}
            if self.rng.random() < 0.5:
                payload["timestamp"] = iso_ms(self.t)
        else:
            status = {"Preparing": "Occupied", "Charging": "Occupied", "Finishing": "Occupied"}.get(status, status)
            if connector == 0:
                return  # 2.0.1 reports EVSE connectors only
            payload = {"timestamp": iso_ms(self.t), "connectorStatus": status, "evseId": connector, "connectorId": 1}
        self.call("StatusNotification", payload)

    def sampled(self, connector: int, power_w: float) -> list[dict[str, Any]]:
        wh = round(self.register[connector], 1)
        if self.v16:
            return [
                {
                    "value": f"{wh:.1f}",
                    "context": "Sample.Periodic",
                    "measurand": "Energy.Active.Import.Register",
                    "location": "Outlet",
                    "unit": "Wh",
                },
                {"value": f"{power_w:.0f}", "measurand": "Power.Active.Import", "unit": "W"},
                {"value": f"{power_w / 690:.1f}", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
            ]
        return [
            {
                "value": round(wh / 1000, 4),
                "measurand": "Energy.Active.Import.Register",
                "unitOfMeasure": {"unit": "kWh"},
            },
            {"value": round(power_w), "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
        ]

    def session(self, until: int) -> None:
        """One charging session on a random connector, MeterValues every minute."""
        rng = self.rng
        connector = rng.randint(1, self.connectors)
        tag = f"TAG-{rng.randint(0, 4999):05d}"
        power = rng.choice([3_700.0, 7_400.0, 11_000.0, 22_000.0])
        minutes = max(5, min(int(rng.expovariate(1 / 50)), 240))
        self.status(connector, "Preparing")
        next_hb = self.t + HEARTBEAT_S * 1_000_000
        if self.v16:
            started = self.call(
                "StartTransaction",
                {
                    "connectorId": connector,
                    "idTag": tag,
                    "meterStart": int(self.register[connector]),
                    "timestamp": iso_ms(self.t),
                },
                {"idTagInfo": {"status": "Accepted"}, "transactionId": self._next("tx")},
            )
            tx: int | str | None = started.get("transactionId")
            self.status(connector, "Charging")
        else:
            tx = uid(rng)
            self._tx_event("Started", tx, connector, 0, power, tag)
        seq_no = 1
        for _ in range(minutes):
            start = self.t
            self.t = start + 60_000_000
            if self.t >= next_hb:
                self.heartbeat()
                next_hb = self.t + HEARTBEAT_S * 1_000_000
            self.register[connector] += power / 60
            if self.v16:
                meter = [{"timestamp": iso_ms(self.t), "sampledValue": self.sampled(connector, power)}]
                self.call("MeterValues", {"connectorId": connector, "transactionId": tx, "meterValue": meter})
            else:
                self._tx_event("Updated", tx, connector, seq_no, power)
                seq_no += 1
            if self.t > until + 3_600_000_000:
                break
        reason = rng.choice(["EVDisconnected", "Local", "Remote", "EVDisconnected"])
        if self.v16:
            self.call(
                "StopTransaction",
                {
                    "meterStop": int(self.register[connector]),
                    "timestamp": iso_ms(self.t),
                    "transactionId": tx,
                    "reason": reason,
                    "idTag": tag,
                },
                {"idTagInfo": {"status": "Accepted"}},
            )
            self.status(connector, "Finishing")
        else:
            self._tx_event("Ended", tx, connector, seq_no, 0.0, stopped_reason=reason)
        self.status(connector, "Available")

    def _tx_event(
        self,
        kind: str,
        tx: int | str | None,
        connector: int,
        seq_no: int,
        power: float,
        tag: str = "",
        stopped_reason: str = "",
    ) -> None:
        info: dict[str, Any] = {"transactionId": tx}
        if stopped_reason:
            info["stoppedReason"] = stopped_reason
        payload: dict[str, Any] = {
            "eventType": kind,
            "timestamp": iso_ms(self.t),
            "triggerReason": {"Started": "CablePluggedIn", "Updated": "MeterValuePeriodic"}.get(kind, "EVDeparted"),
            "seqNo": seq_no,
            "transactionInfo": info,
            "evse": {"id": connector, "connectorId": 1},
            "meterValue": [{"timestamp": iso_ms(self.t), "sampledValue": self.sampled(connector, power)}],
        }
        if tag:
            payload["idToken"] = {"idToken": tag, "type": "ISO14443"}
        self.call("TransactionEvent", payload, {"idTokenInfo": {"status": "Accepted"}} if tag else {})

    def _next(self, name: str) -> int:
        self.counters[name] = self.counters.get(name, 0) + 1
        return self.counters[name]

    def run(self) -> Iterator[Item]:
        """Connections, one after the other, forever; yields what was published, in time order."""
        rng = self.rng
        while True:
            self.connection = f"{rng.getrandbits(48):012x}"
            self.conn("connected")
            self.boot()
            for connector in range(self.connectors + 1):
                self.status(connector, "Available")
            end = self.t + int(rng.expovariate(1 / (6 * 3600)) * 1_000_000) + 600_000_000
            next_hb = self.t + HEARTBEAT_S * 1_000_000
            next_session = self.t + int(rng.expovariate(1 / (40 * 60)) * 1_000_000)
            while self.t < end:
                yield from self._flush()
                if next_session <= next_hb:
                    self.t = max(self.t, next_session)
                    self.session(end)
                    next_session = self.t + int(rng.expovariate(1 / (40 * 60)) * 1_000_000)
                    next_hb = max(next_hb, self.t + 1_000_000)
                else:
                    self.t = max(self.t, next_hb)
                    self.heartbeat()
                    next_hb = self.t + HEARTBEAT_S * 1_000_000
                    roll = rng.random()
                    if roll < 0.004:
                        self.invalid()
                    elif roll < 0.012:
                        self.csms_call()
            if rng.random() < 0.95:  # else: the gateway died, nothing says the connection ended
                code = 1000 if rng.random() < 0.7 else 1006
                self.conn("disconnected", closeCode=code, reason="" if code == 1000 else "keepalive ping timeout")
            if rng.random() < 0.01:
                self._event(f"events.admin.{subjects.token(self.name)}.forget_connections", {})
            self.t += rng.randint(1_000_000, 120_000_000)
            yield from self._flush()

    def _flush(self) -> Iterator[Item]:
        out, self.out = self.out, []
        yield from out


def intruders(rng: random.Random) -> Iterator[Item]:
    """Connection attempts of unknown stations and failed logins: rejected + security events."""
    t = T0_US
    while True:
        t += int(rng.expovariate(1 / 20) * 1_000_000)  # one every 20 s
        name = f"UNKNOWN-{rng.randint(0, 500):04d}"
        category = rng.choice(["unknown_station", "auth_failed", "auth_failed"])
        remote = f"198.51.100.{rng.randint(1, 254)}:{rng.randint(1024, 65535)}"
        reason = "not registered" if category == "unknown_station" else "wrong password"
        gateway = GATEWAYS[rng.randint(0, 1)]
        conn_body = {"event": "rejected", "remoteAddress": remote, "reason": f"{category}: {reason}"}
        headers = {
            subjects.H_STATION: name,
            subjects.H_GATEWAY: gateway,
            subjects.H_RECEIVED_AT: iso(t),
            subjects.H_MSG_ID: f"{gateway}:{rng.getrandbits(64):016x}",
        }
        yield (t, "OCPP", subjects.ocpp_conn(name, "rejected"), headers, _encode(conn_body))
        event = {
            "category": category,
            "severity": "critical" if category == "auth_failed" and rng.random() < 0.1 else "warning",
            "station": name,
            "remoteAddress": remote,
            "gateway": gateway,
            "detail": reason,
            "at": iso(t),
        }
        sec_headers = {subjects.H_MSG_ID: f"{gateway}:{rng.getrandbits(64):016x}", subjects.H_STATION: name}
        yield (t, "EVENTS", subjects.security_event(category), sec_headers, _encode(event))


def stream(total: int, stations: int = 2000, seed: int = 1) -> list[Message]:
    """The first ``total`` messages (both streams together) of ``stations`` stations, in time order."""
    counters: dict[str, int] = {}
    sources: list[Iterator[Item]] = [
        Station(i, random.Random(seed * 1_000_003 + i), counters).run() for i in range(1, stations + 1)
    ]
    sources.append(intruders(random.Random(seed)))
    seqs = {"OCPP": 0, "EVENTS": 0}
    out: list[Message] = []
    for t, name, subject, headers, data in itertools.islice(heapq.merge(*sources, key=lambda item: item[0]), total):
        seqs[name] += 1
        out.append(Message(name, seqs[name], t * 1000 + 250_000, subject, headers, data))
    return out
