"""The built-in device families (../shared/FORMATS.md §1-3): topics, payloads and units as the
devices' code writes them, where their docs disagree, and the settings each family takes
(``*_SETTINGS``, :func:`writable`; gateways/mqtt/writes.py).

Order matters only where shapes overlap: OpenEVSE's ``{base}/state`` is a number, esp32-evse's
``{id}/state`` a JSON object with an IEC state, so OpenEVSE goes first and esp32-evse refuses
payloads that are not its own. A generic mapping file (gateways/mqtt/generic.py) goes before all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from gateways.mqtt.devices import RecentSet
from gateways.mqtt.profiles import (
    BadValue,
    Family,
    Field,
    Ignored,
    IgnoreRule,
    Outcome,
    Rule,
    TopicPattern,
    Update,
    number,
    parse_json,
    phases,
)
from gateways.mqtt.writes import (
    Check,
    Setting,
    Writable,
    choice,
    flag,
    includes,
    json_or_word,
    json_value,
    near,
    on_off,
    properties,
    scaled,
    text,
)
from gateways.mqtt.writes import number as between

P = TopicPattern


def _is_command(key: str) -> bool:
    return key == "set" or key.endswith("/set")


# --- evcc (FORMATS §1) ------------------------------------------------------------------------

EVCC_LOADPOINT: Final[dict[str, Field]] = {
    "connected": Field("connected", "bool"),
    "charging": Field("charging", "bool"),
    "enabled": Field("enabled", "bool"),
    "chargePower": Field("power_w", unit="W"),
    # the base topics chargeCurrents/chargeVoltages hold the SUM of the phases: not mapped
    **{f"chargeCurrents/l{i + 1}": Field(f"currents_a.{i}", unit="A") for i in range(3)},
    **{f"chargeVoltages/l{i + 1}": Field(f"voltages_v.{i}", unit="V") for i in range(3)},
    "sessionEnergy": Field("session_energy_wh", unit="Wh"),  # the code publishes Wh (docs: kWh)
    "chargeTotalImport": Field("energy_wh", unit="kWh"),  # kWh (mqtt-api.md: Wh; code and OpenAPI: kWh)
    "vehicleSoc": Field("soc_pct", unit="%"),
    "offeredCurrent": Field("offered_current_a", unit="A"),
    "phasesActive": Field("phases", "int"),
    "mode": Field("mode", "text"),
    "title": Field("title", "text"),
    "vehicleName": Field("extra.vehicleName", "text"),
    "chargeDuration": Field("extra.chargeDurationS"),  # seconds on MQTT (docs: ns)
    # what the settings below write, published back by evcc when they change (their echo)
    "minCurrent": Field("extra.minCurrentA", unit="A"),
    "maxCurrent": Field("extra.maxCurrentA", unit="A"),
    "phasesConfigured": Field("extra.phasesConfigured", "int"),  # 0 = automatic switching
    "limitSoc": Field("extra.limitSocPct", unit="%"),  # 0 = none
    "limitEnergy": Field("extra.limitEnergyWh", unit="kWh"),  # kWh on MQTT; 0 = none
}

EVCC_SITE: Final[dict[str, Field]] = {
    "grid/power": Field("power_w", unit="W"),  # positive = import
    "grid/energy": Field("energy_wh", unit="kWh"),
    **{f"grid/currents/{i + 1}": Field(f"currents_a.{i}", unit="A") for i in range(3)},
    "pvPower": Field("extra.pvPowerW", unit="W"),
    "homePower": Field("extra.homePowerW", unit="W"),
    "battery/power": Field("extra.batteryPowerW", unit="W"),  # positive = discharge
    "battery/soc": Field("extra.batterySocPct", unit="%"),
    "siteTitle": Field("title", "text"),
}


_PHASES: Final = Setting("{prefix}/phasesConfigured/set", choice(0, 1, 3), text, echo="extra.phasesConfigured")

# server/mqtt.go listenLoadpointSetters: "{root}/loadpoints/{id}/{key}/set", plain text; evcc
# publishes the value on "{root}/loadpoints/{id}/{key}" when it changes, and clears the retained /set.
EVCC_LOADPOINT_SETTINGS: Final[dict[str, Setting]] = {
    "mode": Setting("{prefix}/mode/set", choice("off", "now", "minpv", "pv"), text, echo="mode"),
    "minCurrent": Setting("{prefix}/minCurrent/set", between(0, 125), text, echo="extra.minCurrentA", unit="A"),
    "maxCurrent": Setting("{prefix}/maxCurrent/set", between(0, 125), text, echo="extra.maxCurrentA", unit="A"),
    "phasesConfigured": _PHASES,
    "phases": _PHASES,  # evcc's setter is phasesConfigured (there is no phases/set)
    "limitSoc": Setting(
        "{prefix}/limitSoc/set", between(0, 100, integer=True), text, echo="extra.limitSocPct", unit="%"
    ),
    "limitEnergy": Setting(  # kWh, as evcc takes it
        "{prefix}/limitEnergy/set",
        between(0, 1000),
        text,
        echo="extra.limitEnergyWh",
        shows=scaled(1000),
        unit="kWh",
    ),
}


def evcc(root: str = "evcc") -> Family:
    """evcc under ``root``: loadpoints ``lp{id}`` (1-based, as on MQTT) and the ``site``; plain-text
    scalars, empty payload = unset. ``{root}/status`` (LWT ``offline``) is every device's presence."""

    def lp(parts: dict[str, str]) -> str:
        return f"lp{parts['lp']}" if root == "evcc" else f"{root}/lp{parts['lp']}"

    site = "site" if root == "evcc" else f"{root}/site"
    return Family(
        "evcc",
        (
            Rule(
                "evcc",
                P(f"{root}/loadpoints/{{lp}}/{{key+}}"),
                lp,
                "text",
                EVCC_LOADPOINT,
                group=root,
                skip_keys=_is_command,
            ),
            Rule(
                "evcc",
                P(f"{root}/site/{{key+}}"),
                site,
                "text",
                EVCC_SITE,
                kind="site",
                group=root,
                skip_keys=_is_command,
            ),
            Rule(
                "evcc",
                P(f"{root}/status"),
                site,
                "text",
                {"": Field("online", "bool")},
                kind="site",
                group=root,
                fan_out=True,
                presence=True,
            ),
            IgnoreRule("evcc", P(f"{root}/#"), "evcc value not normalised"),
        ),
    )


# --- go-e Charger API v2 (FORMATS §3.1) -------------------------------------------------------

GOE_CAR: Final[dict[Any, Mapping[str, Any]]] = {
    0: {"state": None, "state_raw": "0", "connected": None, "charging": None},  # unknown/error
    1: {"state": "A", "state_raw": "1", "connected": False, "charging": False},  # idle
    2: {"state": "C", "state_raw": "2", "connected": True, "charging": True},  # charging
    3: {"state": "B", "state_raw": "3", "connected": True, "charging": False},  # wait car
    4: {"state": "B", "state_raw": "4", "connected": True, "charging": False},  # complete
    5: {"state": "E", "state_raw": "5", "charging": False},  # error
}


def _goe_nrg(value: Any) -> dict[str, Any]:
    """``nrg``: U L1 L2 L3 N (V), I L1 L2 L3 (A), P L1 L2 L3 N (W), P total (W), pf L1 L2 L3 N."""
    if not isinstance(value, list) or len(value) < 12:
        raise BadValue(f"expected the 16-number nrg array, got {str(value)[:60]}")
    n = [number(v) for v in value]
    return {
        **{f"voltages_v.{i}": n[i] for i in range(3)},
        **{f"currents_a.{i}": n[4 + i] for i in range(3)},
        "power_w": n[11],
    }


def _hottest(value: Any) -> dict[str, Any]:
    if value is None:
        return {"temperature_c": None}
    if not isinstance(value, list) or not value:
        raise BadValue(f"expected a list of temperatures, got {str(value)[:60]}")
    readings = [t for t in (number(v) for v in value) if t is not None]
    return {"temperature_c": max(readings) if readings else None}


GOE: Final[dict[str, Field]] = {
    "car": Field(table=GOE_CAR),
    "alw": Field("enabled", "bool"),
    "acu": Field("offered_current_a", unit="A"),  # currently allowed current
    "amp": Field("extra.requestedCurrentA", unit="A"),
    "nrg": Field(scale=_goe_nrg),
    "wh": Field("session_energy_wh", unit="Wh"),  # "energy in Wh since car connected"
    "eto": Field("energy_wh", unit="Wh"),
    "err": Field("errors", "errors"),
    "tma": Field(scale=_hottest),
    "frc": Field("extra.forceState", "int"),
    "modelStatus": Field("extra.modelStatus", "int"),
}


# "go-eCharger/{serial}/{key}/set" with a JSON value; go-e publishes the key's new value (API v2).
GOE_SETTINGS: Final[dict[str, Setting]] = {
    "amp": Setting(
        "{prefix}/amp/set", between(6, 32, integer=True), json_value, echo="extra.requestedCurrentA", unit="A"
    ),
    "frc": Setting("{prefix}/frc/set", choice(0, 1, 2), json_value, echo="extra.forceState"),  # neutral, off, on
}
GOE_HINT: Final = "go-e takes MQTT writes only with mcr (MQTT readonly) off, since firmware 051.5"


def goe() -> Family:
    """``go-eCharger/{serial}/{key}`` with a JSON value; old firmware wrote a leading ``/``."""
    return Family(
        "goe",
        tuple(
            Rule("goe", P(f"{lead}go-eCharger/{{serial}}/{{key+}}"), "{serial}", "json", GOE, skip_keys=_is_command)
            for lead in ("", "/")
        ),
    )


# --- OpenEVSE (FORMATS §3.2) ------------------------------------------------------------------

OPENEVSE_ERRORS: Final = {
    4: "vent_required",
    5: "diode_check_failed",
    6: "gfi_fault",
    7: "no_ground",
    8: "stuck_relay",
    9: "gfi_self_test_failed",
    10: "over_temperature",
    11: "over_current",
}
OPENEVSE_STATE: Final[dict[Any, Mapping[str, Any]]] = {
    0: {"state": None, "state_raw": "0"},  # starting
    1: {"state": "A", "state_raw": "1", "connected": False, "charging": False, "errors": []},
    2: {"state": "B", "state_raw": "2", "connected": True, "charging": False, "errors": []},
    3: {"state": "C", "state_raw": "3", "connected": True, "charging": True, "errors": []},
    **{
        code: {"state": "E", "state_raw": str(code), "charging": False, "errors": [name]}
        for code, name in OPENEVSE_ERRORS.items()
    },
    254: {"state": "F", "state_raw": "254", "charging": False, "enabled": False},  # sleeping
    255: {"state": "F", "state_raw": "255", "charging": False, "enabled": False},  # disabled
}

OPENEVSE: Final[dict[str, Field]] = {
    "state": Field(table=OPENEVSE_STATE),
    "vehicle": Field("connected", "bool"),
    "status": Field("enabled", "bool"),  # active | disabled
    "amp": Field("currents_a.0", unit="mA"),
    "voltage": Field("voltages_v.0", unit="V"),
    "power": Field("power_w", unit="W"),
    "pilot": Field("offered_current_a", unit="A"),
    "session_energy": Field("session_energy_wh", unit="Wh"),
    "total_energy": Field("energy_wh", unit="kWh"),
    "temp": Field("temperature_c", unit="dC"),
    "battery_level": Field("soc_pct", unit="%"),
    "session_elapsed": Field("extra.sessionElapsedS"),
    # the retained documents its commands republish (their acknowledgement) and the divert mode
    "claim": Field(scale=lambda value: _openevse_document("extra.claim", value)),
    "override": Field(scale=lambda value: _openevse_document("extra.override", value)),
    "divertmode": Field("extra.divertMode", "int"),  # 1 normal, 2 eco
}


def _openevse_document(to: str, value: Any) -> dict[str, Any]:
    """``{base}/claim`` and ``{base}/override``: a JSON object, ``{"state":"null"}`` for none."""
    document = parse_json(value.encode()) if isinstance(value, str) and value.strip() else None
    if document is not None and not isinstance(document, dict):
        raise BadValue(f"expected a JSON object, got {str(value)[:60]}")
    return {to: None if not document or document.get("state") == "null" else document}


# docs/Developers_Guide_MQTT.md: "{base}/claim/set" and "{base}/override/set" take the HTTP API's
# properties as JSON (or release / clear), and republish "{base}/claim" / "{base}/override". The
# override's "toggle" is left out: an API that sets values should not flip one it cannot see.
OPENEVSE_PROPERTIES: Final[dict[str, Check]] = {
    "state": choice("active", "disabled"),
    "charge_current": between(0, 80),
    "max_current": between(0, 80),
    "auto_release": flag,
}
OPENEVSE_UNITS: Final = {"charge_current": "A", "max_current": "A"}
OPENEVSE_SETTINGS: Final[dict[str, Setting]] = {
    "override": Setting(
        "{device}/override/set",
        properties(OPENEVSE_PROPERTIES, frozenset({"clear"}), OPENEVSE_UNITS),
        json_or_word,
        echo="extra.override",
        shows=includes,
    ),
    "claim": Setting(
        "{device}/claim/set",
        properties(OPENEVSE_PROPERTIES, frozenset({"release"}), OPENEVSE_UNITS),
        json_or_word,
        echo="extra.claim",
        shows=includes,
    ),
    "divertmode": Setting("{device}/divertmode/set", choice(1, 2), text, echo="extra.divertMode"),
}


_KEY: Final = P("{key}")  # an OpenEVSE value topic below its base


@dataclass(slots=True)
class OpenEvse:
    """OpenEVSE: ``openevse/announce/{id}`` (retained, LWT ``"state":"disconnected"``) names the
    device's base topic and is its presence; values are ``{base}/{name}``, one per topic. Bases it
    announced are remembered, and a first level starting with ``openevse`` (the default hostname)
    is taken as a base before any announce."""

    bases: RecentSet = field(default_factory=RecentSet)
    source: str = "openevse"

    def apply(self, topic: str, payload: bytes) -> Outcome | None:
        if topic.startswith("openevse/announce/"):
            return self._announce(topic, payload)
        base, _, key = topic.rpartition("/")
        if not base:
            return None
        known = base in self.bases or ("/" not in base and base.lower().startswith("openevse") and base != "openevse")
        if not known:
            levels = topic.split("/")
            if any("/".join(levels[:n]) in self.bases for n in range(1, len(levels))):
                return Ignored(self.source, "OpenEVSE topic not normalised")
            first = topic.split("/", 1)[0]
            if first.lower().startswith("openevse") and first != "openevse":
                return Ignored(self.source, "OpenEVSE topic not normalised")
            return None
        return Rule(self.source, _KEY, base, "text", OPENEVSE).apply(key, payload)

    def _announce(self, topic: str, payload: bytes) -> Outcome:
        try:
            document = parse_json(payload) if payload else {}
        except BadValue as exc:
            return Ignored(self.source, f"announce: {exc}")
        base = document.get("mqtt") if isinstance(document, dict) else None
        if not isinstance(base, str) or not base:
            return Ignored(self.source, "announce without a base topic (cleared or malformed)")
        self.bases.add(base)
        online = document.get("state") == "connected"
        extra = {"extra.announcedId": document.get("id")} if isinstance(document.get("id"), str) else {}
        return Update(self.source, base, "evse", {**extra, "title": document.get("name")}, online=online)


# --- esp32-evse Lua MQTT bridge (FORMATS §2) --------------------------------------------------

_IEC = re.compile(r"[A-F][12]?")


def _esp32_state(value: Any) -> dict[str, Any]:
    if value is None:
        return {"state": None, "state_raw": None}
    if not isinstance(value, str) or not _IEC.fullmatch(value):
        raise BadValue(f"expected an IEC 61851 state like C2, got {str(value)[:40]}")
    return {
        "state": value[0],
        "state_raw": value,
        "connected": value[0] in "BCD",
        "charging": value in ("C2", "D2"),
    }


def _esp32_current(value: Any) -> dict[str, Any]:
    """HA bridge: ``current`` is the setpoint (A); the v0.5 state: a list of 3 measured currents."""
    if isinstance(value, list):
        return phases(Field("currents_a", unit="A"), value)  # checked by convert(), flags and all
    return {"offered_current_a": number(value)}


ESP32_EVSE: Final[dict[str, Field]] = {
    "state": Field(scale=_esp32_state),
    "charging": Field("charging", "bool"),
    "enabled": Field("enabled", "bool"),
    "available": Field("extra.available", "bool"),
    "error": Field("errors", "errors"),
    "errors": Field("errors", "errors"),
    "power": Field("power_w", unit="W"),
    "current": Field(scale=_esp32_current),
    "chargingCurrent": Field("offered_current_a", unit="A"),
    "session_energy": Field("session_energy_wh", unit="Wh"),  # Wh (the REST docs say Ws; the code Wh)
    "consumption": Field("session_energy_wh", unit="Wh"),
    "totalConsumption": Field("energy_wh", unit="Wh"),
    "temperature": Field("temperature_c", unit="C"),
    "voltage": Field("voltages_v", unit="V"),
    "sessionTime": Field("extra.sessionTimeS"),
}


def _esp32_payload(document: Any) -> bool:
    state = document.get("state") if isinstance(document, dict) else None
    return isinstance(state, str) and bool(_IEC.fullmatch(state))


_ESP32_STATE: Final = Rule("esp32evse", P("{id+}/state"), "{id}", "object", ESP32_EVSE, accept=_esp32_payload)


@dataclass(slots=True)
class Esp32Evse:
    """``{id}/state`` JSON from the documented Lua HA bridge (and the v0.5 built-in MQTT state).
    Its ids are remembered, so that its commands ``{id}/{what}/set`` (ours too) are the family's
    ignored topics rather than unmatched ones."""

    ids: RecentSet = field(default_factory=RecentSet)
    source: str = "esp32evse"

    def apply(self, topic: str, payload: bytes) -> Outcome | None:
        outcome = _ESP32_STATE.apply(topic, payload)
        if isinstance(outcome, Update):
            self.ids.add(outcome.device)
        elif outcome is None and topic.endswith("/set") and topic.rsplit("/", 2)[0] in self.ids:
            return Ignored(self.source, "esp32-evse command")
        return outcome


def esp32_evse() -> Family:
    return Family("esp32evse", (Esp32Evse(),))


# the Lua HA bridge (esp32-evse-docs integration.md) subscribes to "{id}/+/set": enabled takes
# ON|1|true (its HA switch sends ON/OFF), current amps; it publishes both in its state every
# `interval` seconds (default 5).
ESP32_SETTINGS: Final[dict[str, Setting]] = {
    "enabled": Setting("{device}/enabled/set", flag, on_off, echo="enabled"),
    "current": Setting(
        "{device}/current/set", between(6, 63), text, echo="offered_current_a", shows=near(0.05), unit="A"
    ),
}


# --- Shelly Gen2/Gen3 (FORMATS §3.4) ----------------------------------------------------------

SHELLY_SWITCH: Final[dict[str, Field]] = {
    "apower": Field("power_w", unit="W"),
    "voltage": Field("voltages_v.0", unit="V"),
    "current": Field("currents_a.0", unit="A"),
    "aenergy.total": Field("energy_wh", unit="Wh"),
    "ret_aenergy.total": Field("extra.exportedWh", unit="Wh"),
    "temperature.tC": Field("temperature_c", unit="C"),
    "output": Field("enabled", "bool"),
}
SHELLY_EM: Final[dict[str, Field]] = {
    **{f"{p}_current": Field(f"currents_a.{i}", unit="A") for i, p in enumerate("abc")},
    **{f"{p}_voltage": Field(f"voltages_v.{i}", unit="V") for i, p in enumerate("abc")},
    "total_act_power": Field("power_w", unit="W"),
}
SHELLY_EMDATA: Final[dict[str, Field]] = {
    "total_act": Field("energy_wh", unit="Wh"),
    "total_act_ret": Field("extra.exportedWh", unit="Wh"),
}
SHELLY_EM1: Final[dict[str, Field]] = {
    "act_power": Field("power_w", unit="W"),
    "voltage": Field("voltages_v.0", unit="V"),
    "current": Field("currents_a.0", unit="A"),
}


def _shelly_device(parts: dict[str, str]) -> str:
    """Component id 0 is the device itself; others (a Pro 4PM's switch:1) are devices of their own."""
    return parts["prefix"] if parts["n"] == "0" else f"{parts['prefix']}/{parts['n']}"


def shelly() -> Family:
    """``{prefix}/status/{component}:{id}`` with ``status_ntf`` on; ``shelly…/online`` presence."""

    def status(component: str, fields: dict[str, Field]) -> Rule:
        return Rule(
            "shelly", P(f"{{prefix+}}/status/{component}:{{n}}"), _shelly_device, "object", fields, kind="meter"
        )

    return Family(
        "shelly",
        (
            status("switch", SHELLY_SWITCH),
            status("em", SHELLY_EM),
            status("emdata", SHELLY_EMDATA),
            status("em1", SHELLY_EM1),
            Rule(
                "shelly",
                P("shelly{model}/online"),
                lambda parts: f"shelly{parts['model']}",
                "text",
                {"": Field("online", "bool")},
                kind="meter",
                presence=True,
            ),
            IgnoreRule("shelly", P("{prefix+}/status/{component}"), "Shelly component not normalised"),
            IgnoreRule("shelly", P("{prefix+}/events/rpc"), "Shelly RPC notification"),
        ),
    )


# --- Tasmota (FORMATS §3.4) -------------------------------------------------------------------


def _tasmota_phases(target: str, unit: str) -> Field:
    def read(value: Any) -> dict[str, Any]:
        if isinstance(value, list):
            return phases(Field(target, unit=unit), value)  # checked by convert(), flags and all
        return {f"{target}.0": number(value)}

    return Field(scale=read)


def _tasmota_power(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        phases = [number(v) for v in value]
        return {"power_w": sum(p for p in phases if p is not None)}
    return {"power_w": number(value)}


TASMOTA_SENSOR: Final[dict[str, Field]] = {
    "ENERGY.Power": Field(scale=_tasmota_power),
    "ENERGY.Voltage": _tasmota_phases("voltages_v", "V"),
    "ENERGY.Current": _tasmota_phases("currents_a", "A"),
    "ENERGY.Total": Field("energy_wh", unit="kWh"),
    "ENERGY.Today": Field("extra.todayWh", unit="kWh"),
}


def tasmota() -> Family:
    """``tele/{topic}/SENSOR`` (ENERGY: kWh totals) and ``tele/{topic}/LWT`` ``Online|Offline``."""
    return Family(
        "tasmota",
        (
            Rule("tasmota", P("tele/{device}/SENSOR"), "{device}", "object", TASMOTA_SENSOR, kind="meter"),
            Rule(
                "tasmota",
                P("tele/{device}/LWT"),
                "{device}",
                "text",
                {"": Field("online", "bool")},
                kind="meter",
                presence=True,
            ),
            IgnoreRule("tasmota", P("tele/{device}/{kind}"), "Tasmota telemetry not normalised"),
            IgnoreRule("tasmota", P("stat/{device}/#"), "Tasmota command answer"),
            IgnoreRule("tasmota", P("cmnd/{device}/#"), "Tasmota command"),
        ),
    )


# --- openWB (FORMATS §3.3) --------------------------------------------------------------------

OPENWB_FAULT: Final[dict[Any, Mapping[str, Any]]] = {
    0: {"errors": []},
    1: {"errors": ["warning"]},
    2: {"errors": ["error"]},
}

OPENWB2: Final[dict[str, Field]] = {
    "power": Field("power_w", unit="W"),
    "currents": Field("currents_a", unit="A"),
    "voltages": Field("voltages_v", unit="V"),
    "imported": Field("energy_wh", unit="Wh"),
    "exported": Field("extra.exportedWh", unit="Wh"),
    "daily_imported": Field("extra.dailyImportedWh", unit="Wh"),
    "plug_state": Field("connected", "bool"),
    "charge_state": Field("charging", "bool"),
    "phases_in_use": Field("phases", "int"),
    "soc": Field("soc_pct", unit="%"),
    "fault_state": Field(table=OPENWB_FAULT),
    "fault_str": Field("extra.faultStr", "text"),
    "state_str": Field("extra.stateStr", "text"),
    "evse_current": Field("offered_current_a", unit="A"),
    "vehicle_id": Field("extra.vehicleId", "text"),
    "rfid": Field("extra.rfid", "text"),
    "frequency": Field("extra.frequencyHz"),
}

OPENWB1: Final[dict[str, Field]] = {
    "W": Field("power_w", unit="W"),
    "boolPlugStat": Field("connected", "bool"),
    "boolChargeStat": Field("charging", "bool"),
    **{f"APhase{i + 1}": Field(f"currents_a.{i}", unit="A") for i in range(3)},
    **{f"VPhase{i + 1}": Field(f"voltages_v.{i}", unit="V") for i in range(3)},
    "kWhCounter": Field("energy_wh", unit="kWh"),  # ambiguous in the sources; checked for plausibility
    "kWhChargedSincePlugged": Field("session_energy_wh", unit="kWh"),
    "%Soc": Field("soc_pct", unit="%"),
    "AConfigured": Field("offered_current_a", unit="A"),
}


def openwb() -> Family:
    """openWB 2.x ``openWB/chargepoint/{id}/get/{field}`` (JSON values), the inbound "MQTT charge
    point" ``openWB/mqtt/chargepoint/{id}/get/{field}`` (device ``mqtt-cp{id}``), and 1.9's
    ``openWB/lp/{n}/{key}`` (plain text)."""
    return Family(
        "openwb",
        (
            Rule("openwb", P("openWB/chargepoint/{id}/get/{key+}"), "cp{id}", "json", OPENWB2),
            Rule("openwb", P("openWB/mqtt/chargepoint/{id}/get/{key+}"), "mqtt-cp{id}", "json", OPENWB2),
            Rule("openwb", P("openWB/lp/{n}/{key+}"), "lp{n}", "text", OPENWB1),
            IgnoreRule("openwb", P("openWB/#"), "openWB value not normalised"),
        ),
    )


def builtin() -> tuple[Family, ...]:
    """Every built-in family, in the order they are tried. Fresh per gateway (OpenEVSE learns bases)."""
    return (evcc(), goe(), openwb(), Family("openevse", (OpenEvse(),)), shelly(), tasmota(), esp32_evse())


def writable() -> dict[str, tuple[Writable, ...]]:
    """The settings of the built-in families by source; a device takes those of the first whose
    pattern matches the topic it last published on (an evcc loadpoint's, not the site's) and,
    as the API lists them, whose ``kinds`` hold its kind (an evcc site is a ``site``: none)."""
    return {
        "evcc": (Writable("evcc", re.compile(r"(?P<prefix>.+/loadpoints/[0-9]+)/"), EVCC_LOADPOINT_SETTINGS),),
        "goe": (Writable("goe", re.compile(r"(?P<prefix>/?go-eCharger/[^/]+)/"), GOE_SETTINGS, GOE_HINT),),
        "openevse": (Writable("openevse", None, OPENEVSE_SETTINGS),),
        "esp32evse": (
            Writable(
                "esp32evse",
                None,
                ESP32_SETTINGS,
                "the Lua bridge publishes its state every `interval` seconds (default 5): raise ?timeout= beyond it",
                timeout_s=20.0,
            ),
        ),
    }
