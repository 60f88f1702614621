"""``evbus processors`` killed with SIGKILL mid-stream and started again, twice.

Twenty 1.6 stations charge (StartTransaction, StatusNotification, MeterValues, StopTransaction,
Heartbeat) through a gateway process. The new processor process binds the durable consumer
``csms`` again (ADR 0002): what was stored meanwhile comes at once, what the dead one held unacked
comes again after the consumer's ack wait.

1. The first kill comes the moment an answer to a StartTransaction is published (seen by a small
   process of its own, :mod:`tests.chaos.killer`): calls sit in the dead process's lanes,
   unanswered, and that answer most likely unacked.
2. For the second, the processor's acks are lost on their way (nats-server refuses to pass them on)
   while it answers some hundred calls, and then it is killed: every one of those calls is
   answered and stored, and redelivered for sure.

Every CALL is answered, once as far as each station can tell, with the stored answer; a call
answered again goes out under the same ``Nats-Msg-Id`` and is stored once, with the same bytes
(apart from the clock in Heartbeat answers); 1.6 transaction ids never repeat (the KV idempotency
key gives a redelivered StartTransaction the id it had).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from schemas import subjects
from schemas.streams import csms_consumer
from tests.chaos.conftest import Roles
from tests.chaos.ledger import account, read_stream, stored_answers
from tests.chaos.processes import EvbusRole, NatsServer
from tests.chaos.stations import Fleet, charging
from tests.chaos.waits import BUDGET_S, until

STATIONS = 20
PAUSE_S = 0.05
ACKS_LOST = 150  # answers published while the processor's acks are lost, before it is killed
MARGIN = 20
ACK_SUBJECTS = [f"$JS.ACK.{subjects.STREAM_OCPP}.{subjects.CONSUMER_CSMS}.>"]
ACK_WAIT_S = float(csms_consumer().ack_wait or 30.0)  # when the server redelivers what was not acked
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    """This test's server lets it change publish permissions (to lose the processor's acks)."""
    server = NatsServer(tmp_path / "nats", permissions=True)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class AnswerTap:
    """Every answer the processors publish, as core NATS delivers it (JetStream de-duplicates what
    it stores, not what core subscribers get): a call answered again shows up here twice."""

    def __init__(self) -> None:
        self.bodies: dict[tuple[str, str], list[bytes]] = defaultdict(list)
        self.actions: dict[tuple[str, str], str] = {}
        self.order: list[tuple[str, str]] = []  # first answers, as they came
        self.subscription: Subscription | None = None

    async def start(self, nc: NATS) -> AnswerTap:
        self.subscription = await nc.subscribe("ocpp.*.out.>", cb=self._record, pending_msgs_limit=-1)
        return self

    async def _record(self, msg: Msg) -> None:
        h = msg.headers or {}
        if h.get(subjects.H_TYPE) in ("CALLRESULT", "CALLERROR"):
            key = (h.get(subjects.H_STATION, ""), h.get(subjects.H_ID, ""))
            if key not in self.bodies:
                self.order.append(key)
            self.bodies[key].append(msg.data)
            self.actions[key] = h.get(subjects.H_ACTION, "")

    @property
    def count(self) -> int:
        return len(self.order)

    async def stop(self) -> None:
        if self.subscription is not None:
            await self.subscription.unsubscribe()

    def again(self) -> dict[tuple[str, str], list[bytes]]:
        """(station, unique id) -> the answers published more than once."""
        return {key: bodies for key, bodies in self.bodies.items() if len(bodies) > 1}


async def kill_on_answer(nats_url: str, processors: EvbusRole) -> tuple[str, str]:
    """SIGKILL ``processors`` from a process of its own (:mod:`tests.chaos.killer`) the moment it
    sees an answer to a StartTransaction; the (station, unique id) of that answer."""
    killer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.chaos.killer", "--nats", nats_url, "--pid", str(processors.pid),
        stdout=asyncio.subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    assert killer.stdout is not None
    try:
        assert await asyncio.wait_for(killer.stdout.readline(), 15) == b"ready\n"
        station, unique_id = (await asyncio.wait_for(killer.stdout.readline(), 30)).decode().split()
    finally:
        if killer.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                killer.kill()
        await killer.wait()
    await processors.kill()  # reap it
    return station, unique_id


def without_clock(body: bytes) -> Any:
    """An answer frame without the fields that are the CSMS's clock (Heartbeat, BootNotification)."""
    frame = json.loads(body)
    if isinstance(frame[-1], dict):
        frame[-1].pop("currentTime", None)
    return frame


async def test_processor_killed_mid_stream(roles: Roles, nats_server: NatsServer, bus: NATS) -> None:
    began = time.monotonic()
    async with asyncio.timeout(BUDGET_S):
        processors = await roles.start("processors")
        gateway = await roles.start("gateway", gateway_id="gw-1")
        fleet = Fleet.of("PK-", STATIONS, [gateway.url], charging(PAUSE_S), call_timeout=ACK_WAIT_S + 20)
        by_id = {s.id: s for s in fleet}
        published = await AnswerTap().start(bus)
        fleet.start()

        def in_flight() -> set[tuple[str, str]]:
            return {(s.id, s.last_id) for s in fleet if s.last_id in s.sent and s.last_id not in s.answers}

        try:
            await fleet.online(30)
            await until(lambda: published.count >= 20 * STATIONS, 30)

            # kill 1: right after it published an answer
            trigger = await kill_on_answer(nats_server.url, processors)
            stuck = in_flight()
            processors = await roles.start("processors", "processors-2")
            seen = published.count
            await until(lambda: published.count >= seen + 50, 30)

            # kill 2: after answering ACKS_LOST calls whose acks were lost
            await nats_server.deny_publish(ACK_SUBJECTS)
            first = published.count
            await until(lambda: published.count >= first + MARGIN + ACKS_LOST, 30)
            await processors.kill()
            # answered (and stored) with the ack lost; the first few after the reload may be answers
            # the tap had not taken in yet, acked before it
            unacked = set(published.order[first + MARGIN :])
            stuck |= in_flight()
            await nats_server.deny_publish([])
            processors = await roles.start("processors", "processors-3")
            restarted = time.monotonic()

            # redelivered after the ack wait: the calls stuck in dead lanes get their answer at last,
            # the ones answered before are answered again
            wait = ACK_WAIT_S + 20
            await until(lambda: all(u in by_id[sid].answers for sid, u in stuck), wait, interval=0.2)
            await until(lambda: unacked <= published.again().keys(), wait, interval=0.2)
            redelivered_s = time.monotonic() - restarted
            await until(lambda: all(s.answered_since(restarted) >= 5 for s in fleet), 30)
        finally:
            await fleet.stop(timeout=ACK_WAIT_S + 20)

        await published.stop()
        frames = await read_stream(bus)
        ledger = account(fleet, frames)
        starts = stored_answers(frames, "StartTransaction")
        ids = [json.loads(body)[2]["transactionId"] for bodies in starts.values() for body in bodies]
        repeated = {tx: n for tx, n in Counter(ids).items() if n > 1}
        given = [tx for s in fleet for tx in s.state.get("transactions", {}).values()]
        again = published.again()
        actions = Counter(published.actions[key] for key in again)
        differing = {key: bodies for key, bodies in again.items() if len(set(bodies)) > 1}
        beyond_clock = {k: bodies for k, bodies in again.items() if len({repr(without_clock(b)) for b in bodies}) > 1}
        held = max((by_id[sid].answered_at[u] - by_id[sid].sent_at[u] for sid, u in stuck), default=0.0)

        async def consumer_done() -> bool:
            info = await bus.jetstream().consumer_info(subjects.STREAM_OCPP, subjects.CONSUMER_CSMS)
            return info.num_ack_pending == 0 and info.num_pending == 0

        print(
            "\n"
            + ledger.summary(
                "processor-killed",
                kills=2,
                stuck_in_dead_lanes=len(stuck),
                longest_wait_s=round(held, 1),
                acks_lost=len(unacked),
                answered_again=len(again),
                answered_again_by_action=dict(actions),
                first_kill_answer_again=trigger in again,
                differing_bytes=len(differing),
                differing_beyond_clock=len(beyond_clock),
                redelivered_after_s=round(redelivered_s, 1),
                transactions=len(ids),
                seconds=round(time.monotonic() - began, 1),
            )
        )
        ledger.assert_clean()
        assert fleet.answered == fleet.sent, "a CALL went unanswered"
        assert fleet.count(lambda s: s.timeouts) == 0
        assert fleet.count(lambda s: len(s.closed)) == STATIONS, "a socket dropped (only the final stop closes)"
        assert ledger.without_stored_answer == 0
        assert actions["StartTransaction"] > 0, "no StartTransaction answered twice"
        assert not beyond_clock, f"a call answered again differently: {list(beyond_clock.items())[:3]}"
        assert {published.actions[key] for key in differing} <= {"Heartbeat", "BootNotification"}
        assert not repeated, f"transaction ids given twice: {repeated}"
        assert len(set(given)) == len(given) == len(ids)
        await until(consumer_done, 10)  # the last answers' acks reach the consumer
