"""Declarative device profiles: topic patterns with named parts, payload parsers, units.

A device family is a list of :class:`Rule` tried in order. A rule matches a topic against its
:class:`TopicPattern` (``{root+}/loadpoints/{lp}/{key+}``), reads the payload the way the family
writes it (``text`` scalars, one ``json`` value per topic, or a JSON ``object`` read by paths) and
turns each value into normalised fields through a :class:`Field` (target, unit, conversion). What
comes out is an :class:`Update` for one device, an :class:`Ignored` (the family's topic, nothing to
normalise: a ``/set`` command, a key we do not map), an :class:`Invalid` (the family's topic with a
payload it cannot have) or None (not this rule's topic). Pure logic: no I/O, no clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import msgspec

from schemas.telemetry import Kind, camel

Payload = Literal["text", "json", "object"]
Convert = Literal["number", "int", "bool", "text", "errors"]

# source unit → (canonical unit, factor)
UNITS: Final[dict[str, tuple[str, float]]] = {
    "W": ("W", 1.0),
    "kW": ("W", 1000.0),
    "Wh": ("Wh", 1.0),
    "kWh": ("Wh", 1000.0),
    "Ws": ("Wh", 1 / 3600),
    "A": ("A", 1.0),
    "mA": ("A", 0.001),
    "dA": ("A", 0.1),
    "V": ("V", 1.0),
    "%": ("%", 1.0),
    "C": ("C", 1.0),
    "dC": ("C", 0.1),  # tenths of a degree (OpenEVSE temp)
}

# canonical field → (low, high, hint when a value is out of range)
PLAUSIBLE: Final[dict[str, tuple[float, float, str]]] = {
    "power_w": (-1_000_000, 1_000_000, "over 1 MW: kW counted twice, or mW?"),
    "energy_wh": (0, 1e9, "over 1 GWh: Ws or mWh instead of Wh?"),
    "session_energy_wh": (0, 250_000, "over 250 kWh in one session: Ws (3600x) or mWh instead of Wh?"),
    "currents_a": (-1000, 1000, "over 1000 A: mA instead of A?"),
    "offered_current_a": (0, 1000, "over 1000 A: mA instead of A?"),
    "voltages_v": (0, 1000, "over 1000 V: a sum of phases, or mV?"),
    "soc_pct": (0, 100, "not a percentage"),
    "temperature_c": (-60, 200, "over 200 °C: tenths of a degree?"),
}

EMPTY_TEXT: Final = frozenset({"", "nil", "null", "none", "-", "NaN", "nan", "+Inf", "-Inf", "Inf"})
TRUE: Final = frozenset({"true", "1", "on", "yes", "online", "connected", "active"})
FALSE: Final = frozenset({"false", "0", "off", "no", "offline", "disconnected", "disabled"})

UNSET: Final = None  # a value a device erased (empty payload, JSON null): the field becomes absent


@dataclass(frozen=True, slots=True)
class Update:
    """Normalised values for one device. ``values`` maps a field (``power_w``, ``currents_a.0``,
    ``extra.pvPowerW``) to its value, or to None when the device erased it."""

    source: str
    device: str
    kind: Kind = "evse"
    values: Mapping[str, Any] = field(default_factory=dict)
    online: bool | None = None  # set by presence topics (LWT, announce, status)
    group: str | None = None  # devices published by one program (one evcc): its status applies to all
    fan_out: bool = False  # apply ``online`` to every known device of ``source`` in ``group``
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Ignored:
    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class Invalid:
    source: str
    device: str | None
    reason: str


Outcome = Update | Ignored | Invalid


class TopicPattern:
    """``evcc/loadpoints/{lp}/{key+}``: ``{name}`` is one level, ``{name+}`` one or more, ``+`` an
    anonymous level, a trailing ``#`` anything. Literal levels match exactly."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        parts = []
        for level in pattern.split("/"):
            if level == "+":
                parts.append("[^/]+")
            elif level == "#":
                parts.append(".*")
            else:
                parts.append(_level_regex(level, pattern))
        self._regex = re.compile("/".join(parts), re.DOTALL)
        self.names = frozenset(self._regex.groupindex)

    def match(self, topic: str) -> dict[str, str] | None:
        m = self._regex.fullmatch(topic)
        return None if m is None else m.groupdict()

    def __repr__(self) -> str:
        return f"TopicPattern({self.pattern!r})"


_NAMED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}")


def _level_regex(level: str, pattern: str) -> str:
    """One level: literal text with ``{name}`` (within the level) or ``{name+}`` (across levels) parts."""
    out, at = [], 0
    for named in _NAMED.finditer(level):
        out.append(re.escape(level[at : named.start()]))
        out.append(f"(?P<{named[1]}>{'.+?' if named[2] else '[^/]+?'})")
        at = named.end()
    rest = level[at:]
    if any(c in rest for c in "{}+#"):
        raise ValueError(f"bad topic pattern level {level!r} in {pattern!r}")
    out.append(re.escape(rest))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Field:
    """One source value → normalised fields.

    ``to`` is a field of :class:`schemas.telemetry.Reading` (``power_w``), one phase of a phase
    field (``currents_a.1``), a whole phase list (``currents_a``), ``online``, or ``extra.{name}``.
    ``table`` maps a device enum (go-e ``car``, OpenEVSE ``state``) to several fields at once.
    """

    to: str = ""
    convert: Convert = "number"
    unit: str | None = None
    table: Mapping[Any, Mapping[str, Any]] | None = None
    scale: Callable[[Any], dict[str, Any]] | None = None  # built-in families only: custom reader


class BadValue(ValueError):
    """A payload value of the wrong type or shape; the message says which."""


def number(value: Any) -> float | None:
    """A JSON number or a numeric string; None for NaN/Inf and the empty forms evcc writes."""
    if isinstance(value, bool):
        raise BadValue(f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        return None if isinstance(value, float) and not math.isfinite(value) else float(value)
    if isinstance(value, str):
        text = value.strip()
        if text in EMPTY_TEXT:
            return None
        try:
            parsed = float(text)
        except ValueError:
            raise BadValue(f"expected a number, got {_short(value)}") from None
        return parsed if math.isfinite(parsed) else None
    raise BadValue(f"expected a number, got {_short(value)}")


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    raise BadValue(f"expected a boolean, got {_short(value)}")


def convert(spec: Field, value: Any) -> tuple[dict[str, Any], list[str]]:
    """Normalised fields from one source value, and flags for the implausible ones (left out)."""
    if spec.scale is not None:
        return _checked(spec.scale(value))
    if value is None or (isinstance(value, str) and value.strip() in EMPTY_TEXT and spec.convert != "text"):
        if spec.table is not None:
            return dict.fromkeys(_table_fields(spec.table)), []
        return {spec.to: UNSET}, []
    if spec.table is not None:
        key = _enum_key(value)
        if key not in spec.table:
            raise BadValue(f"unknown value {_short(value)}")
        return _checked(dict(spec.table[key]))
    if spec.convert == "bool":
        return {spec.to: boolean(value)}, []
    if spec.convert == "text":
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise BadValue(f"expected text, got {_short(value)}")
        return {spec.to: str(value) if value != "" else UNSET}, []
    if spec.convert == "errors":
        return {spec.to: _errors(value)}, []
    if spec.to in ("currents_a", "voltages_v"):
        return _checked(phases(spec, value))
    n = number(value)
    if spec.convert == "int":
        return _checked({spec.to: None if n is None else round(n)})
    return _checked({spec.to: _scaled(spec, n)})


def phases(spec: Field, value: Any) -> dict[str, Any]:
    """A list of 1-3 per-phase numbers as ``{to}.0``… fields, scaled, not yet checked for
    plausibility (a ``Field.scale`` function returns these and :func:`convert` checks them)."""
    if not isinstance(value, list) or not 1 <= len(value) <= 3:
        raise BadValue(f"expected a list of 1-3 numbers, got {_short(value)}")
    return {f"{spec.to}.{i}": _scaled(spec, number(v)) for i, v in enumerate(value)}


def _scaled(spec: Field, n: float | None) -> float | None:
    if n is None:
        return None
    factor = UNITS[spec.unit][1] if spec.unit else 1.0
    return round(n * factor, 6)


def _checked(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    flags = []
    for name, value in list(values.items()):
        base = name.split(".", 1)[0]
        bounds = PLAUSIBLE.get(base)
        if bounds is None or not isinstance(value, int | float) or isinstance(value, bool):
            continue
        low, high, hint = bounds
        if not low <= value <= high:
            del values[name]
            flags.append(f"{camel(base)} {value:g} is implausible ({hint}); not used")
    return values, flags


def _table_fields(table: Mapping[Any, Mapping[str, Any]]) -> set[str]:
    return {name for fields in table.values() for name in fields}


def _enum_key(value: Any) -> Any:
    if isinstance(value, bool):
        raise BadValue(f"expected an enum value, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        return int(text) if text.lstrip("-").isdigit() else text
    return value


def _errors(value: Any) -> list[str]:
    if value in (None, False, 0, "", "0"):
        return []
    if value is True:
        return ["error"]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, int | str):
        return [str(value)]
    raise BadValue(f"expected an error list, got {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_decode_json = msgspec.json.Decoder().decode


def parse_json(payload: bytes) -> Any:
    try:
        return _decode_json(payload)
    except msgspec.DecodeError as exc:
        raise BadValue(f"not JSON: {exc}") from None


def path_get(document: Any, path: str) -> tuple[bool, Any]:
    """``aenergy.total`` in a JSON object; (False, None) when a member is missing."""
    current = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


DeviceName = str | Callable[[dict[str, str]], str]


class Matcher(Protocol):
    """What a family's rules have in common: a topic and payload in, an outcome or None out."""

    def apply(self, topic: str, payload: bytes) -> Outcome | None: ...


@dataclass(frozen=True, slots=True)
class Rule:
    """One topic shape of a family.

    - ``payload="text"`` / ``"json"``: one value per topic; the ``{key}`` part picks the field from
      ``fields`` (a rule without ``{key}`` uses the ``""`` entry). A key the family publishes but we
      do not normalise is :class:`Ignored`.
    - ``payload="object"``: a JSON object; ``fields`` maps paths (``aenergy.total``) to fields, a
      missing member changes nothing, a ``null`` one erases the field.
    ``device`` is a template over the pattern's parts (``"lp{lp}"``) or a function of them.
    ``accept`` may refuse a payload as not this family's (esp32-evse's generic ``{id}/state``).
    """

    source: str
    pattern: TopicPattern
    device: DeviceName
    payload: Payload
    fields: Mapping[str, Field]
    kind: Kind = "evse"
    group: str | None = None  # template, like device
    fan_out: bool = False
    presence: bool = False  # the field ``online`` of this rule is presence, not a value
    skip_keys: Callable[[str], bool] | None = None  # keys that are Ignored (``…/set`` commands)
    accept: Callable[[Any], bool] | None = None

    def apply(self, topic: str, payload: bytes) -> Outcome | None:
        parts = self.pattern.match(topic)
        if parts is None:
            return None
        device = self.device(parts) if callable(self.device) else self.device.format(**parts)
        group = self.group.format(**parts) if self.group else None
        if self.payload == "object":
            return self._object(device, group, payload)
        key = parts.get("key", "")
        if self.skip_keys is not None and self.skip_keys(key):
            return Ignored(self.source, f"{key!r} is not telemetry")
        spec = self.fields.get(key)
        if spec is None:
            return Ignored(self.source, f"{key!r} is not normalised")
        try:
            value: Any = _text(payload) if self.payload == "text" else (None if not payload else parse_json(payload))
            values, flags = convert(spec, value)
        except BadValue as exc:
            return Invalid(self.source, device, f"{key}: {exc}")
        return self._update(device, group, values, flags)

    def _object(self, device: str, group: str | None, payload: bytes) -> Outcome | None:
        try:
            document = parse_json(payload)
        except BadValue as exc:
            return None if self.accept is not None else Invalid(self.source, device, str(exc))
        if self.accept is not None and not self.accept(document):
            return None
        if not isinstance(document, dict):
            return Invalid(self.source, device, f"expected a JSON object, got {_short(document)}")
        values: dict[str, Any] = {}
        flags: list[str] = []
        problems = []
        for path, spec in self.fields.items():
            found, value = path_get(document, path)
            if not found:
                continue
            try:
                converted, more = convert(spec, value)
            except BadValue as exc:
                problems.append(f"{path}: {exc}")
                continue
            values.update(converted)
            flags.extend(more)
        if problems and not values:
            return Invalid(self.source, device, "; ".join(problems))
        flags.extend(f"{p}; not used" for p in problems)
        return self._update(device, group, values, flags)

    def _update(self, device: str, group: str | None, values: dict[str, Any], flags: list[str]) -> Update:
        online = None
        if self.presence and "online" in values:
            online = values.pop("online")
        return Update(
            self.source,
            device,
            self.kind,
            values,
            online=online,
            group=group,
            fan_out=self.fan_out,
            flags=tuple(flags),
        )


def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise BadValue("not UTF-8 text") from None


@dataclass(frozen=True, slots=True)
class Family:
    """A device family: its source name and its rules, tried in order (the first match wins)."""

    source: str
    rules: tuple[Matcher, ...]

    def apply(self, topic: str, payload: bytes) -> Outcome | None:
        for rule in self.rules:
            outcome = rule.apply(topic, payload)
            if outcome is not None:
                return outcome
        return None


def classify(families: tuple[Family, ...], topic: str, payload: bytes) -> Outcome | None:
    """The first family's outcome for this message; None: no family knows the topic."""
    for family in families:
        outcome = family.apply(topic, payload)
        if outcome is not None:
            return outcome
    return None


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """A family's topics that carry nothing to normalise (commands, config, discovery)."""

    source: str
    pattern: TopicPattern
    reason: str = "not telemetry"

    def apply(self, topic: str, payload: bytes) -> Outcome | None:
        return Ignored(self.source, self.reason) if self.pattern.match(topic) is not None else None
