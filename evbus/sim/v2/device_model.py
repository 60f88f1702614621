"""2.0.1/2.1 GetVariables, SetVariables, GetBaseReport, GetReport and variable monitoring."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from evbus.sim.device import Device
from evbus.sim.effects import Effect, Reply, Reschedule, Send
from evbus.sim.variables import Variable
from evbus.sim.wire import timestamp

RESCHEDULING: Final = frozenset({("OCPPCommCtrlr", "HeartbeatInterval"), ("SampledDataCtrlr", "TxUpdatedInterval")})
REPORT_ITEMS: Final = 20  # reportData entries per NotifyReport (DeviceDataCtrlr.ItemsPerMessage[GetReport])
SUMMARY: Final = frozenset({"Available", "AvailabilityState", "Model", "VendorName", "SerialNumber"})


def get_variables(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    results = []
    for item in payload["getVariableData"]:
        status, value = device.variables.read(item)
        result: dict[str, Any] = {
            "attributeStatus": status,
            "attributeType": item.get("attributeType", "Actual"),
            "component": item["component"],
            "variable": item["variable"],
        }
        if value is not None:
            result["attributeValue"] = value
        results.append(result)
    return Reply({"getVariableResult": results})


def set_variables(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    results = []
    effects: list[Effect] = []
    for item in payload["setVariableData"]:
        status, variable = device.variables.write(item)
        if status == "Accepted" and variable is not None and (variable.component, variable.name) in RESCHEDULING:
            if variable.name == "TxUpdatedInterval":
                device.meter_period = float(device.variables.value(variable))
            effects.append(Reschedule())
        results.append(
            {
                "attributeStatus": status,
                "attributeType": item.get("attributeType", "Actual"),
                "component": item["component"],
                "variable": item["variable"],
            }
        )
    return Reply({"setVariableResult": results}, tuple(effects[:1]))


def notify_report(device: Device, request_id: int, variables: Iterable[Variable], now: datetime) -> tuple[Send, ...]:
    """NotifyReport messages carrying ``variables``, :data:`REPORT_ITEMS` per message."""
    data = [device.variables.report(v) for v in variables]
    chunks = [data[i : i + REPORT_ITEMS] for i in range(0, len(data), REPORT_ITEMS)]
    generated = timestamp(now)
    return tuple(
        Send(
            "NotifyReport",
            {
                "requestId": request_id,
                "generatedAt": generated,
                "reportData": chunk,
                "tbc": seq < len(chunks) - 1,
                "seqNo": seq,
            },
            0.1,
        )
        for seq, chunk in enumerate(chunks)
    )


def get_base_report(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    base = payload["reportBase"]
    if base == "FullInventory":
        chosen = list(device.variables)
    elif base == "ConfigurationInventory":
        chosen = [v for v in device.variables if v.mutability != "ReadOnly"]
    else:
        chosen = [v for v in device.variables if v.name in SUMMARY]
    return Reply({"status": "Accepted"}, notify_report(device, payload["requestId"], chosen, now))


def _wanted(variable: Variable, selectors: list[dict[str, Any]]) -> bool:
    for selector in selectors:
        component, wanted_variable = selector["component"], selector.get("variable")
        evse = component.get("evse")
        if component["name"] != variable.component or component.get("instance", variable.component_instance) != (
            variable.component_instance
        ):
            continue
        if evse is not None and (evse["id"], evse.get("connectorId", variable.connector)) != (
            variable.evse,
            variable.connector,
        ):
            continue
        if wanted_variable is None or (
            wanted_variable["name"] == variable.name and wanted_variable.get("instance") == variable.instance
        ):
            return True
    return False


def get_report(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    selectors = payload.get("componentVariable")
    criteria = set(payload.get("componentCriteria", ()))
    chosen = [v for v in device.variables if selectors is None or _wanted(v, selectors)]
    if criteria == {"Problem"}:  # nothing is wrong with a simulated station
        chosen = []
    if not chosen:
        return Reply({"status": "EmptyResultSet"})
    return Reply({"status": "Accepted"}, notify_report(device, payload["requestId"], chosen, now))


def set_variable_monitoring(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    results = []
    for item in payload["setMonitoringData"]:
        found = device.variables.find(item["component"], item["variable"])
        result: dict[str, Any] = {
            "type": item["type"],
            "severity": item["severity"],
            "component": item["component"],
            "variable": item["variable"],
        }
        if isinstance(found, str):
            result["status"] = "UnknownComponent" if found == "UnknownComponent" else "UnknownVariable"
        else:
            monitor_id = item.get("id") or max(device.monitors, default=0) + 1
            device.monitors[monitor_id] = item | {"id": monitor_id}
            result |= {"status": "Accepted", "id": monitor_id}
        results.append(result)
    return Reply({"setMonitoringResult": results})


def clear_variable_monitoring(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    results = []
    for monitor_id in payload["id"]:
        found = device.monitors.pop(monitor_id, None)
        results.append({"status": "Accepted" if found else "NotFound", "id": monitor_id})
    return Reply({"clearMonitoringResult": results})


def set_monitoring_base(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    return Reply({"status": "Accepted"})


def set_monitoring_level(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    return Reply({"status": "Accepted"})


def get_monitoring_report(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    if not device.monitors:
        return Reply({"status": "EmptyResultSet"})
    extra = {"eventNotificationType": "CustomMonitor"} if device.protocol == "ocpp2.1" else {}
    monitors = [
        {
            "component": m["component"],
            "variable": m["variable"],
            "variableMonitoring": [
                {
                    "id": m["id"],
                    "transaction": m.get("transaction", False),
                    "value": m["value"],
                    "type": m["type"],
                    "severity": m["severity"],
                }
                | extra
            ],
        }
        for m in device.monitors.values()
    ]
    report = {
        "requestId": payload["requestId"],
        "seqNo": 0,
        "generatedAt": timestamp(now),
        "monitor": monitors,
        "tbc": False,
    }
    return Reply({"status": "Accepted"}, (Send("NotifyMonitoringReport", report, 0.1),))
