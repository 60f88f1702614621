"""Minimal valid instances of the OCPP JSON schemas, built deterministically.

``example(schema)`` walks a schema (draft-04 for 1.6, draft-06 for 2.x) and returns the smallest
sensible instance: only required properties, the first enum value, the shortest allowed string,
the lowest allowed number, ``minItems`` array items. The same schema always gives the same value,
so a failing test shows the exact payload it sent.
"""

from __future__ import annotations

from typing import Any, Final

DATE_TIME: Final = "2026-11-21T10:00:00Z"
URI: Final = "https://evbus.test/"


def example(schema: dict[str, Any]) -> Any:
    """A minimal instance that validates against ``schema`` (local ``$ref`` resolved)."""
    return _build(schema, root=schema)


def _build(node: dict[str, Any], root: dict[str, Any]) -> Any:
    if "$ref" in node:
        return _build(_resolve(node["$ref"], root), root)
    for choice in ("anyOf", "oneOf"):
        if choice in node:
            return _build(node[choice][0], root)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type", "object")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    return _BUILDERS[kind](node, root)


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported, not {ref!r}")
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target  # type: ignore[no-any-return]


def _object(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    properties = node.get("properties", {})
    return {name: _build(properties.get(name, {}), root) for name in node.get("required", [])}


def _array(node: dict[str, Any], root: dict[str, Any]) -> list[Any]:
    count = max(node["minItems"], 1) if "minItems" in node else 0
    if "maxItems" in node:
        count = min(count, node["maxItems"])
    items = node.get("items", {})
    if isinstance(items, list):  # tuple form: one schema per position
        return [_build(item, root) for item in items[: max(count, len(items))]]
    return [_build(items, root) for _ in range(count)]


def _string(node: dict[str, Any], root: dict[str, Any]) -> str:
    if node.get("format") == "date-time":
        return DATE_TIME
    if node.get("format") == "uri" and len(URI) <= node.get("maxLength", len(URI)):
        return URI
    length = max(node.get("minLength", 1), 1)
    return "x" * min(length, node.get("maxLength", length))


def _number(node: dict[str, Any], root: dict[str, Any]) -> float:
    return float(_integer(node, root))


def _integer(node: dict[str, Any], root: dict[str, Any]) -> int:
    value = 0
    if "minimum" in node:
        value = int(-(-node["minimum"] // 1))  # the smallest integer >= minimum
    if "maximum" in node:
        value = min(value, int(node["maximum"] // 1))
    return value


def _boolean(node: dict[str, Any], root: dict[str, Any]) -> bool:
    return False


_BUILDERS: Final = {
    "object": _object,
    "array": _array,
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
}
