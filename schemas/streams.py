"""The one definition of evbus's JetStream streams, KV buckets and durable consumers.

:func:`declare` creates or updates them at start-up (idempotent); docs/subjects.md lists the same
definitions for operators who pre-create them with the ``nats`` CLI.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError

from schemas import subjects

log = logging.getLogger(__name__)

DAY = 24 * 3600
DUPLICATE_WINDOW_S = 120.0


@dataclass(frozen=True, slots=True)
class Retention:
    ocpp_days: int = 30
    telemetry_days: int = 30
    events_days: int = 90


def stream_configs(retention: Retention) -> list[StreamConfig]:
    def stream(name: str, subject: str, days: int) -> StreamConfig:
        return StreamConfig(
            name=name,
            subjects=[subject],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=float(days * DAY),
            duplicate_window=DUPLICATE_WINDOW_S,
        )

    return [
        stream(subjects.STREAM_OCPP, subjects.OCPP_ALL, retention.ocpp_days),
        stream(subjects.STREAM_EVENTS, subjects.EVENTS_ALL, retention.events_days),
        stream(subjects.STREAM_TELEMETRY, subjects.TELEMETRY_ALL, retention.telemetry_days),
    ]


PRESENCE_TTL_S = 90.0  # gateways refresh their stations' presence every third of this
MQTT_PRESENCE_TTL_S = 90.0  # MQTT gateways refresh their own presence every third of this


def bucket_configs() -> list[KeyValueConfig]:
    return [
        KeyValueConfig(
            bucket=subjects.BUCKET_STATIONS,
            description="presence: station -> gateway holding its socket",
            ttl=PRESENCE_TTL_S,
            storage=StorageType.FILE,
        ),
        KeyValueConfig(
            bucket=subjects.BUCKET_TOKENS,
            description="idTag/idToken -> status, expiryDate, parentIdTag",
            storage=StorageType.FILE,
        ),
        KeyValueConfig(
            bucket=subjects.BUCKET_REGISTRY,
            description="registered stations: password hash",
            storage=StorageType.FILE,
        ),
        KeyValueConfig(
            bucket=subjects.BUCKET_USERS,
            description="API users: argon2 password hashes",
            storage=StorageType.FILE,
        ),
        KeyValueConfig(
            bucket=subjects.BUCKET_PROFILES,
            description="stored charging profiles: id -> profile with description",
            storage=StorageType.FILE,
        ),
        KeyValueConfig(
            bucket=subjects.BUCKET_MQTT_IGNORE,
            description="operators' MQTT ignore filters: filter -> who added it, when",
            storage=StorageType.FILE,
        ),
        KeyValueConfig(
            bucket=subjects.BUCKET_MQTT_GATEWAYS,
            description="presence: MQTT gateway -> broker, started-at, its EVBUS_MQTT_IGNORE",
            ttl=MQTT_PRESENCE_TTL_S,
            storage=StorageType.FILE,
        ),
        KeyValueConfig(
            bucket=subjects.BUCKET_CSMS,
            description="CSMS state: transaction id counter, transactions, idempotency keys",
            history=1,
            storage=StorageType.FILE,
        ),
    ]


def delivery(reply: str) -> tuple[int, int, int]:
    """(stream sequence, stream timestamp in ns, messages still pending) of a JetStream delivery,
    read from its reply subject without building nats-py's metadata objects (hot path)."""
    t = reply.split(".")
    if len(t) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
        return int(t[5]), int(t[7]), int(t[8])
    # $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>]
    return int(t[7]), int(t[9]), int(t[10])


def csms_consumer() -> ConsumerConfig:
    """Durable push consumer ``csms`` on ``ocpp.*.in.>``: every station frame, acked explicitly.

    DeliverPolicy.NEW applies when the durable is first created: a processor deployed onto an old
    stream must not answer calls that stations sent months ago. Afterwards it resumes where it
    stopped. The processor (FastStream) creates it with this config and binds to it on restart.
    """
    return ConsumerConfig(
        deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=30.0,
        max_ack_pending=20_000,
        max_deliver=-1,
    )


async def declare(js: JetStreamContext, retention: Retention | None = None) -> None:
    """Create or update every stream; create missing buckets."""
    for config in stream_configs(retention or Retention()):
        try:
            await js.add_stream(config)
        except BadRequestError:
            # exists with a different config: bring it to ours
            await js.update_stream(config)
    for kv in bucket_configs():
        try:
            await js.key_value(kv.bucket)
        except NotFoundError:
            await js.create_key_value(kv)
    log.debug("streams and buckets declared")
