"""ReserveNow and CancelReservation as every version's station handles them, once the version's
payload was read (1.6 ``connectorId``/``idTag``, 2.x ``evseId``/``idToken``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evbus.sim.device import Connector, Device, Reservation
from evbus.sim.effects import Effect, ExpireReservation, Reply, SendStatus


def place(device: Device, c: Connector, reservation_id: int, id_tag: str, expires: float) -> Reply:
    """Reserve ``c`` (an operative connector) until ``expires``; the same id held elsewhere moves here."""
    if c.busy or (c.reservation is not None and c.reservation.id != reservation_id):
        return Reply({"status": "Occupied"})
    effects: list[Effect] = []
    previous = device.reservation(reservation_id)
    if previous is not None and previous is not c:
        previous.reservation = None
        effects.append(SendStatus(previous.id))
    c.reservation = Reservation(reservation_id, id_tag, expires)
    effects += [SendStatus(c.id), ExpireReservation(reservation_id, expires)]
    return Reply({"status": "Accepted"}, tuple(effects))


def cancel_reservation(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    c = device.reservation(payload["reservationId"])
    if c is None:
        return Reply({"status": "Rejected"})
    c.reservation = None
    return Reply({"status": "Accepted"}, (SendStatus(c.id),))
