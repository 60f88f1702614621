"""MQTT routes: the gateways' status, the operators' ignore filters, and device settings (DESIGN §7;
docs/adr/0010-mqtt-gateway.md, "Control plane").

The API holds no MQTT gateway, and may run in another process than any: it finds the running
gateways in KV ``mqtt_gateways`` and asks each over NATS (``evbus.mqtt.{gateway}.status``,
``.setting``). Ignore filters live in KV ``mqtt_ignore``, which every gateway follows.

``GET /api/devices/{id}/settings`` lists the settings a device takes, from the same table the writes
are checked against (gateways/mqtt/families.py), with the value the device shows now.

Setting answers: ``200 {status: "applied", echoed: true, …}`` once the device showed the new value
(``"unchanged"``, echoed false: it showed it already, and families publish changes only); ``202
{status: "sent", echoed: false}`` for a family that shows no settings back; ``404`` unknown device,
or a key the device's family does not take (with ``validKeys``); ``422`` a value it does not take;
``502`` the broker refused the message; ``503`` no MQTT gateway, or it is not connected to its
broker; ``504`` sent, but the device did not show the value within the timeout.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, JSONBody, QueryParameter
from nats.errors import Error as NatsError
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from api.monitoring import listing
from api.services import Services, Svc, json_response
from evbus.clock import rfc3339
from evbus.kv import current
from gateways.mqtt import families
from gateways.mqtt.control import MAX_SETTING_TIMEOUT_S
from gateways.mqtt.ignore import MAX_FILTER_BYTES, MAX_OPERATOR_FILTERS, OWN_SUBJECTS, filter_problem
from gateways.mqtt.writes import Refused, Writable, is_number, of_kind, precheck
from projections import devices, views
from schemas import subjects
from schemas.telemetry import (
    IgnoreChanged,
    IgnoredTopic,
    MqttPresence,
    MqttStatus,
    SettingReply,
    SettingRequest,
    encode,
)

log = logging.getLogger(__name__)

STATUS_TIMEOUT_S: Final = 2.0  # per gateway, all asked at once
REPLY_MARGIN_S: Final = 10.0  # beyond the echo wait: the broker's PUBACK and storing the event
WRITABLE: Final = families.writable()  # the built-in families' settings tables (pure data)

_presence = msgspec.json.Decoder(MqttPresence).decode
_ignored = msgspec.json.Decoder(IgnoredTopic).decode
_status = msgspec.json.Decoder(MqttStatus).decode
_reply = msgspec.json.Decoder(SettingReply).decode


# --- reading the buckets ----------------------------------------------------------------------


async def _snapshot(kv: KeyValue) -> list[bytes]:
    """Every current value of a bucket (evbus.kv.current: not nats-py's watcher, which can miss one)."""
    return list((await current(kv)).values())


async def running_gateways(svc: Services) -> list[MqttPresence]:
    """The MQTT gateways KV ``mqtt_gateways`` says are running, by id."""
    found = []
    for value in await _snapshot(await svc.kv(subjects.BUCKET_MQTT_GATEWAYS)):
        try:
            found.append(_presence(value))
        except msgspec.DecodeError:
            log.warning("ignoring a malformed value in bucket %s", subjects.BUCKET_MQTT_GATEWAYS)
    return sorted(found, key=lambda p: p.gateway)


async def _operator_filters(svc: Services) -> list[IgnoredTopic]:
    found = []
    for value in await _snapshot(await svc.kv(subjects.BUCKET_MQTT_IGNORE)):
        try:
            found.append(_ignored(value))
        except msgspec.DecodeError:
            log.warning("ignoring a malformed value in bucket %s", subjects.BUCKET_MQTT_IGNORE)
    return sorted(found, key=lambda f: f.filter)


# --- status -----------------------------------------------------------------------------------


class StatusAnswer(msgspec.Struct, kw_only=True, rename="camel"):
    gateways: list[MqttStatus]  # every gateway that answered; [] when none runs
    unreachable: list[MqttPresence]  # announced (KV mqtt_gateways) but did not answer: stopped in the last 90 s


async def _ask_status(svc: Services, presence: MqttPresence) -> MqttStatus | None:
    try:
        msg = await svc.nc.request(subjects.mqtt_control(presence.gateway, "status"), b"", timeout=STATUS_TIMEOUT_S)
        return _status(msg.data)
    except (NatsError, TimeoutError, msgspec.DecodeError) as exc:
        log.warning("MQTT gateway %s did not answer its status request: %r", presence.gateway, exc)
        return None


@get("/api/mqtt/status", operation_id="mqttStatus", tags=["mqtt"])
async def mqtt_status(svc: Svc) -> StatusAnswer:
    """Each running MQTT gateway: its broker (address, never credentials), whether it is connected
    and since when, how often it connected, its subscriptions, messages per second over the last
    10 s, messages by outcome, devices and topics seen, the newest unmatched topics and its ignore
    filters. No gateway: ``{"gateways": [], "unreachable": []}`` at once (no waiting)."""
    gateways = await running_gateways(svc)
    answers = await asyncio.gather(*(_ask_status(svc, p) for p in gateways))
    return StatusAnswer(
        gateways=[a for a in answers if a is not None],
        unreachable=[p for p, a in zip(gateways, answers, strict=True) if a is None],
    )


# --- ignored topics ---------------------------------------------------------------------------

Origin = Literal["builtIn", "setting", "operator"]


class IgnoredTopicView(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    filter: str
    origin: Origin  # builtIn: evbus's own subjects; setting: EVBUS_MQTT_IGNORE; operator: this API
    removable: bool
    added_by: str | None = None
    added_at: str | None = None
    note: str | None = None
    gateways: list[str] | None = None  # setting: the gateways whose EVBUS_MQTT_IGNORE holds it


class NewIgnoredTopic(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    filter: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=MAX_FILTER_BYTES,
            description="an MQTT topic filter: '+' a whole level, '#' the whole last level; one level named",
        ),
    ]
    note: Annotated[str, msgspec.Meta(max_length=200, description="why, for the record")] | None = None


class DeletedIgnoredTopic(msgspec.Struct):
    deleted: str


FilterParam = Annotated[str, QueryParameter(name="filter", description="the filter, exactly as listed")]


def _view(record: IgnoredTopic) -> IgnoredTopicView:
    return IgnoredTopicView(
        filter=record.filter,
        origin="operator",
        removable=True,
        added_by=record.added_by,
        added_at=record.added_at,
        note=record.note,
    )


def _setting_filters(gateways: list[MqttPresence]) -> dict[str, list[str]]:
    """EVBUS_MQTT_IGNORE filters of the running gateways → the gateways that have each."""
    found: dict[str, list[str]] = {}
    for presence in gateways:
        for topic_filter in presence.ignore_setting:
            found.setdefault(topic_filter, []).append(presence.gateway)
    return found


@get("/api/mqtt/ignored-topics", operation_id="listIgnoredTopics", tags=["mqtt"])
async def list_ignored_topics(svc: Svc) -> Response[list[IgnoredTopicView]]:
    """Every MQTT topic filter whose messages the gateways drop unstored: evbus's own subjects
    (built in), each running gateway's ``EVBUS_MQTT_IGNORE`` (both read-only here), and the
    operators' (removable)."""
    rows = [IgnoredTopicView(filter=f, origin="builtIn", removable=False) for f in OWN_SUBJECTS]
    for topic_filter, gateways in sorted(_setting_filters(await running_gateways(svc)).items()):
        rows.append(IgnoredTopicView(filter=topic_filter, origin="setting", removable=False, gateways=gateways))
    rows.extend(_view(record) for record in await _operator_filters(svc))
    return listing(rows, len(rows))


async def _read_only(svc: Services, topic_filter: str) -> str | None:
    """Why ``topic_filter`` is not the operators' to add or remove, or None."""
    if topic_filter in OWN_SUBJECTS:
        return f"{topic_filter!r} is built in (evbus's own subjects) and cannot be changed"
    gateways = _setting_filters(await running_gateways(svc)).get(topic_filter)
    if gateways:
        return f"{topic_filter!r} is set by EVBUS_MQTT_IGNORE of gateway {', '.join(gateways)}: change it there"
    return None


async def _current(kv: KeyValue, key: str) -> IgnoredTopic | None:
    try:
        entry = await kv.get(key)
    except (KeyNotFoundError, KeyDeletedError):
        return None
    try:
        return _ignored(entry.value) if entry.value else None
    except msgspec.DecodeError:  # not written by this API: as if absent
        return None


@post("/api/mqtt/ignored-topics", operation_id="addIgnoredTopic", tags=["mqtt"], status_code=201)
async def add_ignored_topic(
    svc: Svc, request: Request[Any, Any, Any], data: JSONBody[NewIgnoredTopic]
) -> Response[IgnoredTopicView]:
    """Drop MQTT messages matching ``filter`` unstored, on every gateway, from now on and after
    restarts (KV ``mqtt_ignore``; running gateways apply it within milliseconds). ``201`` added,
    ``200`` it was there already; recorded as ``events.mqtt.ignore_changed``."""
    problem = filter_problem(data.filter)
    if problem is not None:
        raise HTTPException(status_code=422, detail=f"invalid topic filter: {problem}")
    read_only = await _read_only(svc, data.filter)
    if read_only is not None:
        raise HTTPException(status_code=409, detail=read_only)
    kv = await svc.kv(subjects.BUCKET_MQTT_IGNORE)
    key = subjects.kv_key(data.filter)
    existing = await _current(kv, key)
    if existing is not None:
        return Response(_view(existing), status_code=200)
    if len(await _operator_filters(svc)) >= MAX_OPERATOR_FILTERS:
        raise HTTPException(status_code=409, detail=f"at most {MAX_OPERATOR_FILTERS} ignore filters; remove one first")
    who = svc.requested_by(request)
    record = IgnoredTopic(filter=data.filter, added_by=who, added_at=rfc3339(svc.clock()), note=data.note)
    try:
        await kv.create(key, encode(record))
    except KeyWrongLastSequenceError:  # someone added it this instant
        return Response(_view(await _current(kv, key) or record), status_code=200)
    await _record_change(svc, "added", data.filter, who, data.note)
    return Response(_view(record), status_code=201)


@delete("/api/mqtt/ignored-topics", operation_id="deleteIgnoredTopic", tags=["mqtt"], status_code=200)
async def delete_ignored_topic(
    svc: Svc, request: Request[Any, Any, Any], topic_filter: FilterParam
) -> DeletedIgnoredTopic:
    """Store messages matching ``filter`` again (an operator's filter; built-in and
    ``EVBUS_MQTT_IGNORE`` ones are 409). Recorded as ``events.mqtt.ignore_changed``."""
    read_only = await _read_only(svc, topic_filter)
    if read_only is not None:
        raise HTTPException(status_code=409, detail=read_only)
    kv = await svc.kv(subjects.BUCKET_MQTT_IGNORE)
    key = subjects.kv_key(topic_filter) if filter_problem(topic_filter) is None else None
    if key is None or await _current(kv, key) is None:
        raise NotFoundException(f"{topic_filter[:300]!r} is not an ignore filter an operator added")
    await kv.delete(key)
    await _record_change(svc, "removed", topic_filter, svc.requested_by(request))
    return DeletedIgnoredTopic(deleted=topic_filter)


async def _record_change(
    svc: Services, action: Literal["added", "removed"], topic_filter: str, who: str, note: str | None = None
) -> None:
    event = IgnoreChanged(
        kind="ignore_changed", action=action, filter=topic_filter, requested_by=who, at=rfc3339(svc.clock()), note=note
    )
    try:
        await svc.js.publish(
            subjects.mqtt_event("ignore_changed"),
            encode(event),
            headers={subjects.H_MSG_ID: f"api:{secrets.token_hex(8)}"},
        )
    except Exception as exc:  # the change is stored; its record is best effort, and logged
        log.error("events.mqtt.ignore_changed (%s %r by %s) not stored: %r", action, topic_filter, who, exc)


# --- device settings --------------------------------------------------------------------------


class SettingBody(msgspec.Struct, forbid_unknown_fields=True):
    value: msgspec.Raw


class SettingAnswer(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    status: Literal["applied", "unchanged", "sent"]  # no default: always written
    echoed: bool  # no default: always written
    id: str
    key: str
    value: msgspec.Raw
    setting_id: str
    gateway: str
    topic: str | None = None
    payload: str | None = None
    duration_ms: float | None = None
    detail: str | None = None


SettingTimeout = Annotated[
    float | None,
    QueryParameter(
        name="timeout",
        gt=0,
        le=MAX_SETTING_TIMEOUT_S,
        description="seconds to wait for the device to show the value (EVBUS_MQTT_SETTING_TIMEOUT)",
    ),
]

_decode_body = msgspec.json.Decoder(SettingBody).decode
_SUCCESS: Final = {"applied": 200, "unchanged": 200, "sent": 202}
_FAILURE: Final = {
    "no_echo": (504, "the device did not show the new value in time (it was sent)"),
    "offline": (503, "the MQTT gateway is not connected to its broker; nothing was sent"),
    "failed": (502, "the MQTT broker did not take the message"),
}


def _device(device_id: str) -> tuple[str, str]:
    """(source, device) of ``{source}.{device}``, the tail of the device's reading subject (a
    ``%`` of it sent as ``%25`` in the URL, as for every device route)."""
    found = subjects.device_of(device_id)
    if found is None:
        raise NotFoundException(f"unknown device {device_id[:200]!r}: expected {{source}}.{{device}} (evcc.lp1)")
    return found


def _refused(device_id: str, key: str, refused: Refused) -> HTTPException:
    if refused.outcome == "invalid":
        return HTTPException(status_code=422, detail=f"invalid value: {refused.reason}")
    return HTTPException(
        status_code=404,
        detail=f"unknown setting {key[:100]!r} of {device_id[:200]!r}: {refused.reason}",
        extra={"validKeys": list(refused.valid_keys)},
    )


async def _ask_setting(svc: Services, gateway: str, request: SettingRequest, wait_s: float) -> SettingReply | None:
    """The gateway's reply; None when it does not answer (it stopped)."""
    try:
        msg = await svc.nc.request(
            subjects.mqtt_control(gateway, "setting"), encode(request), timeout=wait_s + REPLY_MARGIN_S
        )
        return _reply(msg.data)
    except (NatsError, TimeoutError, msgspec.DecodeError) as exc:
        log.warning("MQTT gateway %s did not answer a setting request: %r", gateway, exc)
        return None


def _answered(device_id: str, reply: SettingReply) -> Response[bytes]:
    if reply.outcome in ("unknown_key", "invalid"):
        raise _refused(device_id, reply.key, Refused(reply.outcome, reply.detail or "", tuple(reply.valid_keys or ())))
    if reply.outcome not in ("applied", "unchanged", "sent"):
        status, error = _FAILURE.get(reply.outcome, (502, f"the gateway answered {reply.outcome}"))
        raise HTTPException(status_code=status, detail=error, extra={"id": device_id, **_reply_fields(reply)})
    body = SettingAnswer(
        status=reply.outcome,
        echoed=reply.echoed,
        id=device_id,
        key=reply.key,
        value=reply.value,
        setting_id=reply.setting_id,
        gateway=reply.gateway,
        topic=reply.topic,
        payload=reply.payload,
        duration_ms=reply.duration_ms,
        detail=reply.detail,
    )
    return json_response(body, _SUCCESS[reply.outcome])


def _reply_fields(reply: SettingReply) -> dict[str, Any]:
    """The gateway's reply as camelCase JSON members (``outcome``, ``echoed``, ``topic``, ``hint``, …)."""
    fields: dict[str, Any] = msgspec.json.decode(encode(reply))
    return fields


# a normalised reading field (a setting's echo) → the same field in the API's device shape
_DEVICE_FIELD: Final = {f.name: f.encode_name for f in msgspec.structs.fields(views.Device)} | {
    "connected": "vehicleConnected",  # a reading's connected is the vehicle's; a device's, its presence
}


def shown_by(echo: str) -> str:
    """Where the device shape (``/api/devices/{id}``, camelCase) holds the reading field ``echo``:
    ``offered_current_a`` → ``offeredCurrentA``; ``extra.limitEnergyWh`` as it is."""
    head, dot, rest = echo.partition(".")
    return _DEVICE_FIELD[head] + dot + rest


def _at(shape: Any, path: str) -> Any:
    for name in path.split("."):
        shape = shape.get(name) if isinstance(shape, dict) else None
    return shape


def listed(writable: Writable, device: dict[str, Any]) -> list[dict[str, Any]]:
    """``writable``'s settings as ``GET /api/devices/{id}/settings`` lists them, each with the
    value ``device`` (the device shape as JSON) shows now, in the setting's own unit."""
    rows: list[dict[str, Any]] = []
    seen: list[tuple[str, object]] = []
    for key, setting in writable.settings.items():
        shown = shown_by(setting.echo) if setting.echo is not None else None
        value = _at(device, shown) if shown is not None else None
        row: dict[str, Any] = {"key": key, **setting.check.describe(), "unit": setting.unit, "shownBy": shown}
        scale = setting.scale
        if scale is not None:
            row["scale"] = scale
            value = value / scale if is_number(value) else None
        row["value"] = value
        alias = next((earlier for earlier, other in seen if other is setting), None)
        if alias is not None:
            row["aliasOf"] = alias
        if writable.timeout_s is not None:
            row["timeoutS"] = writable.timeout_s
        seen.append((key, setting))
        rows.append(row)
    return rows


@get("/api/devices/{device_id:str}/settings", operation_id="listDeviceSettings", tags=["devices"])
async def list_settings(svc: Svc, device_id: FromPath[str]) -> list[dict[str, Any]]:
    """The settings ``POST …/settings/{key}`` takes for this device, from its family's table (an
    empty array for a device that takes none, such as an evcc site), one entry per key in the
    table's order: ``key``; what the value may be, ``type`` ``choice`` (``options``), ``number``
    (``min``, ``max``, ``integer``), ``flag`` (true/false) or ``object`` (``fields``, each described
    alike with its ``unit``, and the ``words`` taken instead of an object); ``unit`` (A, %, kWh, or
    null); ``shownBy``: the field of the device (``GET /api/devices/{id}``, camelCase, a dot into
    ``extra``) on which the device shows the value, null if it does not; ``scale`` when it shows the
    value written times this (evcc ``limitEnergy`` in kWh, ``extra.limitEnergyWh``); ``value``: what
    it shows now, in the setting's own unit (null: unknown). An alias of an earlier key (evcc
    ``phases``, written as ``phasesConfigured``) is listed with ``aliasOf``; ``timeoutS`` when a
    write had better wait longer than the default for the echo. ``404`` unknown device."""
    found = await svc.projection.read(lambda cur: devices.device(cur, device_id, recent=0))
    if found is None:
        raise NotFoundException(f"unknown device {device_id[:200]!r}")
    writable = of_kind(WRITABLE.get(found.source, ()), found.kind)
    if writable is None:
        return []
    return listed(writable, msgspec.json.decode(msgspec.json.encode(found)))


@post(
    "/api/devices/{device_id:str}/settings/{key:str}",
    operation_id="writeDeviceSetting",
    tags=["devices"],
    status_code=200,
)
async def write_setting(
    svc: Svc,
    request: Request[Any, Any, Any],
    device_id: FromPath[str],
    key: FromPath[str],
    timeout_s: SettingTimeout = None,
) -> Response[bytes]:
    """Write one setting of an MQTT device: ``{"value": …}``. ``device_id`` is the tail of the
    device's reading subject (``evcc.lp1``, ``goe.012345``); ``key`` one of its family's settings
    (docs/adr/0010-mqtt-gateway.md). The gateway that knows the device publishes the value on the
    family's command topic (QoS 1) and waits until the device shows it; recorded as
    ``events.mqtt.setting`` with who asked and the outcome."""
    source, device = _device(device_id)
    try:
        body = _decode_body(await request.body())
        value = msgspec.json.decode(body.value)
    except msgspec.DecodeError as exc:
        raise HTTPException(status_code=400, detail=f"body must be {{value}}: {exc}") from exc
    writables = WRITABLE.get(source, ())
    if not writables:
        raise NotFoundException(f"unknown device {device_id[:200]!r}: no device of source {source!r} takes settings")
    refused = precheck(writables, key, value)
    if refused is not None:
        raise _refused(device_id, key, refused)
    gateways = await running_gateways(svc)
    if not gateways:
        raise HTTPException(status_code=503, detail="no MQTT gateway is running")
    wait_s = timeout_s or svc.settings.mqtt_setting_timeout
    setting = SettingRequest(
        setting_id=uuid.uuid4().hex,
        source=source,
        device=device,
        key=key,
        value=body.value,
        timeout_s=wait_s,
        requested_by=svc.requested_by(request),
    )
    silent = 0
    for presence in gateways:  # usually one; the first that knows the device writes it
        reply = await _ask_setting(svc, presence.gateway, setting, wait_s)
        if reply is None:
            silent += 1
        elif reply.outcome != "unknown_device":
            return _answered(device_id, reply)
    if silent:
        raise HTTPException(status_code=503, detail=f"{silent} of {len(gateways)} MQTT gateway(s) did not answer")
    raise NotFoundException(f"unknown device {device_id[:200]!r}: no MQTT gateway knows it")


ROUTES = [mqtt_status, list_ignored_topics, add_ignored_topic, delete_ignored_topic, list_settings, write_setting]
