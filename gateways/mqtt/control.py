"""The MQTT gateway's control plane: how the API (or any NATS client) sees and steers it, over NATS
only, whichever process each runs in (docs/adr/0010-mqtt-gateway.md, "Control plane").

- Presence: KV ``mqtt_gateways`` holds each running gateway (TTL, refreshed; deleted when it
  stops), so the API knows which gateways to ask, zero included, and one that died drops out.
- ``evbus.mqtt.{gateway}.status``: the gateway's status (:class:`schemas.telemetry.MqttStatus`).
- ``evbus.mqtt.{gateway}.setting``: write one setting of a device this gateway knows
  (:class:`schemas.telemetry.SettingRequest`), wait for the device to show it, record
  ``events.mqtt.setting``, reply :class:`schemas.telemetry.SettingReply`.
- KV ``mqtt_ignore``: the operators' ignore filters, followed (evbus.kv: read whole, then its changes)
  and applied at once.

The request subjects are under ``evbus.``, which no stream captures (a request to a captured
subject gets the stream's ack as its first answer) and which the gateway drops as its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, Final

import aiomqtt
import msgspec
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.kv import KeyValue

from evbus.kv import Changes, Entry, read_all
from evbus.publishing import NotStored
from gateways.mqtt.profiles import Update
from gateways.mqtt.writes import Refused, Write, plan
from schemas import streams, subjects
from schemas.telemetry import (
    IgnoredTopic,
    MqttPresence,
    SettingOutcome,
    SettingReply,
    SettingRequest,
    SettingWritten,
    encode,
)

if TYPE_CHECKING:
    from gateways.mqtt.gateway import MqttGateway

log = logging.getLogger(__name__)

MAX_SETTING_TIMEOUT_S: Final = 60.0
PUBLISH_TIMEOUT_S: Final = 5.0  # for the broker's PUBACK of a setting
WATCH_RETRY_S: Final = 1.0

_request = msgspec.json.Decoder(SettingRequest).decode
_ignored_topic = msgspec.json.Decoder(IgnoredTopic).decode
_MISSING: Final = object()


class Echoes:
    """Writes waiting for their device to show the value written. :meth:`saw` is called from the
    gateway's message loop with every live update, so an echo is seen in broker order."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str], list[tuple[Write, asyncio.Future[None]]]] = {}

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def expect(self, source: str, device: str, write: Write) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault((source, device), []).append((write, future))
        return future

    def forget(self, source: str, device: str, future: asyncio.Future[None]) -> None:
        waiting = [(w, f) for w, f in self._waiting.get((source, device), []) if f is not future]
        if waiting:
            self._waiting[(source, device)] = waiting
        else:
            self._waiting.pop((source, device), None)

    def saw(self, update: Update) -> None:
        for write, future in self._waiting.get((update.source, update.device), ()):
            if future.done() or write.echo is None or write.echo not in update.values:
                continue
            if write.shows(write.value, update.values[write.echo]):
                future.set_result(None)


class ControlPlane:
    def __init__(self, gw: MqttGateway) -> None:
        self.gw = gw
        self._subscriptions: list[Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._writes: set[asyncio.Task[None]] = set()
        self._presence: KeyValue | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the operators' ignore filters (before the first message), announce the gateway,
        answer its requests."""
        js = self.gw.nc.jetstream()
        ready = asyncio.Event()
        ignore = await js.key_value(subjects.BUCKET_MQTT_IGNORE)
        self._tasks.append(asyncio.create_task(self._follow_ignore(ignore, ready), name="mqtt-ignore-filters"))
        await asyncio.wait_for(ready.wait(), timeout=10)
        self._presence = await js.key_value(subjects.BUCKET_MQTT_GATEWAYS)
        await self._announce()
        self._tasks.append(asyncio.create_task(self._refresh_presence(), name="mqtt-presence"))
        nc, gateway = self.gw.nc, self.gw.id
        self._subscriptions = [
            await nc.subscribe(subjects.mqtt_control(gateway, "status"), cb=self._status),
            await nc.subscribe(subjects.mqtt_control(gateway, "setting"), cb=self._setting),
        ]

    async def stop(self) -> None:
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        for task in [*self._tasks, *self._writes]:
            task.cancel()
        for task in [*self._tasks, *self._writes]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._presence is not None:
            try:
                await self._presence.delete(subjects.kv_key(self.gw.id))
            except Exception as exc:  # it expires with the bucket's TTL all the same
                log.warning("MQTT gateway %s: presence not deleted: %r", self.gw.id, exc)

    # --- presence -------------------------------------------------------------------------------

    async def _announce(self) -> None:
        assert self._presence is not None
        presence = MqttPresence(
            gateway=self.gw.id,
            broker=self.gw.broker.address,
            started_at=self.gw.started_at,
            ignore_setting=list(self.gw.filters.setting),
        )
        await self._presence.put(subjects.kv_key(self.gw.id), encode(presence))

    async def _refresh_presence(self) -> None:
        while True:
            await asyncio.sleep(streams.MQTT_PRESENCE_TTL_S / 3)
            try:
                await self._announce()
            except Exception as exc:  # the next round tries again
                log.warning("MQTT gateway %s: presence not refreshed: %r", self.gw.id, exc)

    # --- the operators' ignore filters ----------------------------------------------------------

    async def _follow_ignore(self, kv: KeyValue, ready: asyncio.Event) -> None:
        """Keep the gateway's operator filters equal to KV ``mqtt_ignore``: the bucket's whole
        contents replace what was known at once (the filters in force never shrink while they are
        read again after NATS was gone), then each change applies as it comes."""
        while True:
            changes: Changes | None = None
            try:
                entries, upto = await read_all(kv)
                filters: dict[str, str] = {}
                for entry in entries.values():
                    self._ignore_entry(filters, entry)
                changes = await Changes.after(kv, upto)
                self._apply_ignore(filters)
                ready.set()
                async for entry in changes:
                    self._ignore_entry(filters, entry)
                    self._apply_ignore(filters)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("MQTT gateway %s: watching %s failed: %r", self.gw.id, subjects.BUCKET_MQTT_IGNORE, exc)
            finally:
                if changes is not None:
                    await changes.stop()
            await asyncio.sleep(WATCH_RETRY_S)

    def _ignore_entry(self, filters: dict[str, str], entry: Entry) -> None:
        if entry.deleted:
            filters.pop(entry.key, None)
            return
        try:
            filters[entry.key] = _ignored_topic(entry.value).filter
        except msgspec.DecodeError:
            log.warning("ignoring malformed value of %r in bucket %s", entry.key, subjects.BUCKET_MQTT_IGNORE)

    def _apply_ignore(self, filters: dict[str, str]) -> None:
        before = self.gw.filters.operator
        self.gw.filters.replace_operator(filters.values())
        if self.gw.filters.operator != before:
            log.info("MQTT gateway %s: operators' ignore filters now %s", self.gw.id, self.gw.filters.operator)
            self.gw.forget_unmatched()

    # --- requests -------------------------------------------------------------------------------

    async def _status(self, msg: Msg) -> None:
        if msg.reply:
            await msg.respond(encode(self.gw.status()))

    async def _setting(self, msg: Msg) -> None:
        """Each write waits for its echo in a task of its own: one slow device holds up no other."""
        task = asyncio.create_task(self._answer(msg), name="mqtt-setting")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _answer(self, msg: Msg) -> None:
        try:
            request = _request(msg.data)
        except msgspec.DecodeError as exc:
            reply = SettingReply(
                setting_id="",
                gateway=self.gw.id,
                source="",
                device="",
                key="",
                outcome="invalid",
                echoed=False,
                detail=str(exc),
            )
        else:
            try:
                reply = await self.write(request)
            except Exception:  # a bug of ours: logged; the requester times out (the API says 503)
                log.exception("MQTT gateway %s: setting %s failed", self.gw.id, request.setting_id)
                return
        if msg.reply:
            try:
                await msg.respond(encode(reply))
            except Exception as exc:  # NATS gone: the requester times out
                log.warning("MQTT gateway %s: setting reply not sent: %r", self.gw.id, exc)

    async def write(self, request: SettingRequest) -> SettingReply:
        """Check the request against the device and its family's table, publish the setting (QoS
        1, not retained unless the family says so), wait for the echo, record the write."""
        started = time.monotonic()

        def answer(outcome: SettingOutcome, *, echoed: bool = False, **more: Any) -> SettingReply:
            return SettingReply(
                setting_id=request.setting_id,
                gateway=self.gw.id,
                source=request.source,
                device=request.device,
                key=request.key,
                value=request.value,
                outcome=outcome,
                echoed=echoed,
                duration_ms=round((time.monotonic() - started) * 1000, 1),
                **more,
            )

        state = self.gw.devices.get(request.source, request.device)
        if state is None:
            return answer("unknown_device", detail=f"gateway {self.gw.id} does not know this device")
        try:
            value = msgspec.json.decode(request.value) if request.value else _MISSING
        except msgspec.DecodeError as exc:
            return answer("invalid", detail=f"value is not JSON: {exc}")
        if value is _MISSING:
            return answer("invalid", detail="no value")
        planned = plan(self.gw.writable.get(request.source, ()), state.device, state.topic, request.key, value)
        if isinstance(planned, Refused):
            return answer(planned.outcome, detail=planned.reason, valid_keys=list(planned.valid_keys) or None)
        timeout = min(request.timeout_s or self.gw.settings.mqtt_setting_timeout, MAX_SETTING_TIMEOUT_S)
        already = planned.echo is not None and _shows(planned, state.value(planned.echo))
        outcome, detail = await self._publish(request, planned, timeout, already=already)
        reply = answer(
            outcome,
            echoed=outcome == "applied",
            topic=planned.topic,
            payload=planned.payload.decode("utf-8", "replace"),
            detail=detail,
            hint=(planned.hint or None) if outcome == "no_echo" else None,
        )
        await self._record(request, reply)
        return reply

    async def _publish(
        self, request: SettingRequest, planned: Write, wait_s: float, *, already: bool
    ) -> tuple[SettingOutcome, str | None]:
        client = self.gw.client
        if client is None or not self.gw.connected:
            return "offline", f"gateway {self.gw.id} is not connected to {self.gw.broker.address}"
        waiting = planned.echo is not None and not already
        echo = self.gw.echoes.expect(request.source, request.device, planned) if waiting else None
        try:
            try:
                await client.publish(
                    planned.topic, planned.payload, qos=1, retain=planned.retain, timeout=PUBLISH_TIMEOUT_S
                )
            except aiomqtt.MqttError as exc:
                return "failed", f"the broker did not take the message: {exc}"
            log.info("MQTT gateway %s: %s = %r on %s", self.gw.id, request.key, planned.value, planned.topic)
            if planned.echo is None:
                return "sent", "the family does not show its settings back"
            if echo is None:
                return "unchanged", "the device showed this value already (it shows changes only)"
            try:
                await asyncio.wait_for(echo, wait_s)
            except TimeoutError:
                return "no_echo", f"the device did not show the value within {wait_s:g} s"
            return "applied", None
        finally:
            if echo is not None:
                self.gw.echoes.forget(request.source, request.device, echo)

    async def _record(self, request: SettingRequest, reply: SettingReply) -> None:
        event = SettingWritten(
            kind="setting",
            setting_id=request.setting_id,
            gateway=self.gw.id,
            at=self.gw._now(),
            source=request.source,
            device=request.device,
            key=request.key,
            outcome=reply.outcome,
            value=request.value,
            topic=reply.topic,
            payload=reply.payload,
            echoed=reply.echoed,
            duration_ms=reply.duration_ms,
            requested_by=request.requested_by,
            detail=reply.detail,
        )
        headers = {subjects.H_MQTT_GATEWAY: self.gw.id, subjects.H_MSG_ID: f"setting:{request.setting_id}"}
        try:
            await self.gw.store.store(subjects.mqtt_event("setting"), encode(event), headers)
        except NotStored as exc:  # the write happened; its record is best effort, and logged
            log.error("MQTT setting event %s not stored: %s", request.setting_id, exc)


def _shows(planned: Write, current: Any) -> bool:
    return current is not None and planned.shows(planned.value, current)
