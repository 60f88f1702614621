"""The NATS subject contract: every subject, stream, bucket and consumer name evbus uses.

Nothing else in evbus builds a subject by hand. Values that come from the network (station ids,
OCPP actions, idTags) become subject tokens or KV keys only through :func:`token` / :func:`kv_key`,
which escape every byte outside ``[A-Za-z0-9_-]``, so a station called ``CP.01`` or ``>`` can never
widen a subscription or reach another station's subjects.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final, Literal

Direction = Literal["in", "out"]

_SAFE: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ESCAPED_SUBJECT: Final = re.compile(r"%([0-9A-F]{2})")
_ESCAPED_KV: Final = re.compile(r"=([0-9A-F]{2})")


def _escape(value: str, mark: str) -> str:
    if not value:
        raise ValueError("an empty string cannot become a subject token")
    raw = value.encode("utf-8")
    if all(b in _SAFE for b in raw):
        return value
    return "".join(chr(b) if b in _SAFE else f"{mark}{b:02X}" for b in raw)


def _unescape(escaped: str, pattern: re.Pattern[str]) -> str:
    raw = pattern.sub(lambda m: chr(int(m.group(1), 16)), escaped)
    return raw.encode("latin-1").decode("utf-8")


def token(value: str) -> str:
    """The subject token of a station id (or any network string): ``CP.01`` → ``CP%2E01``."""
    return _escape(value, "%")


def untoken(subject_token: str) -> str:
    """Inverse of :func:`token`."""
    return _unescape(subject_token, _ESCAPED_SUBJECT)


def kv_key(value: str) -> str:
    """A JetStream KV key for a network string. KV keys do not allow ``%``, so ``=`` escapes."""
    return _escape(value, "=")


def kv_subject(bucket: str, key: str) -> str:
    """The subject a put of ``key`` in KV ``bucket`` is published on (how nats-py's ``kv.put`` does it)."""
    return f"$KV.{bucket}.{key}"


def from_kv_key(key: str) -> str:
    """Inverse of :func:`kv_key`."""
    return _unescape(key, _ESCAPED_KV)


# --- streams, buckets, consumers -------------------------------------------------------------

STREAM_OCPP: Final = "OCPP"
STREAM_EVENTS: Final = "EVENTS"
STREAM_TELEMETRY: Final = "TELEMETRY"

BUCKET_STATIONS: Final = "stations"  # presence: station → gateway holding its socket
BUCKET_TOKENS: Final = "tokens"  # idTag/idToken → status, expiry, parent
BUCKET_REGISTRY: Final = "registry"  # registered stations: password hash, notes
BUCKET_CSMS: Final = "csms"  # CSMS processor state: transaction ids, idempotency keys
BUCKET_USERS: Final = "users"  # API users: password hashes
BUCKET_PROFILES: Final = "charging_profiles"  # stored charging profiles by id
BUCKET_MQTT_IGNORE: Final = "mqtt_ignore"  # operators' MQTT ignore filters: filter → who added it, when
BUCKET_MQTT_GATEWAYS: Final = "mqtt_gateways"  # presence: MQTT gateway → broker, started-at (TTL)

# counters in KV ``csms`` (evbus.counters.KvCounter)
COUNTER_RESERVATIONS: Final = "reservation-counter"  # reservation ids evbus allocates for ReserveNow
COUNTER_REQUESTS: Final = "request-counter"  # 2.x requestId / remoteStartId of the CALLs evbus sends
COUNTER_PROFILES: Final = "charging-profile-counter"  # ids of stored charging profiles

CONSUMER_CSMS: Final = "csms"

# --- OCPP frames ------------------------------------------------------------------------------

INVALID: Final = "_invalid"  # action token of frames that are not valid OCPP-J

# Headers on every ocpp.* message (DESIGN §3). Ours never use the reserved Nats- prefix.
H_STATION: Final = "Ocpp-Station"
H_DIRECTION: Final = "Ocpp-Direction"
H_TYPE: Final = "Ocpp-Type"
H_ACTION: Final = "Ocpp-Action"
H_ID: Final = "Ocpp-Id"
H_PROTOCOL: Final = "Ocpp-Protocol"
H_GATEWAY: Final = "Ocpp-Gateway"
H_CONNECTION: Final = "Ocpp-Connection"
H_RECEIVED_AT: Final = "Ocpp-Received-At"
H_ERROR: Final = "Ocpp-Error"  # why a frame went to _invalid
H_MSG_ID: Final = "Nats-Msg-Id"


def frame_headers(
    *,
    station: str,
    direction: Direction,
    kind: str,
    action: str,
    unique_id: str,
    protocol: str,
    msg_id: str,
    received_at: str,
    gateway: str = "",
    connection: str = "",
) -> dict[str, str]:
    """The headers of DESIGN §3 on one ``ocpp.*`` frame; every writer of frames builds them here."""
    return {
        H_STATION: station,
        H_DIRECTION: direction,
        H_TYPE: kind,
        H_ACTION: action,
        H_ID: unique_id,
        H_PROTOCOL: protocol,
        H_GATEWAY: gateway,
        H_CONNECTION: connection,
        H_RECEIVED_AT: received_at,
        H_MSG_ID: msg_id,
    }


def ocpp_frame(station: str, direction: Direction, action: str) -> str:
    """``ocpp.{station}.{in|out}.{action}`` — one OCPP-J frame."""
    return f"ocpp.{token(station)}.{direction}.{token(action)}"


def ocpp_invalid(station: str, direction: Direction) -> str:
    """``ocpp.{station}.{in|out}._invalid`` — a frame that is not valid OCPP-J, or our answer to it."""
    return f"ocpp.{token(station)}.{direction}.{INVALID}"


def ocpp_conn(station: str, event: str) -> str:
    """``ocpp.{station}.conn.{event}`` — connected, disconnected, replaced, rejected."""
    return f"ocpp.{token(station)}.conn.{token(event)}"


def ocpp_station(station: str) -> str:
    """Everything about one station: ``ocpp.{station}.>``."""
    return f"ocpp.{token(station)}.>"


def ocpp_station_out(station: str) -> str:
    """Every frame to one station: what the gateway holding its socket listens to."""
    return f"ocpp.{token(station)}.out.>"


OCPP_ALL: Final = "ocpp.>"
OCPP_ALL_IN: Final = "ocpp.*.in.>"  # what the CSMS processor consumes


def station_of(subject: str) -> str:
    """The decoded station id of any ``ocpp.{station}.…`` subject."""
    parts = subject.split(".")
    if len(parts) < 3 or parts[0] != "ocpp":
        raise ValueError(f"not an ocpp subject: {subject!r}")
    return untoken(parts[1])


# --- events -----------------------------------------------------------------------------------

EVENTS_ALL: Final = "events.>"


def security_event(category: str) -> str:
    """``events.security.{category}`` — auth_failed, bad_frame, unknown_station, …"""
    return f"events.security.{token(category)}"


def transaction_event(station: str, event: str) -> str:
    """``events.transaction.{station}.{event}`` — e.g. orphan_stop."""
    return f"events.transaction.{token(station)}.{token(event)}"


def command_event(station: str, status: str) -> str:
    """``events.command.{station}.{status}`` — requested, sent, answered, failed, timed_out."""
    return f"events.command.{token(station)}.{token(status)}"


def upload_event(station: str, event: str) -> str:
    """``events.upload.{station}.{event}`` — a file the station uploaded: received, deleted."""
    return f"events.upload.{token(station)}.{token(event)}"


def admin_event(station: str, action: str) -> str:
    """``events.admin.{station}.{action}`` — an operator's change to the record, e.g. forget_connections."""
    return f"events.admin.{token(station)}.{token(action)}"


# --- telemetry and commands -------------------------------------------------------------------

TELEMETRY_ALL: Final = "telemetry.>"


def telemetry(source: str, device: str) -> str:
    """``telemetry.{source}.{device}`` — one normalised reading."""
    return f"telemetry.{token(source)}.{token(device)}"


TELEMETRY_READINGS: Final = "telemetry.*.*"  # every normalised reading, and nothing else


def device_id(source: str, device: str) -> str:
    """The API's id of a device: the tail of its reading subject, ``{source}.{device}`` as tokens
    (``evcc.lp1``, ``shelly.plug%2F1``)."""
    return f"{token(source)}.{token(device)}"


def device_of(device_id: str) -> tuple[str, str] | None:
    """Inverse of :func:`device_id`: (source, device), or None when ``device_id`` is not two tokens
    as :func:`token` writes them (``%41`` for ``A`` is not)."""
    source_token, dot, device_token = device_id.partition(".")
    if not dot or not source_token or not device_token:
        return None
    try:
        source, device = untoken(source_token), untoken(device_token)
    except (UnicodeDecodeError, ValueError):
        return None
    return (source, device) if device_id == f"{token(source)}.{token(device)}" else None


def reading_device(subject: str) -> tuple[str, str, str] | None:
    """``telemetry.{source}.{device}`` → (device id, source, device): the id is the subject's tail
    as written (:func:`device_id` for what the gateway writes), the names decoded (left as written
    where :func:`token` did not write them). None for any other subject (a raw message's)."""
    parts = subject.split(".")
    if len(parts) != 3 or parts[0] != "telemetry":
        return None
    try:
        source, device = untoken(parts[1]), untoken(parts[2])
    except (UnicodeDecodeError, ValueError):
        source, device = parts[1], parts[2]
    return f"{parts[1]}.{parts[2]}", source, device


RAW_SOURCE: Final = "raw"  # second token of raw device messages; no reading source may take it
MQTT_RAW_ALL: Final = "telemetry.raw.mqtt.>"
MAX_RAW_SUBJECT: Final = 1024  # longer escaped topics are stored under a digest (the topic is in a header)
_EMPTY_LEVEL: Final = "%"  # token() never writes a bare % (only %XX), so an empty MQTT level is unambiguous
_DIGEST_LEVEL: Final = "%%"


def mqtt_raw(topic: str) -> str:
    """``telemetry.raw.mqtt.{level}.{level}…`` — one MQTT message as the broker delivered it.

    Each topic level becomes one token through :func:`token` (``a.b`` → ``a%2Eb``, ``ö`` →
    ``%C3%B6``), an empty level (the leading ``/`` of old go-e firmware, ``a//b``) becomes ``%``.
    So ``telemetry.raw.mqtt.evcc.loadpoints.>`` is one evcc's loadpoints, and the subject is always
    at least four tokens: ``telemetry.*.*`` never sees a raw message. A topic whose subject would
    exceed :data:`MAX_RAW_SUBJECT` bytes goes to ``telemetry.raw.mqtt.%%.{sha256 of the topic}``.
    """
    levels = ".".join(token(level) if level else _EMPTY_LEVEL for level in topic.split("/"))
    subject = f"telemetry.{RAW_SOURCE}.mqtt.{levels}"
    if len(subject) > MAX_RAW_SUBJECT:
        digest = hashlib.sha256(topic.encode("utf-8")).hexdigest()
        return f"telemetry.{RAW_SOURCE}.mqtt.{_DIGEST_LEVEL}.{digest}"
    return subject


def mqtt_topic_of(subject: str) -> str | None:
    """Inverse of :func:`mqtt_raw`; None for a digest subject (read the ``Mqtt-Topic`` header)."""
    prefix = f"telemetry.{RAW_SOURCE}.mqtt."
    if not subject.startswith(prefix):
        raise ValueError(f"not a raw MQTT subject: {subject!r}")
    levels = subject[len(prefix) :].split(".")
    if levels[0] == _DIGEST_LEVEL:
        return None
    return "/".join("" if level == _EMPTY_LEVEL else untoken(level) for level in levels)


def mqtt_event(kind: str) -> str:
    """``events.mqtt.{kind}`` — the MQTT gateway's own events (connected, disconnected, invalid,
    unmatched, setting) and the API's ``ignore_changed``."""
    return f"events.mqtt.{token(kind)}"


def mqtt_control(gateway: str, verb: str) -> str:
    """``evbus.mqtt.{gateway}.{verb}`` — request/reply to one MQTT gateway instance (``status``,
    ``setting``), captured by no stream."""
    return f"evbus.mqtt.{token(gateway)}.{token(verb)}"


# Headers on raw MQTT messages (docs/subjects.md). Ours never use the reserved Nats- prefix.
H_MQTT_TOPIC: Final = "Mqtt-Topic"  # the topic, percent-encoded outside printable ASCII (and % itself)
H_MQTT_QOS: Final = "Mqtt-Qos"
H_MQTT_RETAIN: Final = "Mqtt-Retain"  # "true": replayed by the broker on subscribe, may be old
H_MQTT_RECEIVED_AT: Final = "Mqtt-Received-At"
H_MQTT_GATEWAY: Final = "Mqtt-Gateway"
H_MQTT_OUTCOME: Final = "Mqtt-Outcome"  # reading, unchanged, ignored, unmatched, invalid
H_MQTT_MAPPING: Final = "Mqtt-Mapping"  # the source whose mapping took it
H_MQTT_ERROR: Final = "Mqtt-Error"  # why it was not understood
H_MQTT_BYTES: Final = "Mqtt-Payload-Bytes"  # size of a payload too large to store (the body is then empty)


def command(station: str, action: str) -> str:
    """``cmd.{station}.{action}`` — request/reply, captured by no stream."""
    return f"cmd.{token(station)}.{token(action)}"


COMMANDS_ALL: Final = "cmd.*.*"  # what the command processors serve (queue group ``commands``)


def gateway_control(gateway: str, verb: str) -> str:
    """``evbus.gateway.{gateway}.{verb}`` — request/reply to one gateway instance (e.g. ``disconnect``),
    captured by no stream."""
    return f"evbus.gateway.{token(gateway)}.{token(verb)}"
