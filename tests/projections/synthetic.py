"""A synthetic but realistic OCPP/EVENTS stream, published with the gateway's and processor's
headers: connections, boots, statuses, 1.6 and 2.0.1 transactions with meter values, a CALLERROR,
a malformed frame, a station retrying a CALL, security events."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.js import JetStreamContext

from schemas import subjects


@dataclass
class Message:
    subject: str
    headers: dict[str, str]
    data: bytes


@dataclass
class Script:
    """Builds the messages of many stations' sessions, interleaved like real traffic."""

    t0: datetime = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
    ids: Iterator[int] = field(default_factory=itertools.count)

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

    def session_16(self, station: str, n: int, t: float) -> list[Message]:
        c, p, tx = f"{station}-c", "ocpp1.6", 1000 + n
        out = [self.conn(station, c, p, "connected", t)]
        out += self.call(station, c, p, "BootNotification", {"chargePointVendor": "V", "chargePointModel": f"M{n % 3}"},
                         {"status": "Accepted", "interval": 300, "currentTime": self.at(t)}, t + 0.1)  # fmt: skip
        out += self.call(station, c, p, "StatusNotification", {"connectorId": 1, "errorCode": "NoError",
                         "status": "Preparing"}, {}, t + 1)  # fmt: skip
        start = {"connectorId": 1, "idTag": f"TAG{n}", "meterStart": 1000 * n, "timestamp": self.at(t + 2)}
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
        for i, (kind, wh) in enumerate((("Started", 2.0), ("Updated", 3.5), ("Ended", 4.0))):
            event = {"eventType": kind, "timestamp": self.at(t + 10 + i * 60), "triggerReason": "Authorized",
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


async def publish(js: JetStreamContext, messages: list[Message]) -> None:
    """Publish pipelined (publish_async) and wait for every ack."""
    futures = [await js.publish_async(m.subject, m.data, headers=m.headers) for m in messages]
    for future in futures:
        await future
