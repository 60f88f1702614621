"""What a simulated station knows about itself: connectors, transactions, and the stores the CSMS
can read and change (configuration keys or device-model variables, local list, reservations,
charging profiles, certificates, display messages, monitors).

Command handlers read and update a :class:`Device`; the station's behaviour reads it to decide
what to send. Everything runs on one event loop, so there is no locking.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from evbus.sim.charging import Charge
from evbus.sim.config import CONNECTORS
from evbus.sim.keys16 import KeyStore
from evbus.sim.variables import DeviceModel
from schemas.ocpp_j import Protocol

Phase = Literal["idle", "preparing", "charging", "finishing"]


@dataclass(slots=True)
class StartRequest:
    """A transaction the CSMS asked for (RemoteStartTransaction / RequestStartTransaction)."""

    id_tag: str
    token_type: str = "ISO14443"  # noqa: S105 - an IdTokenEnumType value, not a secret
    remote_start_id: int | None = None
    charging_profile: dict[str, Any] | None = None


@dataclass(slots=True)
class Transaction:
    ocpp_id: int | str | None  # 2.x: the id we chose; 1.6: the CSMS's, None until StartTransaction is answered
    connector: int
    id_tag: str
    token_type: str
    meter_start_wh: float
    remote_start_id: int | None = None
    reservation_id: int | None = None
    seq_no: int = 0  # 2.x TransactionEvent sequence
    charge: Charge | None = None  # the car, once it draws power


@dataclass(slots=True)
class Reservation:
    id: int
    id_tag: str
    expires_at: float  # time.time()


@dataclass(slots=True)
class Connector:
    id: int  # 1.6 connectorId; 2.x evseId (each EVSE has one connector, id 1)
    register_wh: float
    phase: Phase = "idle"
    operative: bool = True
    inoperative_when_idle: bool = False  # ChangeAvailability answered Scheduled
    transaction: Transaction | None = None
    reservation: Reservation | None = None
    start_request: StartRequest | None = None
    stop_reason: str | None = None  # set to end the running transaction

    @property
    def status(self) -> str:
        """The 1.6 ChargePointStatus; :func:`connector_status` maps it for 2.x."""
        if self.phase == "charging":
            return "Charging"
        if self.phase == "preparing":
            return "Preparing"
        if self.phase == "finishing":
            return "Finishing"
        if not self.operative:
            return "Unavailable"
        if self.reservation is not None:
            return "Reserved"
        return "Available"

    @property
    def busy(self) -> bool:
        return self.phase != "idle" or self.start_request is not None


class Reading(NamedTuple):
    """One measured value, before a version writes it as a sampledValue."""

    value: float
    measurand: str
    unit: str
    phase: str | None = None
    location: str | None = None


def readings(c: Connector, rng: random.Random | None, *, soc: bool = False) -> list[Reading]:
    """The energy register; with ``rng``, while charging, also power, per-phase current and voltage
    (and the EV's state of charge if ``soc``)."""
    values = [Reading(round(c.register_wh), "Energy.Active.Import.Register", "Wh")]
    charge = c.transaction.charge if c.transaction else None
    if rng is not None and charge is not None and c.phase == "charging":
        volts = charge.volts(rng)
        values.append(Reading(round(charge.power_w), "Power.Active.Import", "W"))
        for n, (v, a) in enumerate(zip(volts, charge.amps(volts), strict=True), 1):
            values.append(Reading(a, "Current.Import", "A", f"L{n}"))
            values.append(Reading(v, "Voltage", "V", f"L{n}-N"))
        if soc:
            values.append(Reading(round(charge.soc), "SoC", "Percent", location="EV"))
    return values


def connector_status(status: str) -> str:
    """A 1.6 status as a 2.x ConnectorStatusEnumType."""
    return "Occupied" if status in ("Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing") else status


@dataclass(slots=True)
class Device:
    protocol: Protocol
    station_id: str
    serial: str
    register_wh: list[float]  # the energy register of each connector at start
    connectors: dict[int, Connector] = field(init=False)
    keys: KeyStore = field(init=False)  # 1.6
    variables: DeviceModel = field(init=False)  # 2.x
    local_list_version: int = 0
    local_list: dict[str, Any] = field(default_factory=dict)
    profiles: dict[int, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # id -> (connector/evse, profile)
    certificates: list[dict[str, Any]] = field(default_factory=list)  # {certificateType, hash}
    display_messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    monitors: dict[int, dict[str, Any]] = field(default_factory=dict)
    default_tariffs: dict[int, dict[str, Any]] = field(default_factory=dict)  # 2.1: evseId -> tariff
    published_firmware: str | None = None  # 2.x PublishFirmware checksum
    reset_when_idle: bool = False  # 2.x Reset OnIdle answered Scheduled
    meter_period: float = 5.0  # seconds between periodic meter values in a transaction (0 = none)
    next_request_id: int = 1

    def __post_init__(self) -> None:
        self.connectors = {n: Connector(n, self.register_wh[n - 1]) for n in range(1, CONNECTORS + 1)}
        self.keys = KeyStore()
        self.variables = DeviceModel(self.station_id, self.serial, CONNECTORS)

    @property
    def v16(self) -> bool:
        return self.protocol == "ocpp1.6"

    @property
    def heartbeat_interval(self) -> float:
        value = (
            self.keys.integer("HeartbeatInterval")
            if self.v16
            else self.variables.integer("OCPPCommCtrlr", "HeartbeatInterval")
        )
        return float(value)

    def set_heartbeat_interval(self, seconds: int) -> None:
        if self.v16:
            self.keys.put("HeartbeatInterval", str(seconds))
        else:
            self.variables.put("OCPPCommCtrlr", "HeartbeatInterval", str(seconds))

    def set_meter_period(self, seconds: float) -> None:
        """Seconds between periodic meter values of a transaction (0 = none), also shown in the
        configuration (1.6 MeterValueSampleInterval, 2.x SampledDataCtrlr.TxUpdatedInterval)."""
        self.meter_period = seconds
        text = str(max(1, round(seconds))) if seconds > 0 else "0"
        if self.v16:
            self.keys.put("MeterValueSampleInterval", text)
        else:
            self.variables.put("SampledDataCtrlr", "TxUpdatedInterval", text)

    def connector(self, number: int | None) -> Connector | None:
        return None if number is None else self.connectors.get(number)

    def transaction(self, ocpp_id: object) -> Connector | None:
        """The connector running the transaction the CSMS calls ``ocpp_id``."""
        for c in self.connectors.values():
            if c.transaction is not None and c.transaction.ocpp_id == ocpp_id:
                return c
        return None

    def free_connector(self, id_tag: str | None = None) -> Connector | None:
        """The first operative connector that is not busy (reserved for ``id_tag`` or not reserved)."""
        for c in self.connectors.values():
            if c.operative and not c.busy and (c.reservation is None or c.reservation.id_tag == id_tag):
                return c
        return None

    def reservation(self, reservation_id: int) -> Connector | None:
        for c in self.connectors.values():
            if c.reservation is not None and c.reservation.id == reservation_id:
                return c
        return None

    def request_id(self) -> int:
        self.next_request_id += 1
        return self.next_request_id
