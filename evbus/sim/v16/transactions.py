"""1.6 RemoteStart/RemoteStopTransaction and ReserveNow (CancelReservation: evbus.sim.reservations)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evbus.clock import parse_rfc3339
from evbus.sim import reservations
from evbus.sim.device import Device, StartRequest
from evbus.sim.effects import Reply, Start, Stop


def remote_start_transaction(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    id_tag = payload["idTag"]
    number = payload.get("connectorId")
    c = device.free_connector(id_tag) if number is None else device.connectors.get(number)
    if c is None or not c.operative or c.busy or (c.reservation is not None and c.reservation.id_tag != id_tag):
        return Reply({"status": "Rejected"})
    c.start_request = StartRequest(id_tag, charging_profile=payload.get("chargingProfile"))
    return Reply({"status": "Accepted"}, (Start(c.id),))


def remote_stop_transaction(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    c = device.transaction(payload["transactionId"])
    if c is None:
        return Reply({"status": "Rejected"})
    c.stop_reason = "Remote"
    return Reply({"status": "Accepted"}, (Stop(c.id),))


def reserve_now(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    c = device.connectors.get(payload["connectorId"])  # connector 0: ReserveConnectorZeroSupported is false
    try:
        expires = parse_rfc3339(payload["expiryDate"]).timestamp()
    except ValueError:
        return Reply({"status": "Rejected"})
    if c is None:
        return Reply({"status": "Rejected"})
    if not c.operative:
        return Reply({"status": "Unavailable"})
    return reservations.place(device, c, payload["reservationId"], payload["idTag"], expires)
