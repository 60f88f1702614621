"""A central system written the usual way with the ``ocpp`` library (mobilityhouse) — what a Python
user would write instead of evbus.

    .venv/bin/python -m bench.servers.ocpp_lib [--port 0] [--loop asyncio|uvloop]

``ocpp.v16.ChargePoint`` / ``ocpp.v201.ChargePoint`` subclasses with ``@on`` handlers for
BootNotification, Heartbeat, StatusNotification and MeterValues, one instance per websocket,
served by websockets. The library does what it always does: parse, validate request and answer
against its JSON schemas (jsonschema, in the default thread pool), convert keys between camelCase
and snake_case, and log every frame at INFO on the ``ocpp`` logger (not shown: logging is left at
Python's default WARNING, as in a service that does not configure it). No persistence.

Deviations from the library's README example, each in its favour: ``compression=None`` (as the
evbus gateway; a default websockets server would negotiate permessage-deflate when the client
offers it), and an unknown station path is closed instead of served. The default loop is the
standard ``asyncio`` one, as ``asyncio.run(main())`` in that example; ``--loop uvloop`` is there
to separate what the loop buys from what the library costs.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v16.enums import RegistrationStatus as Registration16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from ocpp.v201.enums import RegistrationStatusEnumType as Registration201
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from bench.servers.common import HEARTBEAT_INTERVAL, Answered, announce, arguments, run, station_id
from evbus.clock import rfc3339, utc_now


class CentralSystem16(ChargePoint16):  # type: ignore[misc]
    @on(Action16.boot_notification)
    def on_boot_notification(self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any) -> Any:
        Answered.boots += 1
        return result16.BootNotification(
            current_time=rfc3339(utc_now()), interval=HEARTBEAT_INTERVAL, status=Registration16.accepted
        )

    @on(Action16.heartbeat)
    def on_heartbeat(self) -> Any:
        return result16.Heartbeat(current_time=rfc3339(utc_now()))

    @on(Action16.status_notification)
    def on_status_notification(self, connector_id: int, error_code: str, status: str, **kwargs: Any) -> Any:
        return result16.StatusNotification()

    @on(Action16.meter_values)
    def on_meter_values(self, connector_id: int, meter_value: list[Any], **kwargs: Any) -> Any:
        return result16.MeterValues()


class CentralSystem201(ChargePoint201):  # type: ignore[misc]
    @on(Action201.boot_notification)
    def on_boot_notification(self, charging_station: dict[str, Any], reason: str, **kwargs: Any) -> Any:
        Answered.boots += 1
        return result201.BootNotification(
            current_time=rfc3339(utc_now()), interval=HEARTBEAT_INTERVAL, status=Registration201.accepted
        )

    @on(Action201.heartbeat)
    def on_heartbeat(self) -> Any:
        return result201.Heartbeat(current_time=rfc3339(utc_now()))

    @on(Action201.status_notification)
    def on_status_notification(self, **kwargs: Any) -> Any:
        return result201.StatusNotification()

    @on(Action201.meter_values)
    def on_meter_values(self, evse_id: int, meter_value: list[Any], **kwargs: Any) -> Any:
        return result201.MeterValues()


class CountingSocket:
    """The websocket as the library sees it (``recv``/``send``), counting the answers sent (the boot
    handlers count the BootNotifications)."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws

    async def recv(self) -> str | bytes:
        return await self.ws.recv()

    async def send(self, message: str) -> None:
        await self.ws.send(message)
        Answered.count += 1


async def on_connect(ws: ServerConnection) -> None:
    station = station_id(ws.request.path) if ws.request else None
    if station is None or ws.subprotocol not in ("ocpp1.6", "ocpp2.0.1"):
        await ws.close(1002, "no station id or unsupported subprotocol")
        return
    kind = CentralSystem16 if ws.subprotocol == "ocpp1.6" else CentralSystem201
    try:
        await kind(station, CountingSocket(ws)).start()
    except Exception:  # the library ends a connection by letting recv() raise ConnectionClosed
        return


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    async with serve(
        on_connect,
        args.host,
        args.port,
        subprotocols=[Subprotocol("ocpp2.0.1"), Subprotocol("ocpp1.6")],
        compression=None,
    ) as server:
        announce(args.host, next(iter(server.sockets)).getsockname()[1])
        await stop.wait()


if __name__ == "__main__":
    run(main, arguments(__doc__ or "", default_loop="asyncio"))
