"""The stations' side of OCPP-J: timestamps, frames, and the pre-encoded CALLs of roundtrip mode."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from schemas.ocpp_j import Protocol

encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder().decode


def timestamp(moment: datetime | None = None) -> str:
    """``2026-11-21T09:40:00.123Z``: what the stations write into their payloads."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def call_frame(unique_id: str, action: str, payload: dict[str, Any]) -> str:
    return encode([2, unique_id, action, payload]).decode()


class SecondClock:
    """The current UTC time as text, recomputed once per second (the hot path reads it per frame)."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def text(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._text


ROUNDTRIP_ACTIONS: Final = ("Heartbeat", "StatusNotification", "MeterValues")


class RoundTripFrames:
    """Heartbeat, StatusNotification (connector 1) and MeterValues (connector 1, one sampled value),
    encoded once per second; a frame is then two string concatenations around a fresh unique id."""

    __slots__ = ("_bodies", "_clock", "_protocol", "_register", "_second")

    def __init__(self, protocol: Protocol, clock: SecondClock, register_wh: int) -> None:
        self._protocol = protocol
        self._clock = clock
        self._register = register_wh
        self._second = ""
        self._bodies: tuple[str, str, str] = ("", "", "")

    def frame(self, turn: int, unique_id: str) -> str:
        now = self._clock.text()
        if now != self._second:
            self._second = now
            self._bodies = self._encode(now)
        return '[2,"' + unique_id + '",' + self._bodies[turn % 3]

    def _encode(self, now: str) -> tuple[str, str, str]:
        if self._protocol == "ocpp1.6":
            status: dict[str, Any] = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
            meter: dict[str, Any] = {
                "connectorId": 1,
                "meterValue": [{"timestamp": now, "sampledValue": [{"value": str(self._register)}]}],
            }
        else:
            status = {"timestamp": now, "connectorStatus": "Available", "evseId": 1, "connectorId": 1}
            meter = {"evseId": 1, "meterValue": [{"timestamp": now, "sampledValue": [{"value": self._register}]}]}
        payloads: tuple[dict[str, Any], ...] = ({}, status, meter)
        return tuple(  # type: ignore[return-value]
            encode([action, payload]).decode()[1:] for action, payload in zip(ROUNDTRIP_ACTIONS, payloads, strict=True)
        )
