"""The raw push consumer: headers read exactly as nats-py reads them, every delivery in order through
flow control and early stops, and the client's credentials reused on a server that wants them."""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerConfig, DeliverPolicy

from evbus.embedded_nats import free_port, nats_server_binary
from evbus.push_reader import PushReader, ReaderError, headers
from schemas import streams, subjects

# --- headers, against nats-py's own reading ---------------------------------------------------

BLOCKS = [
    b"NATS/1.0\r\nOcpp-Station: CP-1\r\nOcpp-Type: CALL\r\nNats-Msg-Id: gw:c:1\r\n\r\n",
    b"NATS/1.0\r\n\r\n",
    b"NATS/1.0\r\nOcpp-Gateway: \r\nOcpp-Connection: \r\n\r\n",  # empty values
    b"NATS/1.0\r\nA: 1\r\nB: 2\r\nA: 3\r\n\r\n",  # the last of a repeated name wins, in the first's place
    b"NATS/1.0\r\nA:1\r\nB:\t2 \r\n C : 3\r\n\r\n",  # blanks around names and values are stripped
    b"NATS/1.0\r\nOcpp-Error: frame is not JSON: expected ':' at 12\r\n\r\n",  # ': ' inside a value
    b"NATS/1.0\r\nNo colon here\r\nBad Name: x\r\n: empty name\r\nGood: y\r\n\r\n",
    b'NATS/1.0\r\nQuote: say "hi" \\ bye\r\nTab: a\tb\r\n\r\n',
    b"NATS/1.0\r\nUtf8: gr\xc3\xbc\xc3\x9fe\r\nBroken: \xff\xfeok\r\n\xc3\xa4Key: v\r\n\r\n",
    b"NATS/1.0\r\nLone: a\nB: b\r\nCr: a\rb\r\nEdge: \nx\r\n\r\n",  # a lone LF or CR is part of the line
    b"NATS/1.0\r\nSep\x1c: a\r\nV: b\x1c\r\nV2: \x0bc\x0c\r\n\r\n",  # whitespace bytes.strip() keeps or strips
    b"NATS/1.0\r\nTrailing: x   \r\n\r\n",
]


@pytest.mark.parametrize("block", BLOCKS)
def test_headers_are_what_nats_py_reads(block: bytes) -> None:
    expected = NatsClient._parse_header_lines(block[10:])  # what nats-py does with a data message's block
    found = headers(block)
    assert found == expected
    assert list(found) == list(expected)


def test_random_blocks_too() -> None:
    rng = random.Random(5)
    pieces = [
        b"A",
        b"Ocpp-Id",
        b"x",
        b":",
        b": ",
        b" ",
        b"\t",
        b"\r",
        b"\n",
        b"\r\n",
        b"\xc3\xbc",
        b"\xff",
        b"\x1c",
        b'"',
        b"-",
    ]
    for _ in range(20_000):
        body = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        block = b"NATS/1.0\r\n" + body + rng.choice([b"\r\n\r\n", b"\r\n", b""])
        assert headers(block) == NatsClient._parse_header_lines(block[10:]), block


def test_random_nearly_plain_blocks_too() -> None:
    rng = random.Random(6)
    names = [b"A", b"Ocpp-Id", b"Nats-Msg-Id", b"B c", b" A", b"A ", b"\xc3\xa4", b"", b"A:B"]
    seps = [b": ", b": ", b": ", b":", b" : ", b":  ", b":\t"]
    values = [b"", b"x", b"CP-1", b"a: b", b"x ", b" x", b"\xc3\xbc", b"\xff", b'"q"', b"a\nb", b"a\rb", b"\x1c"]
    for _ in range(20_000):
        lines = [
            rng.choice(names[:3]) + b": " + rng.choice(values[:3])
            if rng.random() < 0.8
            else rng.choice(names) + rng.choice(seps) + rng.choice(values)
            for _ in range(rng.randint(0, 6))
        ]
        block = b"NATS/1.0\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"
        assert headers(block) == NatsClient._parse_header_lines(block[10:]), block


def test_no_header_block_is_no_headers() -> None:
    assert headers(b"") == {}


# --- a real server ----------------------------------------------------------------------------


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_url)
    await streams.declare(client.jetstream())
    yield client
    await client.drain()


def _config(station: str) -> ConsumerConfig:
    return ConsumerConfig(deliver_policy=DeliverPolicy.ALL, filter_subject=subjects.ocpp_station(station))


async def _fill(nc: NATS, station: str, count: int, size: int = 0) -> None:
    js = nc.jetstream()
    body = b"x" * size
    futures = [
        await js.publish_async(
            subjects.ocpp_frame(station, "in", "Heartbeat"), body + str(i).encode(), headers={"N": str(i)}
        )
        for i in range(count)
    ]
    await asyncio.gather(*futures)


async def test_every_delivery_in_order_through_flow_control(nc: NATS) -> None:
    station = f"PR-{uuid.uuid4().hex[:8]}"
    await _fill(nc, station, 3000, size=4000)  # 12 MB: many flow-control rounds
    seen: list[tuple[int, bytes]] = []

    def take(subject: bytes, seq: int, _ns: int, pending: int, block: bytes, data: bytes) -> bool:
        seen.append((pending, data))
        assert headers(block) == {"N": str(len(seen) - 1)}
        assert subject == subjects.ocpp_frame(station, "in", "Heartbeat").encode()
        return False

    async with PushReader.open(nc, subjects.STREAM_OCPP, _config(station)) as reader:
        assert reader.consumer.num_pending == 3000
        while len(seen) < 3000:
            await reader.read(take, 5)
            await asyncio.sleep(0.001)  # a slow reader: the server waits for our flow-control answers
    assert [d[4000:] for _, d in seen] == [str(i).encode() for i in range(3000)]
    assert seen[-1][0] == 0


async def test_a_stop_resumes_at_the_next_delivery(nc: NATS) -> None:
    station = f"PR-{uuid.uuid4().hex[:8]}"
    await _fill(nc, station, 50)
    seqs: list[int] = []

    def take_one(_s: bytes, seq: int, _ns: int, _p: int, _b: bytes, _d: bytes) -> bool:
        seqs.append(seq)
        return True

    async with PushReader.open(nc, subjects.STREAM_OCPP, _config(station)) as reader:
        for _ in range(50):
            assert await reader.read(take_one, 5) == 1
        with pytest.raises(TimeoutError):
            await reader.read(take_one, 0.3)
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 50


async def test_the_consumer_is_gone_afterwards(nc: NATS) -> None:
    station = f"PR-{uuid.uuid4().hex[:8]}"
    await _fill(nc, station, 1)
    async with PushReader.open(nc, subjects.STREAM_OCPP, _config(station)) as reader:
        name = reader.consumer.name
    names = [c.name for c in await nc.jetstream().consumers_info(subjects.STREAM_OCPP)]
    assert name not in names


@contextlib.asynccontextmanager
async def server_with(tmp_path: Path, *auth: str) -> AsyncIterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [nats_server_binary(), "-js", "-sd", str(tmp_path / "js"), "-a", "127.0.0.1", "-p", str(port), *auth],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(
    ("auth", "url"),
    [
        (["--user", "evbus", "--pass", "s3cret"], "nats://evbus:s3cret@{}"),
        (["--auth", "t0ken"], "nats://t0ken@{}"),
    ],
)
async def test_the_clients_credentials_are_used(tmp_path: Path, auth: list[str], url: str) -> None:
    async with server_with(tmp_path, *auth) as address:
        client = await nats.connect(url.format(address))
        try:
            await streams.declare(client.jetstream())
            await _fill(client, "CP-AUTH", 3)
            got: list[int] = []

            def take(_s: bytes, seq: int, _ns: int, _p: int, _b: bytes, _d: bytes) -> bool:
                got.append(seq)
                return False

            async with PushReader.open(client, subjects.STREAM_OCPP, _config("CP-AUTH")) as reader:
                while len(got) < 3:
                    await reader.read(take, 5)
            assert got == [1, 2, 3]
        finally:
            await client.close()


async def test_a_wrong_password_is_an_error(tmp_path: Path) -> None:
    async with server_with(tmp_path, "--user", "evbus", "--pass", "s3cret") as address:
        client = await nats.connect(f"nats://evbus:s3cret@{address}")
        try:
            client.options["password"], client.options["user"] = "wrong", "evbus"
            with pytest.raises(ReaderError, match=r"[Aa]uthorization"):
                async with PushReader.open(client, subjects.STREAM_OCPP, _config("CP-AUTH")):
                    pass
        finally:
            await client.close()
