"""``evbus api`` (projections and REST) killed with SIGKILL during ingest, twice, and started again.

Stations charge through a gateway and a processor process while the API process folds the streams
into its DuckDB file. The first kill comes while it applies a backlog, the second after it committed
some and while live traffic keeps coming. Each new process resumes from the checkpoint in the file (never behind what
the dead one had committed, never from zero), and in the end its tables equal what a fresh
``evbus projections rebuild`` makes of the same streams, table by table, row by row.
"""

from __future__ import annotations

import ast
import asyncio
import re
import time
from pathlib import Path

import httpx
from nats.aio.client import Client as NATS

from tests.chaos.conftest import Roles
from tests.chaos.ledger import account, read_stream
from tests.chaos.processes import EvbusRole, run_cli
from tests.chaos.readmodel import caught_up, heads, projection_file, query
from tests.chaos.stations import Fleet, charging
from tests.chaos.waits import BUDGET_S, until
from tests.projections.test_rebuild import COMPARED, dump

STATIONS = 20
PAUSE_S = 0.005
BACKLOG = 3000  # CALLs answered before the API process starts (about twice as many frames stored)
KEY_TABLES = ("messages", "calls", "connections", "transactions", "meter_values", "connectors", "stations")


async def positions(api: EvbusRole) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=api.url, timeout=5) as http:
        found: dict[str, int] = (await http.get("/healthz")).json()["projection"]
        return found


def resumed_from(log: Path) -> dict[str, int]:
    """The checkpoint the process's projection resumed after (its log says so at start)."""
    found = re.findall(r"resumes after (\{.*\})", log.read_text())
    assert found, f"no 'resumes after' line in {log}"
    value: dict[str, int] = ast.literal_eval(found[-1])
    return value


async def test_api_killed_during_ingest(roles: Roles, bus: NATS) -> None:
    began = time.monotonic()
    async with asyncio.timeout(BUDGET_S):
        await roles.start("processors")
        gateway = await roles.start("gateway", gateway_id="gw-1")
        fleet = Fleet.of("AK-", STATIONS, [gateway.url], charging(PAUSE_S))
        fleet.start()
        try:
            await fleet.online(30)
            await until(lambda: fleet.answered >= BACKLOG, 40)
            backlog = (await heads(bus))["OCPP"]

            # kill 1: as soon as it serves, while its projection applies the backlog (most likely in
            # its first DuckDB transaction: it resumes from 0 then)
            api = await roles.start("api", "api-1", data="api")
            committed = await positions(api)
            await api.kill()
            kills = [(committed["OCPP"], (await heads(bus))["OCPP"])]
            api = await roles.start("api", "api-2", data="api")
            resumed = [resumed_from(api.log)]

            # kill 2: once it committed 2000 more frames, while the stations keep sending
            seen = await positions(api)
            await until(lambda: _advanced(api, seen["OCPP"] + 2000), 30, interval=0.1)
            committed = await positions(api)
            await api.kill()
            kills.append((committed["OCPP"], (await heads(bus))["OCPP"]))
            api = await roles.start("api", "api-3", data="api")
            resumed.append(resumed_from(api.log))
            await until(lambda: _advanced(api, (kills[-1][1]) + 500), 30, interval=0.1)
        finally:
            await fleet.stop(timeout=20)
        final = await caught_up(api.url, bus)
        await api.stop()

        ledger = account(fleet, await read_stream(bus))
        rebuilt_dir = roles.root / "rebuilt"
        await run_cli(["projections", "rebuild"], roles.env("rebuilt"), roles.root / "rebuild.log")
        incremental, rebuilt = projection_file(roles.root / "api"), projection_file(rebuilt_dir)
        a, b = dump(incremental), dump(rebuilt)
        rows = {t: len(a[t]) for t in KEY_TABLES}
        [(checkpoints,)] = query(incremental, "SELECT count(*) FROM checkpoints")
        print(
            "\n"
            + ledger.summary(
                "api-killed",
                backlog=backlog,
                kills=[f"{c}/{h}" for c, h in kills],
                resumed_after=[r["OCPP"] for r in resumed],
                final=final["OCPP"],
                rows=rows,
                seconds=round(time.monotonic() - began, 1),
            )
        )
        ledger.assert_clean()
        for (committed_at_kill, head_at_kill), restart in zip(kills, resumed, strict=True):
            assert restart["OCPP"] >= committed_at_kill, "resumed behind what the dead process had committed"
            assert restart["OCPP"] <= head_at_kill, (restart, head_at_kill)
        assert resumed[-1]["OCPP"] > 0, "the last restart did not resume from a checkpoint"
        assert any(committed < head for committed, head in kills), f"no kill came mid-stream: {kills}"
        assert checkpoints == 2
        assert rows["transactions"] > 0
        assert rows["meter_values"] > 0
        for table in COMPARED:
            assert a[table] == b[table], f"{table}: incremental ({len(a[table])} rows) != rebuild ({len(b[table])})"


async def _advanced(api: EvbusRole, seq: int) -> bool:
    try:
        return (await positions(api))["OCPP"] >= seq
    except httpx.HTTPError:
        return False
