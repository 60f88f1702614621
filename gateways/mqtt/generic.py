"""Generic mappings from a file (``EVBUS_MQTT_MAPPINGS``, TOML or JSON), for devices without a
built-in family. Each ``[[mapping]]`` is one :class:`~gateways.mqtt.profiles.Rule`::

    [[mapping]]
    source = "thingsboard"                 # telemetry.{source}.{device}; not "raw"
    topic = "v1/devices/{device}/telemetry"  # {name} one level, {name+} several, + and # as in MQTT
    device = "{device}"                    # template over the topic's parts (default "{device}")
    payload = "object"                     # object (JSON, read by paths) | json | text (one value per topic)
    kind = "evse"                          # evse | meter | site

    [mapping.fields]                       # object: JSON paths; json/text: the {key} part ("" without one)
    power = { to = "power_w", unit = "W" }
    session = { to = "session_energy_wh", unit = "kWh" }
    currentL1 = { to = "currents_a.0", unit = "A" }
    charging = { to = "charging", type = "bool" }
    "meter.total" = { to = "energy_wh", unit = "Wh" }

``to`` is a reading field (schemas/telemetry.py FIELDS), one phase (``currents_a.0``), ``online``
(the topic is then the device's presence) or ``extra.{name}``; ``type`` is number (default), int,
bool, text or errors; ``unit`` one of gateways/mqtt/profiles.py UNITS. File mappings are tried
before the built-in families, so one can also take over a built-in family's topics.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, get_args

from gateways.mqtt.profiles import UNITS, Convert, Family, Field, Rule, TopicPattern
from schemas.subjects import RAW_SOURCE
from schemas.telemetry import FIELDS, PHASE_FIELDS

PAYLOADS = ("object", "json", "text")
KINDS = ("evse", "meter", "site")


class MappingError(ValueError):
    """The mappings file cannot be used; the message says where."""


def load(path: Path) -> tuple[Family, ...]:
    """The families a mappings file declares, one per ``source`` in file order."""
    try:
        text = path.read_bytes()
        document = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text.decode("utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise MappingError(f"{path}: {exc}") from exc
    entries = document.get("mapping") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise MappingError(f"{path}: expected a list of [[mapping]] tables")
    rules: dict[str, list[Rule]] = {}
    for n, entry in enumerate(entries, 1):
        try:
            rule = mapping_rule(entry)
        except (MappingError, ValueError, TypeError) as exc:
            raise MappingError(f"{path}: mapping {n}: {exc}") from exc
        rules.setdefault(rule.source, []).append(rule)
    return tuple(Family(source, tuple(found)) for source, found in rules.items())


def mapping_rule(entry: Any) -> Rule:
    if not isinstance(entry, dict):
        raise MappingError("expected a table")
    unknown = set(entry) - {"source", "topic", "device", "payload", "kind", "fields"}
    if unknown:
        raise MappingError(f"unknown key(s) {sorted(unknown)}")
    source = _text(entry, "source")
    if source == RAW_SOURCE:
        raise MappingError(f"source {RAW_SOURCE!r} is reserved for raw messages")
    pattern = TopicPattern(_text(entry, "topic"))
    device = entry.get("device", "{device}")
    if not isinstance(device, str) or not device:
        raise MappingError("device must be a non-empty template")
    try:
        device.format(**dict.fromkeys(pattern.names, "x"))
    except (KeyError, IndexError, ValueError) as exc:
        raise MappingError(f"device {device!r} uses a part the topic does not have: {exc}") from None
    payload = entry.get("payload", "object")
    if payload not in PAYLOADS:
        raise MappingError(f"payload must be one of {PAYLOADS}")
    kind = entry.get("kind", "evse")
    if kind not in KINDS:
        raise MappingError(f"kind must be one of {KINDS}")
    raw_fields = entry.get("fields")
    if not isinstance(raw_fields, dict) or not raw_fields:
        raise MappingError("fields must be a non-empty table")
    if payload != "object" and "key" not in pattern.names and set(raw_fields) != {""}:
        raise MappingError('a json/text mapping without a {key} part has one field, named ""')
    fields = {str(name): _field(name, spec) for name, spec in raw_fields.items()}
    presence = any(f.to == "online" for f in fields.values())
    return Rule(source, pattern, device, payload, fields, kind=kind, presence=presence)


def _field(name: str, spec: Any) -> Field:
    if isinstance(spec, str):
        spec = {"to": spec}
    if not isinstance(spec, dict) or set(spec) - {"to", "unit", "type"}:
        raise MappingError(f"field {name!r}: expected {{to, unit?, type?}}")
    to = spec.get("to")
    base, _, phase = str(to).partition(".")
    valid = (
        to == "online"
        or (isinstance(to, str) and to.startswith("extra.") and len(to) > len("extra."))
        or (base in FIELDS and not phase)
        or (base in PHASE_FIELDS and phase in ("0", "1", "2"))
    )
    if not valid:
        raise MappingError(f"field {name!r}: unknown target {to!r}")
    unit = spec.get("unit")
    if unit is not None and unit not in UNITS:
        raise MappingError(f"field {name!r}: unknown unit {unit!r} (one of {', '.join(UNITS)})")
    kind = spec.get("type", "bool" if to in ("online", "connected", "charging", "enabled") else "number")
    if kind not in get_args(Convert):
        raise MappingError(f"field {name!r}: type must be one of {get_args(Convert)}")
    return Field(str(to), kind, unit)


def _text(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise MappingError(f"{key} must be a non-empty string")
    return value
