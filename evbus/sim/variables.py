"""The 2.0.1/2.1 device model of a simulated station (OCPP 2.0.1 Part 2, appendix 3): components
and variables that GetVariables, SetVariables and GetBaseReport/GetReport read and write."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

Mutability = Literal["ReadOnly", "WriteOnly", "ReadWrite"]
DataType = Literal["string", "decimal", "integer", "dateTime", "boolean", "OptionList", "SequenceList", "MemberList"]
Where = tuple[
    str, str | None, int | None, int | None, str, str | None
]  # component, instance, evse, connector, variable, instance


@dataclass(frozen=True, slots=True)
class Variable:
    """One variable of the catalogue every simulated station shares; ``value`` is its default."""

    component: str
    name: str
    value: str
    data_type: DataType = "integer"
    mutability: Mutability = "ReadWrite"
    unit: str | None = None
    values_list: str | None = None
    component_instance: str | None = None
    instance: str | None = None
    evse: int | None = None
    connector: int | None = None
    reboot: bool = False

    @property
    def where(self) -> Where:
        return (self.component, self.component_instance, self.evse, self.connector, self.name, self.instance)

    def component_json(self) -> dict[str, Any]:
        component: dict[str, Any] = {"name": self.component}
        if self.component_instance:
            component["instance"] = self.component_instance
        if self.evse is not None:
            component["evse"] = {"id": self.evse} | ({"connectorId": self.connector} if self.connector else {})
        return component

    def variable_json(self) -> dict[str, Any]:
        return {"name": self.name} | ({"instance": self.instance} if self.instance else {})


MEASURANDS: Final = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC"
ENERGY: Final = "Energy.Active.Import.Register"


IDENTITY: Final = "SecurityCtrlr", "Identity"
SERIAL: Final = "ChargingStation", "SerialNumber"


def _defaults(evses: int) -> list[Variable]:
    v = Variable
    table = [
        v("OCPPCommCtrlr", "HeartbeatInterval", "300", unit="s"),
        v("OCPPCommCtrlr", "MessageTimeout", "30", instance="Default", unit="s"),
        v("OCPPCommCtrlr", "MessageAttempts", "3", instance="TransactionEvent"),
        v("OCPPCommCtrlr", "MessageAttemptInterval", "30", instance="TransactionEvent", unit="s"),
        v("OCPPCommCtrlr", "NetworkConfigurationPriority", "1", "SequenceList"),
        v("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", "3"),
        v("OCPPCommCtrlr", "OfflineThreshold", "60", unit="s"),
        v("OCPPCommCtrlr", "ResetRetries", "2"),
        v("OCPPCommCtrlr", "WebSocketPingInterval", "0", unit="s", reboot=True),
        v("OCPPCommCtrlr", "FileTransferProtocols", "HTTP,HTTPS,FTP", "MemberList", "ReadOnly"),
        v("SampledDataCtrlr", "Enabled", "true", "boolean"),
        v("SampledDataCtrlr", "TxUpdatedInterval", "5", unit="s"),
        v("SampledDataCtrlr", "TxUpdatedMeasurands", MEASURANDS, "MemberList"),
        v("SampledDataCtrlr", "TxStartedMeasurands", ENERGY, "MemberList"),
        v("SampledDataCtrlr", "TxEndedMeasurands", ENERGY, "MemberList"),
        v("SampledDataCtrlr", "TxEndedInterval", "0", unit="s"),
        v("AlignedDataCtrlr", "Enabled", "false", "boolean"),
        v("AlignedDataCtrlr", "Interval", "0", unit="s"),
        v("AlignedDataCtrlr", "Measurands", ENERGY, "MemberList"),
        v("TxCtrlr", "EVConnectionTimeOut", "60", unit="s"),
        v("TxCtrlr", "StopTxOnEVSideDisconnect", "true", "boolean"),
        v("TxCtrlr", "StopTxOnInvalidId", "true", "boolean"),
        v("TxCtrlr", "TxStartPoint", "Authorized", "MemberList"),
        v("TxCtrlr", "TxStopPoint", "EVConnected,Authorized", "MemberList"),
        v("AuthCtrlr", "Enabled", "true", "boolean"),
        v("AuthCtrlr", "AuthorizeRemoteStart", "false", "boolean"),
        v("AuthCtrlr", "LocalAuthorizeOffline", "true", "boolean"),
        v("AuthCtrlr", "LocalPreAuthorize", "false", "boolean"),
        v("AuthCacheCtrlr", "Enabled", "false", "boolean"),
        v("LocalAuthListCtrlr", "Enabled", "true", "boolean"),
        v("LocalAuthListCtrlr", "Entries", "0", mutability="ReadOnly"),
        v("LocalAuthListCtrlr", "ItemsPerMessage", "100", mutability="ReadOnly"),
        v("LocalAuthListCtrlr", "BytesPerMessage", "65536", mutability="ReadOnly"),
        v("ReservationCtrlr", "Enabled", "true", "boolean"),
        v("ReservationCtrlr", "NonEvseSpecific", "true", "boolean", "ReadOnly"),
        v("SmartChargingCtrlr", "Enabled", "true", "boolean"),
        v("SmartChargingCtrlr", "PeriodsPerSchedule", "24", mutability="ReadOnly"),
        v("SmartChargingCtrlr", "ProfileStackLevel", "8", mutability="ReadOnly"),
        v("SmartChargingCtrlr", "RateUnit", "A,W", "MemberList", "ReadOnly"),
        v("DeviceDataCtrlr", "ItemsPerMessage", "20", instance="GetReport", mutability="ReadOnly"),
        v("DeviceDataCtrlr", "ItemsPerMessage", "50", instance="GetVariables", mutability="ReadOnly"),
        v("DeviceDataCtrlr", "ItemsPerMessage", "50", instance="SetVariables", mutability="ReadOnly"),
        v("DeviceDataCtrlr", "BytesPerMessage", "65536", instance="GetReport", mutability="ReadOnly"),
        v("ClockCtrlr", "TimeSource", "Heartbeat", "SequenceList"),
        v("SecurityCtrlr", "SecurityProfile", "1", mutability="ReadOnly"),
        v("SecurityCtrlr", "OrganizationName", "evbus", "string"),
        v("SecurityCtrlr", "Identity", "", "string"),
        v("SecurityCtrlr", "BasicAuthPassword", "", "string", "WriteOnly", reboot=True),
        v("ChargingStation", "Available", "true", "boolean", "ReadOnly"),
        v("ChargingStation", "AvailabilityState", "Available", "OptionList", "ReadOnly"),
        v("ChargingStation", "Model", "evbus-sim-22", "string", "ReadOnly"),
        v("ChargingStation", "VendorName", "evbus", "string", "ReadOnly"),
        v("ChargingStation", "SerialNumber", "", "string", "ReadOnly"),
    ]
    for n in range(1, evses + 1):
        table += [
            v("EVSE", "Available", "true", "boolean", "ReadOnly", evse=n),
            v("EVSE", "AvailabilityState", "Available", "OptionList", "ReadOnly", evse=n),
            v("EVSE", "Power", "22000", "decimal", "ReadOnly", unit="W", evse=n),
            v("EVSE", "SupplyPhases", "3", mutability="ReadOnly", evse=n),
            v("Connector", "ConnectorType", "cType2", "string", "ReadOnly", evse=n, connector=1),
            v("Connector", "SupplyPhases", "3", mutability="ReadOnly", evse=n, connector=1),
        ]
    return table


GetStatus = Literal["Accepted", "Rejected", "UnknownComponent", "UnknownVariable", "NotSupportedAttributeType"]
SetStatus = Literal[
    "Accepted", "Rejected", "UnknownComponent", "UnknownVariable", "NotSupportedAttributeType", "RebootRequired"
]


class Catalogue(NamedTuple):
    variables: dict[Where, Variable]
    components: frozenset[tuple[str, str | None, int | None, int | None]]
    by_name: dict[tuple[str, str, int | None], Variable]


@functools.cache
def catalogue(evses: int) -> Catalogue:
    variables = {var.where: var for var in _defaults(evses)}
    components = frozenset((w[0], w[1], w[2], w[3]) for w in variables)
    by_name = {(v.component, v.name, v.evse): v for v in variables.values() if v.instance is None}
    return Catalogue(variables, components, by_name)


class DeviceModel:
    """The catalogue is shared by every station; a station stores only the values it changed."""

    def __init__(self, station_id: str, serial: str, evses: int) -> None:
        self._catalogue = catalogue(evses)
        self._values: dict[Where, str] = {}
        self.put(*IDENTITY, station_id)
        self.put(*SERIAL, serial)

    def __iter__(self) -> Iterator[Variable]:
        return iter(self._catalogue.variables.values())

    def value(self, variable: Variable) -> str:
        return self._values.get(variable.where, variable.value)

    def find(self, component: dict[str, Any], variable: dict[str, Any]) -> Variable | GetStatus:
        evse = component.get("evse") or {}
        place = (component["name"], component.get("instance"), evse.get("id"), evse.get("connectorId"))
        if place not in self._catalogue.components:
            return "UnknownComponent"
        found = self._catalogue.variables.get((*place, variable["name"], variable.get("instance")))
        return found if found is not None else "UnknownVariable"

    def get(self, component: str, name: str, *, evse: int | None = None) -> Variable:
        return self._catalogue.by_name[(component, name, evse)]

    def integer(self, component: str, name: str) -> int:
        return int(self.value(self.get(component, name)))

    def put(self, component: str, name: str, value: str, *, evse: int | None = None) -> None:
        self._values[self.get(component, name, evse=evse).where] = value

    def report(self, variable: Variable) -> dict[str, Any]:
        """``variable`` as a NotifyReport ``reportData`` entry."""
        attribute: dict[str, Any] = {"type": "Actual", "mutability": variable.mutability, "persistent": True}
        if variable.mutability != "WriteOnly":
            attribute["value"] = self.value(variable)
        characteristics: dict[str, Any] = {"dataType": variable.data_type, "supportsMonitoring": False}
        if variable.unit:
            characteristics["unit"] = variable.unit
        if variable.values_list:
            characteristics["valuesList"] = variable.values_list
        return {
            "component": variable.component_json(),
            "variable": variable.variable_json(),
            "variableAttribute": [attribute],
            "variableCharacteristics": characteristics,
        }

    def read(self, item: dict[str, Any]) -> tuple[GetStatus, str | None]:
        """GetVariables for one ``getVariableData`` item: a status and the value when Accepted."""
        found = self.find(item["component"], item["variable"])
        if isinstance(found, str):
            return found, None
        if item.get("attributeType", "Actual") != "Actual":
            return "NotSupportedAttributeType", None
        if found.mutability == "WriteOnly":
            return "Rejected", None
        return "Accepted", self.value(found)

    def write(self, item: dict[str, Any]) -> tuple[SetStatus, Variable | None]:
        """SetVariables for one ``setVariableData`` item."""
        found = self.find(item["component"], item["variable"])
        if isinstance(found, str):
            return found, None
        if item.get("attributeType", "Actual") != "Actual":
            return "NotSupportedAttributeType", None
        if found.mutability == "ReadOnly":
            return "Rejected", found
        value = item["attributeValue"]
        if found.data_type == "integer":
            if not value.strip().lstrip("-").isdigit() or int(value) < 0:
                return "Rejected", found
            value = str(int(value))
        elif found.data_type == "boolean":
            if value.lower() not in ("true", "false"):
                return "Rejected", found
            value = value.lower()
        elif found.data_type == "decimal":
            try:
                float(value)
            except ValueError:
                return "Rejected", found
        self._values[found.where] = value
        return ("RebootRequired" if found.reboot else "Accepted"), found
