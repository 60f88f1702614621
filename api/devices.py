"""Device routes (DESIGN §7): the MQTT devices' latest state, their readings, downsampled on request.

Everything here reads the projection's device read model (``devices``, ``readings``,
``device_sessions``, folded from ``telemetry.{source}.{device}``; projections/fold.py). A device's
``id`` is the reading's subject tail, ``{token(source)}.{token(device)}`` (``evcc.lp1``), which is
unambiguous where ``source/device`` would not be; in a URL its ``%`` escapes are themselves
percent-encoded (``evcc.CP%2E01`` → ``/api/devices/evcc.CP%252E01``). Its charging sessions are
also served by ``/api/transactions`` (``source=mqtt``, ids ``mqtt:{device id}:{n}``).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Final

import duckdb
from litestar import Response, get
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, QueryParameter

from api.monitoring import Limit, Offset, listing, page
from api.services import Svc
from evbus.clock import as_utc
from projections import devices, views

MAX_POINTS: Final = 10_000  # buckets one downsampled answer may hold
DEFAULT_SPAN: Final = timedelta(hours=24)
_BUCKET: Final = re.compile(r"([1-9][0-9]{0,4})([smhd])")
_UNIT: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

ReadingsLimit = Annotated[int, QueryParameter(ge=1, le=MAX_POINTS, description="readings per page")]


def bucket_width(text: str) -> timedelta:
    """``10s``, ``1m``, ``15m``, ``1h``, ``1d`` → the width; anything else raises ``ValueError``."""
    found = _BUCKET.fullmatch(text)
    if found is None:
        raise ValueError(f"{text!r} is not a number and a unit s, m, h or d (10s, 1m, 15m, 1h, 1d)")
    return timedelta(**{_UNIT[found.group(2)]: int(found.group(1))})


@get("/api/devices", operation_id="listDevices", tags=["devices"])
async def list_devices(
    svc: Svc,
    status: FromQuery[devices.DeviceStatus] = "all",
    source: FromQuery[str | None] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response[list[views.Device]]:
    """MQTT devices by id, each with its latest reading. ``status=connected``: the device itself is
    present (``connected``, i.e. ``online`` is true); ``disconnected``: it is not, or not known."""
    rows, total = await svc.projection.read(lambda cur: devices.devices(cur, status, source, page(limit, offset)))
    return listing(rows, total)


@get("/api/devices/{device_id:str}", operation_id="getDevice", tags=["devices"])
async def get_device(svc: Svc, device_id: FromPath[str]) -> views.DeviceDetail:
    """One device: its latest reading as stored, its 20 newest readings and charging sessions."""
    found = await svc.projection.read(lambda cur: devices.device(cur, device_id))
    if found is None:
        raise NotFoundException(f"unknown device {device_id!r}")
    return found


@get("/api/devices/{device_id:str}/readings", operation_id="deviceReadings", tags=["devices"])
async def device_readings(
    svc: Svc,
    device_id: FromPath[str],
    since: FromQuery[datetime | None] = None,
    until: FromQuery[datetime | None] = None,
    bucket: FromQuery[str | None] = None,
    limit: ReadingsLimit = 1000,
    offset: Offset = 0,
) -> Response[list[views.DeviceReading] | list[views.ReadingBucket]]:
    """The device's readings from ``since`` (default 24 h ago) to ``until`` (default now). Without
    ``bucket``, as they came, oldest first, ``limit`` at a time. With ``bucket`` (``10s``, ``1m``,
    ``15m``, ``1h``, ``1d``: a number and a unit s, m, h or d) one row per bucket in which a value
    was known, at most 10 000: time-weighted means of power, currents, voltages and temperature,
    the energy counters and state of charge at the bucket's end (projections/devices.py)."""
    end = as_utc(until) if until is not None else svc.now()
    try:
        start = as_utc(since) if since is not None else end - DEFAULT_SPAN
    except OverflowError:  # until in year 1: nothing is before it
        raise HTTPException(status_code=400, detail="invalid parameter 'until': too early") from None
    if start >= end:
        raise HTTPException(status_code=400, detail="invalid parameter 'since': must be before 'until'")
    width = None
    if bucket is not None:
        try:
            width = bucket_width(bucket)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=f"invalid parameter 'bucket': {exc}") from None
        if devices.bucket_count(start, end, width) > MAX_POINTS:
            raise HTTPException(
                status_code=400,
                detail=f"invalid parameter 'bucket': {bucket} makes more than {MAX_POINTS} points "
                "from 'since' to 'until'; take a wider bucket or a shorter span",
            )
    span = devices.Span(device_id, start, end)

    def run(cur: duckdb.DuckDBPyConnection) -> tuple[bool, list[views.DeviceReading] | list[views.ReadingBucket], int]:
        if not devices.device_exists(cur, device_id):
            return False, [], 0
        if width is not None:
            rows = devices.buckets(cur, span, width)
            return True, rows, len(rows)
        found, total = devices.readings(cur, span, page(limit, offset))
        return True, found, total

    known, rows, total = await svc.projection.read(run)
    if not known:
        raise NotFoundException(f"unknown device {device_id!r}")
    return listing(rows, total)


ROUTES = [list_devices, get_device, device_readings]
