"""The Store against a real nats-server: stored, stored once, refused, timed out, pipelined."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NATS

from evbus.publishing import NotStored, StorageUnavailable, Store, publish_until_stored
from schemas import streams, subjects


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_url)
    await streams.declare(client.jetstream(), streams.Retention())
    yield client
    await client.drain()


@pytest.fixture
async def store(nc: NATS) -> AsyncIterator[Store]:
    s = await Store(nc, ack_timeout=0.5).start()
    yield s
    await s.stop()


def _subject() -> str:
    return subjects.ocpp_frame(f"ST-{uuid.uuid4().hex[:8]}", "in", "Heartbeat")


async def test_store_returns_the_stream_sequence(nc: NATS, store: Store) -> None:
    subject = _subject()
    seq = await store.store(subject, b'[2,"1","Heartbeat",{}]', {subjects.H_MSG_ID: uuid.uuid4().hex})
    msg = await nc.jetstream().get_msg(subjects.STREAM_OCPP, seq)
    assert msg.subject == subject
    assert msg.data == b'[2,"1","Heartbeat",{}]'


async def test_a_retry_with_the_same_msg_id_is_stored_once(store: Store) -> None:
    headers = {subjects.H_MSG_ID: uuid.uuid4().hex}
    subject = _subject()
    first = await store.store(subject, b"[]", headers)
    second = await store.store(subject, b"[]", headers)
    assert first == second


async def test_a_subject_no_stream_captures_is_refused_at_once(store: Store) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(NotStored, match="no responders"):
        await store.store(f"nowhere.{uuid.uuid4().hex}", b"x", {})
    assert loop.time() - started < 0.4  # refused by the server, not timed out


async def test_an_unanswered_publish_times_out(nc: NATS, store: Store) -> None:
    # a core subscriber that never replies stands in for a JetStream that does not answer
    silent = f"silent.{uuid.uuid4().hex}"
    sub = await nc.subscribe(silent)
    try:
        with pytest.raises(NotStored, match="no JetStream ack"):
            await asyncio.wait_for(store.store(silent, b"x", {}), timeout=5)
        with pytest.raises(StorageUnavailable):
            await publish_until_stored(store, silent, b"x", {}, budget=0.6)
    finally:
        await sub.unsubscribe()


async def test_pipelined_publishes_keep_their_order(nc: NATS, store: Store) -> None:
    subject = _subject()
    futures = [await store.send(subject, str(i).encode(), {subjects.H_MSG_ID: uuid.uuid4().hex}) for i in range(200)]
    seqs = await asyncio.gather(*futures)
    assert seqs == sorted(seqs)
    bodies = [(await nc.jetstream().get_msg(subjects.STREAM_OCPP, s)).data for s in (seqs[0], seqs[-1])]
    assert bodies == [b"0", b"199"]
