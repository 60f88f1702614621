"""``ocpp`` library charge points that answer every CSMS-initiated action, for command tests.

Built from tables: one dict per OCPP version, action → the keyword arguments (snake_case, the
``call_result`` dataclass's fields) of a schema-valid answer, or a callable that makes them from
the request. :func:`answering` adds an ``@on(action)`` handler per entry. Every instance records
what it was asked (``station.requests``: action and snake_case kwargs, as the library hands them
over) and what it answered (``station.answered``), and can be changed per instance:

- ``station.answers["Reset"] = {"status": "Rejected"}``: another answer;
- ``station.failing["Reset"] = GenericError(...)``: raise, so the library answers CALLERROR
  (an :class:`ocpp.exceptions.OCPPError` gives its own code, any other exception ``InternalError``);
- ``station.holding["Reset"] = asyncio.Event()``: wait for the event before answering (never, if
  nobody sets it). The library handles one incoming CALL at a time, so a held handler blocks every
  later CALL of that station: use a station of its own.

:class:`Charging16` and :class:`Charging201` also start and stop transactions when asked remotely.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201

Kwargs = dict[str, Any]
Answer = Kwargs | Callable[[Kwargs], Kwargs]

SCHEDULE_START = "2026-11-21T10:00:00Z"
CERTIFICATE_HASH = {
    "hash_algorithm": "SHA256",
    "issuer_name_hash": "aa",
    "issuer_key_hash": "bb",
    "serial_number": "01",
}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _get_variables(request: Kwargs) -> Kwargs:
    """2.0.1 GetVariables: every requested variable is known and 300."""
    results = [
        {
            "attribute_status": "Accepted",
            "component": d["component"],
            "variable": d["variable"],
            "attribute_value": "300",
        }
        for d in request["get_variable_data"]
    ]
    return {"get_variable_result": results}


def _set_variables(request: Kwargs) -> Kwargs:
    results = [
        {"attribute_status": "Accepted", "component": d["component"], "variable": d["variable"]}
        for d in request["set_variable_data"]
    ]
    return {"set_variable_result": results}


def _get_configuration(request: Kwargs) -> Kwargs:
    """1.6 GetConfiguration: HeartbeatInterval is known, every other key unknown."""
    known = {"HeartbeatInterval": "300"}
    keys = request.get("key") or list(known)
    found = [{"key": k, "readonly": False, "value": known[k]} for k in keys if k in known]
    unknown = [k for k in keys if k not in known]
    return {"configuration_key": found or None, "unknown_key": unknown or None}


V16_ANSWERS: Mapping[str, Answer] = {
    "CancelReservation": {"status": "Accepted"},
    "ChangeAvailability": {"status": "Accepted"},
    "ChangeConfiguration": {"status": "Accepted"},
    "ClearCache": {"status": "Accepted"},
    "ClearChargingProfile": {"status": "Accepted"},
    "DataTransfer": {"status": "Accepted", "data": "pong"},
    "GetCompositeSchedule": {
        "status": "Accepted",
        "connector_id": 1,
        "schedule_start": SCHEDULE_START,
        "charging_schedule": {
            "duration": 3600,
            "charging_rate_unit": "A",
            "charging_schedule_period": [{"start_period": 0, "limit": 16.0}],
        },
    },
    "GetConfiguration": _get_configuration,
    "GetDiagnostics": {"file_name": "diagnostics.zip"},
    "GetLocalListVersion": {"list_version": 3},
    "RemoteStartTransaction": {"status": "Accepted"},
    "RemoteStopTransaction": {"status": "Accepted"},
    "ReserveNow": {"status": "Accepted"},
    "Reset": {"status": "Accepted"},
    "SendLocalList": {"status": "Accepted"},
    "SetChargingProfile": {"status": "Accepted"},
    "TriggerMessage": {"status": "Accepted"},
    "UnlockConnector": {"status": "Unlocked"},
    "UpdateFirmware": {},
    # the 1.6 security extension
    "InstallCertificate": {"status": "Accepted"},
    "DeleteCertificate": {"status": "Accepted"},
    "GetInstalledCertificateIds": {"status": "Accepted", "certificate_hash_data": [CERTIFICATE_HASH]},
    "GetLog": {"status": "Accepted", "filename": "log.zip"},
    "ExtendedTriggerMessage": {"status": "Accepted"},
    "SignedUpdateFirmware": {"status": "Accepted"},
}

V201_ANSWERS: Mapping[str, Answer] = {
    "CancelReservation": {"status": "Accepted"},
    "ChangeAvailability": {"status": "Accepted"},
    "ClearCache": {"status": "Accepted"},
    "ClearChargingProfile": {"status": "Accepted"},
    "CustomerInformation": {"status": "Accepted"},
    "DataTransfer": {"status": "Accepted", "data": {"pong": True}},
    "DeleteCertificate": {"status": "Accepted"},
    "GetBaseReport": {"status": "Accepted"},
    "GetCompositeSchedule": {
        "status": "Accepted",
        "schedule": {
            "evse_id": 1,
            "duration": 3600,
            "schedule_start": SCHEDULE_START,
            "charging_rate_unit": "A",
            "charging_schedule_period": [{"start_period": 0, "limit": 16.0}],
        },
    },
    "GetInstalledCertificateIds": {
        "status": "Accepted",
        "certificate_hash_data_chain": [
            {"certificate_type": "CSMSRootCertificate", "certificate_hash_data": CERTIFICATE_HASH}
        ],
    },
    "GetLocalListVersion": {"version_number": 3},
    "GetLog": {"status": "Accepted", "filename": "log.zip"},
    "GetVariables": _get_variables,
    "InstallCertificate": {"status": "Accepted"},
    "RequestStartTransaction": {"status": "Accepted"},
    "RequestStopTransaction": {"status": "Accepted"},
    "ReserveNow": {"status": "Accepted"},
    "Reset": {"status": "Accepted"},
    "SendLocalList": {"status": "Accepted"},
    "SetChargingProfile": {"status": "Accepted"},
    "SetDisplayMessage": {"status": "Accepted"},
    "SetVariables": _set_variables,
    "TriggerMessage": {"status": "Accepted"},
    "UnlockConnector": {"status": "Unlocked"},
    "UpdateFirmware": {"status": "Accepted"},
    "GetTransactionStatus": {"messages_in_queue": False},
    "GetChargingProfiles": {"status": "NoProfiles"},
}


class Answering:
    """What :func:`answering` mixes into an ``ocpp`` ChargePoint: the tables, made per instance."""

    ANSWERS: ClassVar[Mapping[str, Answer]] = {}
    _call_result: Any  # the ChargePoint's call_result module

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answers: dict[str, Answer] = dict(self.ANSWERS)
        self.requests: list[tuple[str, Kwargs]] = []
        self.answered: list[tuple[str, Kwargs]] = []
        self.failing: dict[str, Exception] = {}
        self.holding: dict[str, asyncio.Event] = {}
        self.errors: list[BaseException] = []  # from after-hooks, which run as loose tasks

    async def answer(self, action: str, request: Kwargs) -> Any:
        self.requests.append((action, request))
        gate = self.holding.get(action)
        if gate is not None:
            await gate.wait()
        error = self.failing.get(action)
        if error is not None:
            raise error
        answer = self.answers[action]
        kwargs = answer(request) if callable(answer) else dict(answer)
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        self.answered.append((action, kwargs))
        return getattr(self._call_result, action)(**kwargs)

    def seen(self, action: str) -> list[Kwargs]:
        """The requests of ``action`` this station got, oldest first."""
        return [kwargs for a, kwargs in self.requests if a == action]

    def last_answer(self, action: str) -> Kwargs | None:
        return next((kwargs for a, kwargs in reversed(self.answered) if a == action), None)

    def accepted(self, action: str) -> bool:
        answer = self.last_answer(action)
        return answer is not None and answer.get("status") == "Accepted"


def _snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


def _handler(action: str) -> Any:
    async def handle(self: Answering, **request: Any) -> Any:
        return await self.answer(action, request)

    # the library finds handlers by function name (a module-wide list): one name per action
    handle.__name__ = handle.__qualname__ = f"on_{_snake(action)}"
    return on(action)(handle)


def answering(base: type, answers: Mapping[str, Answer], name: str) -> type:
    """A ChargePoint class of ``base`` with an ``@on(action)`` handler per entry of ``answers``."""
    namespace: dict[str, Any] = {"ANSWERS": answers, "__module__": __name__}
    for action in answers:
        handler = _handler(action)
        namespace[handler.__name__] = handler
    return type(name, (Answering, base), namespace)


_Station16: Any = answering(ChargePoint16, V16_ANSWERS, "_Station16")
_Station201: Any = answering(ChargePoint201, V201_ANSWERS, "_Station201")


class Station16(_Station16):
    """An OCPP 1.6 station answering every CSMS-initiated action (and the security extension's)."""

    async def boot(self) -> Any:
        return await self.call(
            call16.BootNotification(charge_point_model="Answerer", charge_point_vendor="evbus-tests")
        )


class Station201(_Station201):
    """An OCPP 2.0.1 station answering every CSMS-initiated action."""

    async def boot(self) -> Any:
        station = {"model": "Answerer", "vendor_name": "evbus-tests"}
        return await self.call(call201.BootNotification(charging_station=station, reason="PowerUp"))


class Charging16(Station16):
    """Starts a transaction after accepting RemoteStartTransaction (with ``reservation_id`` when
    set), stops it with reason Remote after accepting RemoteStopTransaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reservation_id: int | None = None  # sent on the next StartTransaction
        self.meter = 1000
        self.started: list[int] = []  # transaction ids the CSMS gave
        self.id_tag_infos: list[Kwargs] = []  # the CSMS's idTagInfo of each StartTransaction
        self.stopped: list[int] = []

    @after("RemoteStartTransaction")
    async def after_remote_start(self, id_tag: str, connector_id: int | None = None, **_: Any) -> None:
        if not self.accepted("RemoteStartTransaction"):
            return
        try:
            start = call16.StartTransaction(
                connector_id=connector_id or 1,
                id_tag=id_tag,
                meter_start=self.meter,
                timestamp=now(),
                reservation_id=self.reservation_id,
            )
            result = await self.call(start, suppress=False)
            self.id_tag_infos.append(result.id_tag_info)
            self.started.append(result.transaction_id)
        except BaseException as exc:
            self.errors.append(exc)
            raise

    @after("RemoteStopTransaction")
    async def after_remote_stop(self, transaction_id: int, **_: Any) -> None:
        if not self.accepted("RemoteStopTransaction"):
            return
        try:
            self.meter += 2500
            stop = call16.StopTransaction(
                meter_stop=self.meter, timestamp=now(), transaction_id=transaction_id, reason="Remote"
            )
            await self.call(stop, suppress=False)
            self.stopped.append(transaction_id)
        except BaseException as exc:
            self.errors.append(exc)
            raise


class Charging201(Station201):
    """Sends TransactionEvent Started (idToken, remoteStartId) after accepting
    RequestStartTransaction, and Ended with stoppedReason Remote after RequestStopTransaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started: list[str] = []  # the station's transaction ids
        self.stopped: list[str] = []
        self._seq = 0
        self._n = 0

    def _next_seq(self) -> int:
        seq, self._seq = self._seq, self._seq + 1
        return seq

    @after("RequestStartTransaction")
    async def after_request_start(
        self, id_token: Kwargs, remote_start_id: int, evse_id: int | None = None, **_: Any
    ) -> None:
        if not self.accepted("RequestStartTransaction"):
            return
        try:
            self._n += 1
            transaction_id = f"{self.id}-tx-{self._n}"
            event = call201.TransactionEvent(
                event_type="Started",
                timestamp=now(),
                trigger_reason="RemoteStart",
                seq_no=self._next_seq(),
                transaction_info={
                    "transaction_id": transaction_id,
                    "charging_state": "Charging",
                    "remote_start_id": remote_start_id,
                },
                evse={"id": evse_id or 1, "connector_id": 1},
                id_token=id_token,
                meter_value=[_energy(0, "Transaction.Begin")],
            )
            await self.call(event, suppress=False)
            self.started.append(transaction_id)
        except BaseException as exc:
            self.errors.append(exc)
            raise

    @after("RequestStopTransaction")
    async def after_request_stop(self, transaction_id: str, **_: Any) -> None:
        if not self.accepted("RequestStopTransaction"):
            return
        try:
            event = call201.TransactionEvent(
                event_type="Ended",
                timestamp=now(),
                trigger_reason="RemoteStop",
                seq_no=self._next_seq(),
                transaction_info={"transaction_id": transaction_id, "stopped_reason": "Remote"},
                meter_value=[_energy(2500, "Transaction.End")],
            )
            await self.call(event, suppress=False)
            self.stopped.append(transaction_id)
        except BaseException as exc:
            self.errors.append(exc)
            raise


def _energy(wh: float, context: str) -> Kwargs:
    sampled = {"value": wh, "context": context, "measurand": "Energy.Active.Import.Register"}
    return {"timestamp": now(), "sampled_value": [sampled]}
