"""2.0.1/2.1 RequestStart/RequestStopTransaction and ReserveNow (CancelReservation: evbus.sim.reservations)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from evbus.clock import parse_rfc3339
from evbus.sim import reservations
from evbus.sim.device import Device, StartRequest
from evbus.sim.effects import Reply, Start, Stop, status_info


def request_start_transaction(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    token = payload["idToken"]
    number = payload.get("evseId")
    c = device.free_connector(token["idToken"]) if number is None else device.connectors.get(number)
    if c is None or not c.operative or c.busy:
        return Reply({"status": "Rejected", "statusInfo": status_info("NoFreeEvse")})
    if c.reservation is not None and c.reservation.id_tag != token["idToken"]:
        return Reply({"status": "Rejected", "statusInfo": status_info("Reserved")})
    c.start_request = StartRequest(
        token["idToken"], token["type"], payload["remoteStartId"], payload.get("chargingProfile")
    )
    return Reply({"status": "Accepted"}, (Start(c.id),))


def request_stop_transaction(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    c = device.transaction(payload["transactionId"])
    if c is None:
        return Reply({"status": "Rejected", "statusInfo": status_info("TxNotFound")})
    c.stop_reason = "Remote"
    return Reply({"status": "Accepted"}, (Stop(c.id),))


def reserve_now(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    token = payload["idToken"]["idToken"]
    number = payload.get("evseId")
    try:
        expires = parse_rfc3339(payload["expiryDateTime"]).timestamp()
    except ValueError:
        return Reply({"status": "Rejected", "statusInfo": status_info("BadExpiry")})
    c = device.free_connector() if number is None else device.connectors.get(number)
    if c is None:
        return Reply({"status": "Occupied" if number is None else "Rejected"})
    if not c.operative:
        return Reply({"status": "Unavailable"})
    return reservations.place(device, c, payload["id"], token, expires)


def new_transaction_id() -> str:
    return str(uuid.uuid4())
