"""What answering a CSMS CALL makes the station do afterwards, as plain values.

A command handler returns a :class:`Reply`: the CALLRESULT payload and the effects the station
carries out once that CALLRESULT is on the wire (a triggered message follows its acceptance,
never precedes it). Handlers stay testable without a socket.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from evbus.sim.device import Device


class SendStatus(NamedTuple):
    """StatusNotification of one connector/EVSE, or of all (``connector=None``)."""

    connector: int | None = None


class Start(NamedTuple):
    """Start the transaction the connector's ``start_request`` describes."""

    connector: int


class Stop(NamedTuple):
    """End the transaction running on a connector (its ``stop_reason`` is set)."""

    connector: int


class Reboot(NamedTuple):
    """End transactions, close the socket, reconnect and boot again."""

    reason: str  # 1.6 StopTransaction reason / 2.x stoppedReason of open transactions


class Send(NamedTuple):
    """A CALL of ours, after ``delay`` seconds (firmware and log status notifications, reports)."""

    action: str
    payload: dict[str, Any]
    delay: float = 0.0


class Trigger(NamedTuple):
    """TriggerMessage: send ``message`` built from the station's state at send time."""

    message: str
    connector: int | None = None


class Reschedule(NamedTuple):
    """The heartbeat or meter-value interval changed."""


class ExpireReservation(NamedTuple):
    reservation_id: int
    at: float  # time.time()


Effect = SendStatus | Start | Stop | Reboot | Send | Trigger | Reschedule | ExpireReservation


class Reply(NamedTuple):
    payload: dict[str, Any]
    effects: tuple[Effect, ...] = ()


def status_info(reason: str, detail: str = "") -> dict[str, Any]:
    """2.x ``statusInfo`` (reasonCode at most 20 characters)."""
    info: dict[str, Any] = {"reasonCode": reason[:20]}
    if detail:
        info["additionalInfo"] = detail[:512]
    return info


Handler = Callable[["Device", dict[str, Any], datetime], Reply]
"""Answer one CSMS CALL: read and update the device, return the payload and what follows."""
