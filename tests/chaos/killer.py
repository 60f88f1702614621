"""Kill a process the moment NATS delivers an answer it published: ``python -m tests.chaos.killer``.

    python -m tests.chaos.killer --nats URL --pid PID [--action StartTransaction]

Subscribes (core) to ``ocpp.*.out.>``, prints ``ready``, and on the first CALLRESULT or CALLERROR
to an ``--action`` CALL sends SIGKILL to ``--pid``, prints ``{station} {unique id}`` and exits.
The answer reaches core subscribers before JetStream has stored it and sent the publisher its
PubAck, and the processor acks the call only after that PubAck: killing it from an otherwise idle
process at this moment most often leaves the call answered and not acked, so it is redelivered and
answered again. (From the test process itself, busy with the stations, the kill comes later.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import nats
import uvloop
from nats.aio.msg import Msg

from schemas import subjects


async def main(url: str, pid: int, action: str) -> None:
    nc = await nats.connect(url, name="chaos-killer")
    done = asyncio.get_running_loop().create_future()

    async def answer(msg: Msg) -> None:
        h = msg.headers or {}
        if done.done() or h.get(subjects.H_ACTION) != action:
            return
        if h.get(subjects.H_TYPE) in ("CALLRESULT", "CALLERROR"):
            os.kill(pid, signal.SIGKILL)
            done.set_result(f"{h.get(subjects.H_STATION)} {h.get(subjects.H_ID)}")

    await nc.subscribe("ocpp.*.out.>", cb=answer, pending_msgs_limit=-1)
    await nc.flush()
    print("ready", flush=True)
    try:
        print(await asyncio.wait_for(done, 30), flush=True)
    finally:
        await nc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--nats", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--action", default="StartTransaction")
    args = parser.parse_args()
    uvloop.run(main(args.nats, args.pid, args.action))
    sys.exit(0)
