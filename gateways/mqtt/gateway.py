"""The MQTT gateway: an MQTT client in, JetStream out.

Every message it takes is stored verbatim on ``telemetry.raw.mqtt.{topic levels}`` (stream
``TELEMETRY``, ack awaited, headers ``Mqtt-*``), and where a mapping understands it the device's
new full snapshot follows on ``telemetry.{source}.{device}``. Messages are handled one at a time in
the order the broker delivers them. Nothing a device sends stops the gateway: a payload no mapping
knows, one it cannot read, one too large, are stored with the reason and counted, and the
``events.mqtt.*`` event saying so is rate-limited. Its NATS control plane (presence, status,
device settings, the operators' ignore filters) is gateways/mqtt/control.py. Decisions:
docs/adr/0010-mqtt-gateway.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
import random
import secrets
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final
from urllib.parse import quote, unquote, urlsplit

import aiomqtt
from nats.aio.client import Client as NATS

from evbus.clock import Clock, rfc3339, utc_now
from evbus.publishing import NotStored, StorageUnavailable, Store, publish_until_stored
from evbus.settings import Settings, SettingsError
from evbus.throttle import EventThrottle, Throttles
from gateways.mqtt import families, generic
from gateways.mqtt.control import ControlPlane, Echoes
from gateways.mqtt.devices import Devices, DeviceState
from gateways.mqtt.ignore import IgnoreFilters
from gateways.mqtt.profiles import Family, Ignored, Invalid, Outcome, Update, classify
from gateways.mqtt.writes import Writable
from schemas import subjects
from schemas.telemetry import RAW_TEXT_LIMIT, FilterOrigins, MqttEvent, MqttStatus, Reading, encode

log = logging.getLogger(__name__)

PUBLISH_BUDGET_S: Final = 10.0
FIRST_BACKOFF_S: Final = 0.5
REMEMBERED_TOPICS: Final = 100_000  # last payload digest per topic, for retained replays
UNMATCHED_KEPT: Final = 1000  # distinct unmatched topics remembered
UNMATCHED_SHOWN: Final = 100  # the newest of them in status()
RATE_WINDOW_S: Final = 10  # messages/s in status() is over this many seconds
_HEADER_SAFE: Final = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def header_topic(topic: str) -> str:
    """The ``Mqtt-Topic`` header: printable ASCII as is, everything else (and ``%``) percent-encoded."""
    return quote(topic, safe=_HEADER_SAFE)


def topic_of_header(value: str) -> str:
    return unquote(value)


@dataclass(frozen=True, slots=True)
class Broker:
    """Where the gateway connects: ``mqtt://[user[:password]@]host[:port]`` or ``mqtts://`` (TLS)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> Broker:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("mqtt", "mqtts", "tcp", "ssl", "tls") or not parts.hostname:
            raise SettingsError(f"EVBUS_MQTT_URL: expected mqtt://host:port or mqtts://host:port, got {url!r}")
        tls = scheme in ("mqtts", "ssl", "tls")
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError as exc:
            raise SettingsError(f"EVBUS_MQTT_URL: {exc}") from None
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls,
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    @property
    def address(self) -> str:
        """``host:port`` (never the credentials), for logs and events."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def _failed(code: object) -> bool:
    """A SUBACK return code of failure: 0x80 in MQTT 3.1.1 (an int), >= 0x80 in 5 (a ReasonCode)."""
    value = getattr(code, "value", code)
    return isinstance(value, int) and value >= 0x80


def broker_url(settings: Settings, embedded_mqtt_port: int | None = None) -> str:
    """EVBUS_MQTT_URL, or the NATS server's own MQTT listener: the embedded one (its real port when
    it picked one), else EVBUS_MQTT_PORT on the host of EVBUS_NATS_URL."""
    if settings.mqtt_url:
        return settings.mqtt_url
    if embedded_mqtt_port is not None or not settings.nats_url:
        host = "127.0.0.1" if settings.nats_host in ("0.0.0.0", "") else settings.nats_host
    else:
        host = urlsplit(settings.nats_url.split(",")[0]).hostname or "127.0.0.1"
    return f"mqtt://{host}:{embedded_mqtt_port or settings.mqtt_port}"


def split_filters(text: str | None) -> tuple[str, ...]:
    return tuple(f.strip() for f in (text or "").split(",") if f.strip())


@dataclass(slots=True)
class Counters:
    """What the gateway did since it started (for /api/mqtt/status and /metrics). ``outcomes``
    counts messages by what became of them: reading, unchanged, ignored (a family's topic with
    nothing to normalise), unmatched, invalid, dropped (evbus's own subjects, EVBUS_MQTT_IGNORE and
    the operators' ignore filters: not stored), replayed (a retained value replayed unchanged after a
    reconnect: not stored again), not_stored."""

    received: int = 0
    stored: int = 0
    readings: int = 0
    connects: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> str:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        return outcome


class RecentRate:
    """Events per second over the last ``window`` seconds, in one-second buckets: what the gateway
    does now, not a lifetime average (which a night of silence would drag down for a day)."""

    def __init__(self, now: float, window: int = RATE_WINDOW_S) -> None:
        self.window = window
        self.started = now
        self._counts = [0] * window
        self._second = int(now)

    def tick(self, now: float) -> None:
        second = int(now)
        if second != self._second:
            self._advance(second)
        self._counts[second % self.window] += 1

    def per_second(self, now: float) -> float:
        self._advance(int(now))
        span = min(float(self.window), max(now - self.started, 1.0))
        return round(sum(self._counts) / span, 3)

    def _advance(self, second: int) -> None:
        for passed in range(self._second + 1, min(second, self._second + self.window) + 1):
            self._counts[passed % self.window] = 0
        self._second = max(second, self._second)


class MqttGateway:
    def __init__(
        self,
        nc: NATS,
        settings: Settings,
        *,
        url: str,
        gateway_id: str | None = None,
        families_: tuple[Family, ...] | None = None,
        writable: dict[str, tuple[Writable, ...]] | None = None,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nc = nc
        self.settings = settings
        self.broker = Broker.parse(url)
        self.id = gateway_id or settings.gateway_id or f"{socket.gethostname()}-{os.getpid()}"
        self.client_id = settings.mqtt_client_id or f"evbus-{self.id}"
        self.topics = split_filters(settings.mqtt_topics) or ("#",)
        self.refused: list[str] = []  # of self.topics, refused by the broker at the last connect
        self.filters = IgnoreFilters(split_filters(settings.mqtt_ignore))  # + the operators' (control plane)
        if families_ is None:
            loaded = generic.load(settings.mqtt_mappings) if settings.mqtt_mappings else ()
            families_ = loaded + families.builtin()
        self.families = families_
        self.writable = families.writable() if writable is None else writable
        self.clock = clock
        self.monotonic = monotonic
        self.store = Store(nc)
        self.devices = Devices()
        self.counters = Counters()
        self.rate = RecentRate(monotonic())
        self.connected = False
        self.client: aiomqtt.Client | None = None  # while connected: what settings are published with
        self.started_at = rfc3339(clock())
        self.since = self.started_at  # of the last connect, or of the last loss of the broker
        self.echoes = Echoes()
        self.control = ControlPlane(self)
        self.unmatched_topics: OrderedDict[str, None] = OrderedDict()
        self._last_payload: OrderedDict[str, bytes] = OrderedDict()
        self._session = secrets.token_hex(4)
        self._numbers = itertools.count(1)
        self._invalid_events: Throttles[tuple[str, str]] = Throttles(REMEMBERED_TOPICS)
        self._unmatched_events = EventThrottle()
        self._tasks: list[asyncio.Task[None]] = []
        self._tls = _tls_context(settings) if self.broker.tls else None

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start storing; the broker connection is made (and remade) in the background, so a broker
        that is down does not stop the rest of evbus from starting."""
        await self.store.start()
        try:
            await self.control.start()  # the operators' ignore filters apply from the first message on
        except BaseException:
            await self.control.stop()
            await self.store.stop()
            raise
        self._tasks = [
            asyncio.create_task(self._connection(), name="mqtt-connection"),
            asyncio.create_task(self._watch_silence(), name="mqtt-silence"),
        ]

    async def stop(self) -> None:
        await self.control.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.store.stop()

    def status(self) -> MqttStatus:
        """What ``GET /api/mqtt/status`` shows of this gateway (``evbus.mqtt.{gateway}.status``)."""
        return MqttStatus(
            gateway=self.id,
            broker=self.broker.address,
            client_id=self.client_id,
            connected=self.connected,
            since=self.since,
            connects=self.counters.connects,
            started_at=self.started_at,
            subscriptions=list(self.topics),
            refused_subscriptions=list(self.refused),
            messages_per_second=self.rate.per_second(self.monotonic()),
            received=self.counters.received,
            stored=self.counters.stored,
            readings=self.counters.readings,
            outcomes=dict(self.counters.outcomes),
            devices=len(self.devices),
            topics_seen=len(self._last_payload),
            unmatched_topics=list(reversed(self.unmatched_topics))[:UNMATCHED_SHOWN],
            unmatched_topic_count=len(self.unmatched_topics),
            ignored=FilterOrigins(
                built_in=list(self.filters.built_in),
                setting=list(self.filters.setting),
                operator=list(self.filters.operator),
            ),
        )

    def forget_unmatched(self) -> None:
        """Drop the unmatched topics an ignore filter now matches (they are no longer stored)."""
        for topic in [t for t in self.unmatched_topics if self.filters.drops(t)]:
            del self.unmatched_topics[topic]

    async def _connection(self) -> None:
        delay = FIRST_BACKOFF_S
        while True:
            reason = "connection closed"
            try:
                async with aiomqtt.Client(
                    self.broker.host,
                    self.broker.port,
                    username=self.broker.username,
                    password=self.broker.password,
                    identifier=self.client_id,
                    tls_context=self._tls,
                    clean_session=True,
                    keepalive=30,
                ) as client:
                    self.client = client
                    await self._subscribed(client)
                    delay = FIRST_BACKOFF_S
                    async for message in client.messages:
                        try:
                            await self.receive(
                                str(message.topic), _payload(message.payload), message.qos, message.retain
                            )
                        except Exception:  # a bug of ours on one message must not end the connection
                            log.exception("MQTT message on %r failed", str(message.topic))
                            self.counters.count("failed")
            except aiomqtt.MqttError as exc:
                reason = str(exc)
            except OSError as exc:
                reason = repr(exc)
            finally:
                self.client = None
            if self.connected:
                self.connected = False
                self.since = self._now()
                log.warning("MQTT broker %s lost: %s", self.broker.address, reason)
                await self._event(
                    MqttEvent(
                        kind="disconnected", gateway=self.id, at=self._now(), broker=self.broker.address, reason=reason
                    )
                )
            else:
                log.warning("MQTT broker %s unreachable (%s); retrying in %.1f s", self.broker.address, reason, delay)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not a secret
            delay = min(delay * 2, self.settings.mqtt_reconnect_max)

    async def _subscribed(self, client: aiomqtt.Client) -> None:
        refused = []
        for topic_filter in self.topics:
            granted = await client.subscribe(topic_filter, qos=1)
            if any(_failed(code) for code in granted):  # SUBACK 0x80: the broker gives no rights to it
                refused.append(topic_filter)
        self.refused = refused
        if refused:
            log.warning(
                "MQTT gateway %s: %s refused the subscription to %s (no rights there)",
                self.id,
                self.broker.address,
                ",".join(refused),
            )
        self.connected = True
        self.since = self._now()
        self.counters.connects += 1
        self._session = secrets.token_hex(4)
        log.info("MQTT gateway %s subscribed to %s on %s", self.id, ",".join(self.topics), self.broker.address)
        await self._event(MqttEvent(kind="connected", gateway=self.id, at=self._now(), broker=self.broker.address))

    # --- one message --------------------------------------------------------------------------

    async def receive(self, topic: str, payload: bytes, qos: int = 0, retained: bool = False) -> str:
        """Store one MQTT message and publish the readings it makes; what became of it
        (``reading``, ``unchanged``, ``ignored``, ``unmatched``, ``invalid``, ``dropped``,
        ``replayed``, ``not_stored``). Never raises for anything a device sent."""
        self.counters.received += 1
        mono = self.monotonic()
        self.rate.tick(mono)
        if self.filters.drops(topic):
            return self.counters.count("dropped")
        digest = hashlib.blake2b(payload, digest_size=16).digest()
        if retained and self._last_payload.get(topic) == digest:
            return self.counters.count("replayed")
        self._remember(topic, digest)
        at = rfc3339(self.clock())
        if retained:
            raw_id = "mqtt-retained:" + hashlib.blake2b(topic.encode() + b"\0" + payload, digest_size=16).hexdigest()
        else:
            raw_id = f"mqtt:{self.id}:{self._session}:{next(self._numbers)}"
        body = payload
        if len(payload) > self.settings.mqtt_max_payload:
            limit = self.settings.mqtt_max_payload
            outcome: Outcome | None = Invalid("", None, f"payload of {len(payload)} bytes over {limit} bytes")
            body = b""
        else:
            try:
                outcome = classify(self.families, topic, payload)
            except Exception as exc:  # a mapping bug must not stop the gateway
                log.exception("mapping failed on %r", topic)
                outcome = Invalid("", None, f"mapping failed: {exc!r}")
        applied = self._apply(outcome, topic, mono, at, live=not retained) if isinstance(outcome, Update) else []
        label = _label(outcome, applied)
        headers = {
            subjects.H_MQTT_TOPIC: header_topic(topic),
            subjects.H_MQTT_QOS: str(qos),
            subjects.H_MQTT_RETAIN: "true" if retained else "false",
            subjects.H_MQTT_RECEIVED_AT: at,
            subjects.H_MQTT_GATEWAY: self.id,
            subjects.H_MQTT_OUTCOME: label,
            subjects.H_MSG_ID: raw_id,
        }
        if outcome is not None and outcome.source:
            headers[subjects.H_MQTT_MAPPING] = outcome.source
        if isinstance(outcome, Invalid | Ignored):
            headers[subjects.H_MQTT_ERROR] = _one_line(outcome.reason)
        if body is not payload:
            headers[subjects.H_MQTT_BYTES] = str(len(payload))
        try:
            seq = await publish_until_stored(self.store, subjects.mqtt_raw(topic), body, headers, PUBLISH_BUDGET_S)
        except StorageUnavailable as exc:
            log.error("MQTT message on %r not stored: %s", topic, exc)
            return self.counters.count("not_stored")
        self.counters.stored += 1
        self.counters.count(label)
        if label == "reading":
            raw = payload[: 4 * RAW_TEXT_LIMIT].decode("utf-8", "replace")[
                :RAW_TEXT_LIMIT
            ]  # 4 bytes a character at most
            for n, (state, changed, flags) in enumerate(applied):
                if changed or flags:
                    reading = state.reading(
                        at, changed, retained=retained, flags=list(flags) or None, raw_topic=topic, raw=raw, raw_seq=seq
                    )
                    await self._reading(reading, f"{raw_id}:{n}")
        elif label == "invalid":
            assert isinstance(outcome, Invalid)
            await self._invalid(topic, outcome, at)
        elif label == "unmatched":
            await self._unmatched(topic, at)
        if self.echoes and not retained and isinstance(outcome, Update):
            self.echoes.saw(outcome)  # a device showing a setting written to it, its reading stored
        return label

    def _apply(
        self, update: Update, topic: str, mono: float, at: str, *, live: bool
    ) -> list[tuple[DeviceState, list[str], tuple[str, ...]]]:
        applied = []
        for state in self.devices.targets(update):
            own = state.device == update.device
            if own:
                state.topic = topic
            changed = state.apply(update if own else replace(update, values={}, flags=()), live=live)
            if live:
                state.seen(mono, at)
            applied.append((state, changed, update.flags if own else ()))
        return applied

    def _remember(self, topic: str, digest: bytes) -> None:
        self._last_payload[topic] = digest
        self._last_payload.move_to_end(topic)
        if len(self._last_payload) > REMEMBERED_TOPICS:
            self._last_payload.popitem(last=False)

    # --- publishing ---------------------------------------------------------------------------

    async def _reading(self, reading: Reading, msg_id: str) -> None:
        headers = {subjects.H_MQTT_GATEWAY: self.id, subjects.H_MSG_ID: msg_id}
        try:
            subject = subjects.telemetry(reading.source, reading.device)
            await publish_until_stored(self.store, subject, encode(reading), headers, PUBLISH_BUDGET_S)
        except StorageUnavailable as exc:
            self.counters.count("reading_not_stored")
            log.error("reading of %s/%s not stored: %s", reading.source, reading.device, exc)
            return
        self.counters.readings += 1

    async def _event(self, event: MqttEvent) -> None:
        headers = {subjects.H_MQTT_GATEWAY: self.id, subjects.H_MSG_ID: f"{self.id}:{secrets.token_hex(8)}"}
        try:
            await self.store.store(subjects.mqtt_event(event.kind), encode(event), headers)
        except NotStored as exc:
            log.error("MQTT %s event not stored: %s", event.kind, exc)

    async def _invalid(self, topic: str, outcome: Invalid, at: str) -> None:
        held = self._invalid_events.allow((outcome.source, outcome.device or topic), self.monotonic())
        if held is None:
            return
        await self._event(
            MqttEvent(
                kind="invalid",
                gateway=self.id,
                at=at,
                topic=topic,
                source=outcome.source or None,
                device=outcome.device,
                reason=outcome.reason,
                suppressed=held or None,
            )
        )

    async def _unmatched(self, topic: str, at: str) -> None:
        if topic in self.unmatched_topics:
            return
        self.unmatched_topics[topic] = None
        if len(self.unmatched_topics) > UNMATCHED_KEPT:
            self.unmatched_topics.popitem(last=False)
        held = self._unmatched_events.allow(self.monotonic())
        if held is not None:
            await self._event(
                MqttEvent(
                    kind="unmatched",
                    gateway=self.id,
                    at=at,
                    topic=topic,
                    reason="no mapping knows this topic",
                    suppressed=held or None,
                )
            )

    # --- presence from silence ----------------------------------------------------------------

    async def _watch_silence(self) -> None:
        interval = min(max(self.settings.mqtt_silence / 4, 0.05), 30.0)
        while True:
            await asyncio.sleep(interval)
            await self.sweep_silence()

    async def sweep_silence(self) -> int:
        """Publish ``online: false`` for every device silent longer than EVBUS_MQTT_SILENCE."""
        gone = self.devices.silent(self.monotonic(), self.settings.mqtt_silence)
        at = self._now()
        for state in gone:
            msg_id = f"silence:{subjects.token(state.source)}:{subjects.token(state.device)}:{state.last_seen_at}"
            await self._reading(state.reading(at, ["online"]), msg_id)
        return len(gone)

    def _now(self) -> str:
        return rfc3339(self.clock())


def _label(outcome: Outcome | None, applied: list[tuple[DeviceState, list[str], tuple[str, ...]]]) -> str:
    if outcome is None:
        return "unmatched"
    if isinstance(outcome, Invalid):
        return "invalid"
    if isinstance(outcome, Ignored):
        return "ignored"
    return "reading" if any(changed or flags for _, changed, flags in applied) else "unchanged"


def _tls_context(settings: Settings) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=settings.mqtt_ca)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"EVBUS_MQTT_CA: cannot load {settings.mqtt_ca}: {exc}") from exc


def _payload(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")[:500]
