"""One of two ``evbus gateway`` processes killed with SIGKILL: its stations move to the other.

Ten stations hold sockets on gw-1 and know gw-2 as their fallback. gw-1 dies without a word (no
close frames, no presence deleted). The stations reconnect to gw-2; presence in KV ``stations``
names gw-2 for each (the new connection overwrites the dead gateway's entry at once, long before
its 90 s TTL); and a command sent the documented way, a NATS request on ``cmd.{station}.{action}``,
reaches each station through gw-2 and comes back ``answered``.
"""

from __future__ import annotations

import asyncio
import json
import time

import msgspec
from nats.aio.client import Client as NATS
from nats.js.errors import KeyNotFoundError

from schemas import subjects
from schemas.records import Presence
from tests.chaos.conftest import Roles
from tests.chaos.ledger import account, read_stream
from tests.chaos.stations import Fleet, round_trips
from tests.chaos.waits import BUDGET_S, until

STATIONS = 10
PAUSE_S = 0.02


async def test_gateway_killed_stations_presence_and_commands_move(roles: Roles, bus: NATS) -> None:
    began = time.monotonic()
    async with asyncio.timeout(BUDGET_S):
        await roles.start("processors")
        gw1 = await roles.start("gateway", "gw-1", gateway_id="gw-1")
        gw2 = await roles.start("gateway", "gw-2", gateway_id="gw-2")
        fleet = Fleet.of("GK-", STATIONS, [gw1.url, gw2.url], round_trips(PAUSE_S))
        presence = await bus.jetstream().key_value(subjects.BUCKET_STATIONS)

        async def held_by(gateway: str) -> bool:
            """Whether presence names ``gateway`` for every station."""
            for s in fleet:
                try:
                    entry = await presence.get(subjects.kv_key(s.id))
                except KeyNotFoundError:
                    return False
                if not entry.value or msgspec.json.decode(entry.value, type=Presence).gateway != gateway:
                    return False
            return True

        fleet.start()
        try:
            await fleet.online(30)
            assert {s.connected_to[-1] for s in fleet} == {gw1.url}
            await until(lambda: held_by("gw-1"), 10)
            loaded = time.monotonic()
            await until(lambda: all(s.answered_since(loaded) >= 50 for s in fleet), 20)

            await gw1.kill()
            killed = time.monotonic()
            await until(lambda: all(s.online.is_set() and s.connected_to[-1] == gw2.url for s in fleet), 20)
            reconnected = time.monotonic() - killed
            await until(lambda: held_by("gw-2"), 10)
            moved = time.monotonic() - killed
            await until(lambda: all(s.answered_since(killed) >= 20 for s in fleet), 20)

            # commands follow: a NATS request per station, all at once
            replies = await asyncio.gather(
                *(
                    bus.request(
                        subjects.command(s.id, "Reset"),
                        b'{"type":"Soft"}',
                        timeout=20,
                        headers={"Evbus-Timeout": "15", "Evbus-Command-Id": f"chaos-{s.id}"},
                    )
                    for s in fleet
                )
            )
        finally:
            await fleet.stop(timeout=20)

        frames = await read_stream(bus)
        ledger = account(fleet, frames)
        answers = [json.loads(r.data) for r in replies]
        resets = [c for s in fleet for c in s.csms_calls if c[2] == "Reset"]
        reset_answers = {
            f.headers.get(subjects.H_STATION): f.headers.get(subjects.H_GATEWAY)
            for f in frames
            if f.headers.get(subjects.H_ID, "").startswith("chaos-") and f.headers.get(subjects.H_DIRECTION) == "in"
        }
        print(
            "\n"
            + ledger.summary(
                "gateway-killed",
                reconnected_s=round(reconnected, 1),
                presence_moved_s=round(moved, 1),
                commands_answered=sum(1 for a in answers if a.get("outcome") == "answered"),
                seconds=round(time.monotonic() - began, 1),
            )
        )
        ledger.assert_clean()
        assert all(a["outcome"] == "answered" and a["response"] == {"status": "Accepted"} for a in answers), answers
        assert len(resets) == STATIONS
        assert reset_answers == dict.fromkeys((s.id for s in fleet), "gw-2")
        assert all(len(s.connected_to) == 2 for s in fleet), [s.connected_to for s in fleet]
        assert {c.code for s in fleet for c in s.closed[:1]} == {None}  # gw-1 died: no close frame
