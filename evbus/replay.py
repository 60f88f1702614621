"""A station's frames straight from the OCPP stream: what ``evbus replay`` and ``/api/replay`` serve.

Each record carries the stream sequence, the subject, every header and the frame text exactly as
it went over the wire (``data``; a frame that is not UTF-8 comes as ``dataBase64`` instead).
Reading stops at what was stored when the replay began, so a busy station cannot make it endless.

The stream is read with :class:`evbus.push_reader.PushReader` (raw deliveries, no nats-py message
objects); :func:`ndjson` encodes each socket buffer's frames in one call, :func:`frames` hands them
out one by one. Both give the same bytes per record (``encode_line(frame) + b"\\n"``).
"""

from __future__ import annotations

import base64
import functools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import msgspec
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerConfig, DeliverPolicy

from evbus.clock import utc_now
from evbus.push_reader import Gap, PushReader, headers
from schemas import subjects


class Frame(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    seq: int
    time: str  # when the stream stored it
    subject: str
    headers: dict[str, str]
    data: str | None = None
    data_base64: str | None = None


async def frames(
    nc: NATS,
    station: str,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    idle_timeout: float = 5.0,
) -> AsyncIterator[Frame]:
    """Every message on ``ocpp.{station}.>`` stored from ``since`` (default: the beginning) until
    ``until`` (default: what is stored now), in stream order."""
    async for batch in _batches(nc, station, since, until, idle_timeout):
        for frame in batch:
            yield frame


async def ndjson(
    nc: NATS,
    station: str,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    idle_timeout: float = 5.0,
) -> AsyncIterator[bytes]:
    """What :func:`frames` gives, as NDJSON (one ``encode_line(frame)`` and a newline per frame),
    in chunks of one socket buffer (a few hundred frames)."""
    async for batch in _batches(nc, station, since, until, idle_timeout):
        yield _encoder.encode_lines(batch)


async def _batches(
    nc: NATS,
    station: str,
    since: datetime | None,
    until: datetime | None,
    idle_timeout: float,
) -> AsyncIterator[list[Frame]]:
    since, until = _utc(since), _utc(until)
    if since is not None and since > utc_now():
        return  # nothing is stored after now (and nats-server reads a start past 2262 as the beginning)
    config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL, filter_subject=subjects.ocpp_station(station))
    if since is not None:
        config.deliver_policy, config.opt_start_time = DeliverPolicy.BY_START_TIME, since
    limit_ns = int(until.timestamp() * 1e9) if until is not None else None
    remaining: int | None = None  # of what was stored when the replay began
    last_seq = 0
    out: list[Frame] = []

    def take(subject: bytes, seq: int, stream_ns: int, pending: int, block: bytes, data: bytes) -> bool:
        nonlocal remaining, last_seq
        if limit_ns is not None and stream_ns > limit_ns:
            remaining = 0
            return True
        try:
            text = data.decode()
        except UnicodeDecodeError:
            out.append(_binary(subject, seq, stream_ns, block, data))
        else:
            out.append(
                Frame(seq=seq, time=stream_time(stream_ns), subject=subject.decode(), headers=headers(block), data=text)
            )
        last_seq = seq
        remaining = 0 if pending == 0 else remaining - 1  # type: ignore[operator]
        return remaining == 0

    while remaining is None or remaining > 0:
        try:
            async with PushReader.open(nc, subjects.STREAM_OCPP, config) as reader:
                if remaining is None:
                    info = reader.consumer
                    remaining = (info.num_pending or 0) + (info.delivered.consumer_seq if info.delivered else 0)
                while remaining > 0:
                    await reader.read(take, idle_timeout)
                    if out:
                        yield out
                        out = []
        except Gap:  # a delivery went missing: carry on after the last frame given out
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=last_seq + 1,
                filter_subject=config.filter_subject,
            )
            if out:
                yield out
                out = []


def _utc(moment: datetime | None) -> datetime | None:
    """A time without an offset is UTC, as in OCPP (and as nats-server takes a start time)."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _binary(subject: bytes, seq: int, stream_ns: int, block: bytes, data: bytes) -> Frame:
    """A frame that is not UTF-8: its bytes in base64."""
    b64 = base64.b64encode(data).decode()
    return Frame(
        seq=seq, time=stream_time(stream_ns), subject=subject.decode(), headers=headers(block), data_base64=b64
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def stream_time(stream_ns: int) -> str:
    """``rfc3339(datetime.fromtimestamp(stream_ns / 1e9, UTC))``, without building a datetime per
    frame: the same float arithmetic (the fraction of the second, exact for a positive time, times
    1e6, rounded half to even), each second's text formatted once."""
    t = stream_ns / 1e9
    second = int(t)
    micros = round((t - second) * 1e6)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    return f"{_second(second)}.{micros:06d}Z"


@functools.lru_cache(maxsize=256)
def _second(second: int) -> str:
    return (_EPOCH + timedelta(seconds=second)).isoformat()[:19]


_encoder = msgspec.json.Encoder()
encode_line = _encoder.encode

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
