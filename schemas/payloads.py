"""Validate OCPP payloads against the official JSON schemas shipped in the ``ocpp`` package.

jsonschema-rs validates a typical payload in about a microsecond (the ``ocpp`` package's own
jsonschema path costs ~200 µs). ``format`` keywords (date-time) are not enforced, as in the
reference library: real chargers send timestamps without a zone offset and must still be answered.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Final, Literal

import jsonschema_rs
import msgspec
import ocpp

from schemas.ocpp_j import ERROR_CODES, Protocol

Kind = Literal["request", "response"]

_SCHEMA_DIRS: Final[dict[str, Path]] = {
    "ocpp1.6": Path(ocpp.__file__).parent / "v16" / "schemas",
    "ocpp2.0.1": Path(ocpp.__file__).parent / "v201" / "schemas",
    "ocpp2.1": Path(ocpp.__file__).parent / "v21" / "schemas",
}


class Invalid(msgspec.Struct, frozen=True):
    """Why a payload failed its schema, as the CALLERROR the spec asks for."""

    code: str
    description: str
    details: dict[str, Any]


def schema_path(protocol: Protocol, action: str, kind: Kind) -> Path:
    folder = _SCHEMA_DIRS[protocol]
    if protocol == "ocpp1.6":
        name = action if kind == "request" else f"{action}Response"
    else:
        name = f"{action}Request" if kind == "request" else f"{action}Response"
        if kind == "request" and not (folder / f"{name}.json").is_file():
            name = action  # 2.1 SEND messages (NotifyPeriodicEventStream) have no suffix
    return folder / f"{name}.json"


@functools.cache
def schema(protocol: Protocol, action: str, kind: Kind) -> dict[str, Any] | None:
    path = schema_path(protocol, action, kind)
    if not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def _validator(protocol: Protocol, action: str, kind: Kind) -> Any:
    found = schema(protocol, action, kind)
    return None if found is None else jsonschema_rs.validator_for(found, validate_formats=False)


def knows(protocol: Protocol, action: str) -> bool:
    """True when ``action`` is a message of ``protocol`` (in either direction)."""
    return schema_path(protocol, action, "request").is_file()


def validate(protocol: Protocol, action: str, payload: Any, kind: Kind = "request") -> Invalid | None:
    """None when ``payload`` is valid; otherwise the CALLERROR code and a readable description."""
    validator = _validator(protocol, action, kind)
    codes = ERROR_CODES[protocol]
    if validator is None:
        return Invalid(codes.not_implemented, f"{action} is not an {protocol} action", {})
    try:
        if validator.is_valid(payload):
            return None
        error = next(iter(validator.iter_errors(payload)))
    except ValueError as exc:  # jsonschema-rs: "Recursion limit reached" (a payload nested hundreds deep)
        return Invalid(codes.format, f"payload cannot be validated: {exc}"[:255], {})
    path = "/".join(str(p) for p in error.instance_path)
    kind_name = type(error.kind).__name__
    if kind_name == "Required":
        code = codes.occurrence
    elif kind_name == "Type":
        code = codes.type
    elif kind_name == "AdditionalProperties":
        code = codes.format
    elif kind_name in ("MinItems", "MaxItems"):
        code = codes.occurrence
    else:
        code = codes.property
    where = f" at /{path}" if path else ""
    return Invalid(code, f"{error.message}{where}"[:255], {"path": f"/{path}"})


def is_send(protocol: Protocol, action: str) -> bool:
    """True for 2.1 messages that are only ever sent as SEND (no Request suffix, no Response)."""
    return protocol == "ocpp2.1" and (_SCHEMA_DIRS[protocol] / f"{action}.json").is_file()


def actions(protocol: Protocol) -> list[str]:
    """Every action that has a request schema in ``protocol``."""
    folder = _SCHEMA_DIRS[protocol]
    names = []
    for path in folder.glob("*.json"):
        stem = path.stem
        if stem.endswith("Response"):
            continue
        names.append(stem.removesuffix("Request") if protocol != "ocpp1.6" else stem)
    return sorted(names)
