"""A station's frames straight from the OCPP stream: what ``evbus replay`` and ``/api/replay`` serve.

Each record carries the stream sequence, the subject, every header and the frame text exactly as
it went over the wire (``data``; a frame that is not UTF-8 comes as ``dataBase64`` instead).
Reading stops at what was stored when the replay began, so a busy station cannot make it endless.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import msgspec
from nats.js.api import ConsumerConfig, ConsumerInfo, DeliverPolicy
from nats.js.client import JetStreamContext

from evbus.clock import rfc3339, utc_now
from schemas import streams, subjects


class Frame(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    seq: int
    time: str  # when the stream stored it
    subject: str
    headers: dict[str, str]
    data: str | None = None
    data_base64: str | None = None


async def frames(
    js: JetStreamContext,
    station: str,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    idle_timeout: float = 5.0,
) -> AsyncIterator[Frame]:
    """Every message on ``ocpp.{station}.>`` stored from ``since`` (default: the beginning) until
    ``until`` (default: what is stored now), in stream order."""
    since, until = _utc(since), _utc(until)
    if since is not None and since > utc_now():
        return  # nothing is stored after now (and nats-server reads a start past 2262 as the beginning)
    config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    if since is not None:
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since)
    sub = await js.subscribe(
        subjects.ocpp_station(station), stream=subjects.STREAM_OCPP, ordered_consumer=True, config=config
    )
    try:
        stored = _stored(await sub.consumer_info())
        limit_ns = int(until.timestamp() * 1e9) if until is not None else None
        for _ in range(stored):
            msg = await sub.next_msg(timeout=idle_timeout)
            seq, stream_ns, pending = streams.delivery(msg.reply)
            if limit_ns is not None and stream_ns > limit_ns:
                return
            yield _frame(seq, stream_ns, msg.subject, msg.headers or {}, msg.data)
            if pending == 0:
                return
    finally:
        await sub.unsubscribe()


def _utc(moment: datetime | None) -> datetime | None:
    """A time without an offset is UTC, as in OCPP (and as nats-server takes a start time)."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _stored(info: ConsumerInfo) -> int:
    """How many messages the new consumer has to deliver: those it already pushed to us (a push
    consumer starts at once) and those still pending."""
    return (info.num_pending or 0) + (info.delivered.consumer_seq if info.delivered else 0)


def _frame(seq: int, stream_ns: int, subject: str, headers: dict[str, str], data: bytes) -> Frame:
    time = rfc3339(datetime.fromtimestamp(stream_ns / 1e9, UTC))
    try:
        return Frame(seq=seq, time=time, subject=subject, headers=headers, data=data.decode("utf-8"))
    except UnicodeDecodeError:
        return Frame(seq=seq, time=time, subject=subject, headers=headers, data_base64=base64.b64encode(data).decode())


encode_line = msgspec.json.Encoder().encode

_COLOURS = {"CALL": "\033[36m", "CALLRESULT": "\033[32m", "CALLERROR": "\033[31m", "INVALID": "\033[31;1m"}
_DIM, _RESET = "\033[2m", "\033[0m"


def pretty(frame: Frame, *, colour: bool = False) -> str:
    """One line for a person: time, direction arrow, type and action, then the frame text."""
    h = frame.headers
    at = h.get(subjects.H_RECEIVED_AT, frame.time)
    parts = frame.subject.split(".")
    if len(parts) > 2 and parts[2] == "conn":
        kind, arrow, action = "CONN", "•", parts[3]
    else:
        kind = h.get(subjects.H_TYPE, "?")
        arrow = "→" if h.get(subjects.H_DIRECTION) == "in" else "←"
        action = h.get(subjects.H_ACTION, "")
    body = frame.data if frame.data is not None else f"base64:{frame.data_base64}"
    head = f"{kind} {action}".strip()
    if colour:
        tint = _COLOURS.get(kind, _DIM)
        return f"{_DIM}{at} #{frame.seq}{_RESET} {arrow} {tint}{head}{_RESET} {body}"
    return f"{at} #{frame.seq} {arrow} {head} {body}"
