"""nats-server killed with SIGKILL under load and started again on the same port and store.

Twenty stations run Heartbeat/MeterValues round trips through ``evbus gateway`` and ``evbus
processors``, with ``evbus api`` projecting, all separate processes. Then nats-server dies. What
evbus promises (ADR 0001) and does:

- it never tells a station a frame was received unless it is stored: no answer reaches a station
  while the server is away, and every CALL a station got an answer to is in the stream afterwards;
- it holds each station's frame for its publish budget (10 s, in 2 s ack timeouts) and then closes
  the socket with 1011; meanwhile it reads nothing more from that socket, so a station that writes
  CALLs without waiting (the flood) fills its own socket buffers, not the gateway's memory;
- a refused frame may still be stored once the server is back (the NATS client's reconnect buffer
  flushes the last attempt; the same ``Nats-Msg-Id`` keeps it single): refused means "not answered",
  and such frames are counted as ``unanswered_stored``;
- after recovery stations reconnect and round trips resume; nothing is stored twice, in the stream
  or in the read model.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import websockets
from nats.aio.client import Client as NATS
from websockets.exceptions import ConnectionClosed

from evbus.publishing import ACK_TIMEOUT_S
from gateways.ocpp.server import PUBLISH_BUDGET_S
from schemas import subjects
from tests.chaos.conftest import Roles
from tests.chaos.ledger import account, read_stream
from tests.chaos.processes import NatsServer
from tests.chaos.readmodel import caught_up, duplicate_messages, projection_file, query
from tests.chaos.stations import Fleet, round_trips
from tests.chaos.waits import BUDGET_S, until

STATIONS = 20
PAUSE_S = 0.02  # between a station's round trips
CALL_TIMEOUT_S = 16.0  # a station gives up on its CALL and reconnects (after the gateway's budget)
GRACE_S = 1.0  # answers already on their way to a station when the server died
RSS_GROWTH_MAX = 64 << 20  # the gateway's memory while NATS is away: no unbounded buffering
FLOODER = "NK-FLOOD"


@dataclass
class Flood:
    """A station that ignores OCPP's one-CALL-in-flight rule and writes CALLs as fast as its socket
    takes them while NATS is away: how many it got into the socket, and how it was closed when."""

    written: int = 0
    close_code: int | None = None
    closed_at: float = 0.0


async def flood(url: str, station: str, result: Flood, seconds: float = 3.0) -> None:
    """Write Heartbeat CALLs until a write blocks for ``seconds`` (the socket is full: back-pressure),
    then wait for the gateway's close frame."""
    async with websockets.connect(
        f"{url}/{station}", subprotocols=[websockets.Subprotocol("ocpp1.6")], close_timeout=1
    ) as ws:
        with contextlib.suppress(TimeoutError, ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.send(f'[2,"f{result.written + 1}","Heartbeat",{{}}]'), seconds)
                result.written += 1
        await until(lambda: ws.protocol.close_rcvd is not None, PUBLISH_BUDGET_S + 10)
        assert ws.protocol.close_rcvd is not None
        result.close_code, result.closed_at = ws.protocol.close_rcvd.code, time.monotonic()


async def test_nats_killed_and_restarted_under_load(nats_server: NatsServer, roles: Roles, bus: NATS) -> None:
    began = time.monotonic()
    async with asyncio.timeout(BUDGET_S):
        await roles.start("processors")
        gateway = await roles.start("gateway", gateway_id="gw-1")
        api = await roles.start("api")
        fleet = Fleet.of("NK-", STATIONS, [gateway.url], round_trips(PAUSE_S), CALL_TIMEOUT_S)
        fleet.start()
        try:
            await fleet.online(30)
            loaded = time.monotonic()
            await until(lambda: fleet.answered_since(loaded) >= 50 * STATIONS, 30)
            rss_before = gateway.rss()

            await nats_server.kill()
            killed = time.monotonic()
            flooded = Flood()
            flooding = asyncio.create_task(flood(gateway.url, FLOODER, flooded))
            connections = {s.id: len(s.connected_to) for s in fleet}
            # (b) held, then refused: sockets closed with 1011 once the publish budget ran out
            rss_peak = rss_before

            def dropped() -> bool:
                nonlocal rss_peak
                rss_peak = max(rss_peak, gateway.rss())
                return all(any(c.at > killed for c in s.closed) for s in fleet)

            # every station lost its socket: the gateway refused it, or (its CALL stored, the answer
            # lost with the server) the station gave up after its call timeout
            await until(dropped, CALL_TIMEOUT_S + 5, interval=0.2)
            # and is back on a new socket, its BootNotification held (the gateway cannot store it)
            await until(lambda: all(len(s.connected_to) > connections[s.id] for s in fleet), 10)
            await nats_server.start()
            restarted = time.monotonic()
            outage = restarted - killed

            late = [
                (s.id, u, round(at - killed, 2))
                for s in fleet
                for u, at in s.answered_at.items()
                if killed + GRACE_S < at < restarted
            ]
            assert not late, f"answered while NATS was down: {late[:10]}"
            assert gateway.process.returncode is None, "the gateway died with NATS"
            assert rss_peak - rss_before < RSS_GROWTH_MAX, (rss_before, rss_peak)
            closes = [c for s in fleet for c in s.closed if killed < c.at < restarted]
            codes = {(c.code, c.by_station) for c in closes}
            # the gateway closes with 1011; a station whose frame was stored but whose answer never
            # came (NATS died in between) gives up itself (by_station) after its call timeout
            # (None: the gateway's echo of the station's close did not come within the station's 1 s)
            assert codes <= {(1011, False), (1000, True), (None, True)}, codes

            # (c) the stations come back and their round trips resume
            await until(lambda: all(s.answered_since(restarted) >= 25 for s in fleet), 40)
            recovered = time.monotonic() - restarted
            await asyncio.wait_for(flooding, 10)
            assert flooded.close_code == 1011, flooded  # the flood was refused too
            refusals = [c.at - killed for c in closes if c.code == 1011] + [flooded.closed_at - killed]
            held, last = min(refusals), max(refusals)
            assert held >= PUBLISH_BUDGET_S - 2 * ACK_TIMEOUT_S, f"refused after {held:.1f} s, before the budget"
            assert last <= PUBLISH_BUDGET_S + ACK_TIMEOUT_S + 3, f"refused only after {last:.1f} s"
        finally:
            await fleet.stop(timeout=25)

        # (a) and (d): every answered CALL stored, nothing stored twice; and the processor has
        # answered (in the stream) every CALL stored, including those whose sockets were gone
        async def processed() -> bool:
            return account(fleet, await read_stream(bus)).without_stored_answer == 0

        await until(processed, 40, interval=0.5)
        frames = await read_stream(bus)
        ledger = account(fleet, frames)
        flood_stored = sum(1 for f in frames if f.subject == subjects.ocpp_frame(FLOODER, "in", "Heartbeat"))
        await caught_up(api.url, bus)
        await api.stop()
        readmodel = projection_file(Path(roles.env("api")["EVBUS_DATA_DIR"]))
        doubled = duplicate_messages(readmodel, "NK-")
        [(rows, distinct)] = query(readmodel, "SELECT count(*), count(DISTINCT seq) FROM messages")
        [(calls,)] = query(readmodel, "SELECT count(*) FROM messages WHERE direction = 'IN' AND type = 'CALL'")
        print(
            "\n"
            + ledger.summary(
                "nats-killed",
                outage_s=round(outage, 1),
                closed_1011=sum(1 for c in closes if c.code == 1011),
                station_timeouts=sum(1 for c in closes if c.by_station),
                refused_after_s=f"{held:.1f}..{last:.1f}",
                flood_written=flooded.written,
                flood_stored=flood_stored,
                recovered_s=round(recovered, 1),
                gateway_rss_mb=f"{rss_before >> 20}->{rss_peak >> 20}",
                readmodel_rows=rows,
                seconds=round(time.monotonic() - began, 1),
            )
        )
        ledger.assert_clean()
        assert ledger.stored >= ledger.answered
        assert not doubled, doubled
        assert rows == distinct
        assert calls == ledger.stored + flood_stored  # the read model's CALLs are the stream's
