"""What the stations sent and were answered, held against what the ``OCPP`` stream stored.

The rules every fault test checks (DESIGN.md §5, ADR 0001):

- **lost**: a CALL a station got an answer to is not stored — the gateway answered an unstored frame;
- **duplicates**: a ``Nats-Msg-Id`` stored twice, a station CALL (station, unique id) stored twice,
  or a CALL with more than one stored answer (the stations never reuse a unique id, so none of
  these is a station's own retry);
- **mismatched**: a station received an answer that is not byte for byte the stored one;
- **strays**: a station received an answer to no CALL it had in flight (a second answer);
- **phantoms**: a stored CALL no station sent;
- **out of order**: a station's CALLs stored in another order than it sent them.

CALLs written to a socket that a fault then destroyed may or may not be stored and are never
answered: they are counted (``unanswered_stored``, ``unanswered_unstored``), not errors.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from nats.aio.client import Client as NATS
from nats.js.api import DeliverPolicy

from schemas import subjects
from tests.chaos.stations import Station


@dataclass(frozen=True, slots=True)
class StoredFrame:
    seq: int
    subject: str
    headers: dict[str, str]
    data: bytes


async def read_stream(nc: NATS, stream: str = subjects.STREAM_OCPP) -> list[StoredFrame]:
    """Everything ``stream`` holds, in order (bounded: 10 s without a message fails)."""
    js = nc.jetstream()
    last = (await js.stream_info(stream)).state.last_seq
    if not last:
        return []
    sub = await js.subscribe(
        ">",
        stream=stream,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
        pending_msgs_limit=-1,
        pending_bytes_limit=-1,
    )
    frames: list[StoredFrame] = []
    try:
        while True:
            msg = await sub.next_msg(timeout=10)
            seq = msg.metadata.sequence.stream
            frames.append(StoredFrame(seq, msg.subject, dict(msg.headers or {}), msg.data))
            if seq >= last:
                return frames
    finally:
        await sub.unsubscribe()


@dataclass(slots=True)
class Ledger:
    sent: int = 0
    answered: int = 0
    stored: int = 0  # the stations' CALLs in the stream
    lost: int = 0
    duplicates: int = 0
    mismatched: int = 0
    strays: int = 0
    phantoms: int = 0
    out_of_order: int = 0
    unanswered_stored: int = 0
    unanswered_unstored: int = 0
    without_stored_answer: int = 0  # stored CALLs the processor has not (yet) stored an answer to
    stream_messages: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self, name: str, **extra: object) -> str:
        more = "".join(f" {k}={v}" for k, v in extra.items())
        return (
            f"chaos[{name}]: sent={self.sent} answered={self.answered} stored={self.stored} lost={self.lost} "
            f"duplicates={self.duplicates} mismatched={self.mismatched} strays={self.strays} "
            f"unanswered_stored={self.unanswered_stored} unanswered_unstored={self.unanswered_unstored}"
            f" without_stored_answer={self.without_stored_answer} stream={self.stream_messages}{more}"
        )

    def assert_clean(self) -> None:
        bad = {
            "lost": self.lost,
            "duplicates": self.duplicates,
            "mismatched": self.mismatched,
            "strays": self.strays,
            "phantoms": self.phantoms,
            "out_of_order": self.out_of_order,
        }
        assert not any(bad.values()), f"{bad}: {self.problems}"

    def problem(self, text: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(text)


def account(stations: Iterable[Station], frames: list[StoredFrame]) -> Ledger:
    """Hold every station's CALLs and answers against ``frames`` (the whole OCPP stream)."""
    ledger = Ledger(stream_messages=len(frames))
    msg_ids = Counter(f.headers.get(subjects.H_MSG_ID, "") for f in frames)
    ledger.duplicates += sum(n - 1 for n in msg_ids.values() if n > 1)
    for msg_id, n in msg_ids.items():
        if n > 1:
            ledger.problem(f"Nats-Msg-Id {msg_id!r} stored {n} times")
    calls: dict[str, list[str]] = defaultdict(list)  # station -> unique ids of its stored CALLs, in order
    answers: dict[tuple[str, str], list[bytes]] = defaultdict(list)  # (station, unique id) -> stored answers
    for f in frames:
        h = f.headers
        station, kind, unique_id = h.get(subjects.H_STATION, ""), h.get(subjects.H_TYPE), h.get(subjects.H_ID, "")
        if h.get(subjects.H_DIRECTION) == "in" and kind == "CALL":
            calls[station].append(unique_id)
        elif h.get(subjects.H_DIRECTION) == "out" and kind in ("CALLRESULT", "CALLERROR"):
            answers[station, unique_id].append(f.data)
    for s in stations:
        stored = Counter(calls.get(s.id, []))
        ledger.sent += len(s.sent)
        ledger.answered += len(s.answers)
        ledger.stored += sum(stored.values())
        ledger.strays += len(s.strays)
        for text in s.strays[:3]:
            ledger.problem(f"{s.id}: an answer to no CALL in flight: {text[:120]}")
        for unique_id, n in stored.items():
            if n > 1:
                ledger.duplicates += n - 1
                ledger.problem(f"{s.id}: CALL {unique_id} stored {n} times")
            if unique_id not in s.sent:
                ledger.phantoms += 1
                ledger.problem(f"{s.id}: CALL {unique_id} stored but never sent")
        for unique_id, text in s.answers.items():
            stored_answers = answers.get((s.id, unique_id), [])
            if unique_id not in stored:
                ledger.lost += 1
                ledger.problem(f"{s.id}: CALL {unique_id} {s.sent[unique_id]} answered but not stored")
            if len(stored_answers) > 1:
                ledger.duplicates += len(stored_answers) - 1
                ledger.problem(f"{s.id}: {len(stored_answers)} answers stored to {unique_id}: {stored_answers}")
            if text.encode() not in stored_answers:
                ledger.mismatched += 1
                ledger.problem(f"{s.id}: the answer to {unique_id} it got is not stored: {text[:120]}")
        ledger.without_stored_answer += sum(1 for u in stored if (s.id, u) not in answers)
        unanswered = s.sent.keys() - s.answers.keys()
        ledger.unanswered_stored += len(unanswered & stored.keys())
        ledger.unanswered_unstored += len(unanswered - stored.keys())
        order = [int(u[1:]) for u in dict.fromkeys(calls.get(s.id, [])) if u[1:].isdigit()]
        if order != sorted(order):
            ledger.out_of_order += 1
            ledger.problem(f"{s.id}: CALLs stored out of order: {order}")
    return ledger


def stored_answers(frames: list[StoredFrame], action: str) -> dict[tuple[str, str], list[bytes]]:
    """(station, unique id) -> the stored answers to its ``action`` CALLs."""
    found: dict[tuple[str, str], list[bytes]] = defaultdict(list)
    for f in frames:
        h = f.headers
        answer = h.get(subjects.H_TYPE) in ("CALLRESULT", "CALLERROR")
        if answer and h.get(subjects.H_DIRECTION) == "out" and h.get(subjects.H_ACTION) == action:
            found[h.get(subjects.H_STATION, ""), h.get(subjects.H_ID, "")].append(f.data)
    return found
