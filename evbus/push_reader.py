"""Read a JetStream push consumer straight off the socket: the bulk path of replay and projections.

nats-py turns every delivered message into a ``Msg`` with its headers parsed line by line into a
dict, and runs a callback task (or a queue and a task per ``next_msg``) for it: 8-12 µs a message
on our machines, which held a station replay to ~25-35 k frames/s and a rebuild to ~30 k
messages/s (bench/RESULTS.md). Reading a consumer in order needs none of that. A :class:`PushReader` opens a
connection of its own to the server the client is connected to (same credentials), subscribes to
a fresh inbox, creates an ephemeral push consumer with flow control that delivers there, and hands
each message to the caller as the bytes of its subject, header block and payload, sliced out of
the socket buffer, with the stream sequence, stream time and pending count from its reply subject.

What nats-py's ordered consumer does, it does too, in the same pass over the buffer: flow-control
requests are answered once every message before them was handed over, a stalled consumer's
heartbeat is answered, PINGs get their PONG, and a gap in the consumer sequence or a heartbeat
that reports more deliveries than we saw raises :class:`Gap`, so the caller can start again after
the last sequence it took. Backpressure is the caller's: the socket is read only in :meth:`read`,
and the server stops at its flow-control window when we do not answer.

Credentials come from the client (user/password or token, in the URL or as options) and TLS from
the URL or the server's INFO; other authentication (nkeys, JWT) is refused with a clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any, Final

from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo

# (subject, stream sequence, stream time in ns, messages pending after this one, header block, payload)
# -> True to stop reading here (the rest of the buffer waits for the next read)
Handler = Callable[[bytes, int, int, int, bytes, bytes], bool]

HEARTBEAT_S: Final = 5.0  # the server's idle heartbeat; no byte for 3 of them means a dead connection
CHUNK: Final = 1 << 18


class ReaderError(ConnectionError):
    """The server refused a request or broke the connection."""


class Gap(ReaderError):
    """A delivery went missing: start a new consumer after the last sequence taken."""


class PushReader:
    """One ephemeral push consumer, read from a connection of its own. Use :meth:`open`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, consumer: ConsumerInfo) -> None:
        self._reader = reader
        self._writer = writer
        self.consumer = consumer  # as created: num_pending says how much was stored for it
        self._buf = b""
        self._pos = 0
        self._cseq = 0  # consumer sequence of the last delivery handed over

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, nc: NATS, stream: str, config: ConsumerConfig) -> AsyncIterator[PushReader]:
        """Create the consumer ``config`` describes (its delivery settings are ours) and read it."""
        reader, writer = await _connect(nc)
        consumer = None
        try:
            inbox = nc.new_inbox()
            writer.write(f"SUB {inbox} 1\r\nPING\r\n".encode())
            await _until_pong(reader)  # the server knows our interest before the consumer exists
            config = replace(
                config,
                deliver_subject=inbox,
                flow_control=True,
                idle_heartbeat=HEARTBEAT_S,
                ack_policy=AckPolicy.NONE,
                max_deliver=1,
                mem_storage=True,
                num_replicas=1,
            )
            consumer = await nc.jsm().add_consumer(stream, config=config)
            yield cls(reader, writer, consumer)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if consumer is not None and nc.is_connected:
                with contextlib.suppress(Exception):
                    await nc.jsm().delete_consumer(stream, consumer.name)

    async def read(self, handle: Handler, idle_s: float = 3 * HEARTBEAT_S) -> int:
        """Hand the next deliveries to ``handle``; wait for the socket only when none is buffered.

        Returns how many were handed over: at least one, the last of them the one ``handle``
        stopped at, if it did. Raises :class:`TimeoutError` when nothing at all (not even a
        heartbeat) arrived for ``idle_s`` seconds, :class:`ReaderError` when the connection broke.
        """
        while True:
            count, stopped = self._parse(handle)
            if count or stopped:
                return count
            async with asyncio.timeout(idle_s):
                chunk = await self._reader.read(CHUNK)
            if not chunk:
                raise ReaderError("nats-server closed the connection")
            self._buf = self._buf[self._pos :] + chunk if self._pos < len(self._buf) else chunk
            self._pos = 0

    def _parse(self, handle: Handler) -> tuple[int, bool]:
        """Every complete message in the buffer, in order, until ``handle`` says stop."""
        buf, pos, end = self._buf, self._pos, len(self._buf)
        count, out = 0, []
        try:
            while (eol := buf.find(b"\r\n", pos)) >= 0:
                op = buf[pos]
                if op == 72 or op == 77:  # HMSG subject sid [reply] header-size total-size / MSG … size
                    args = buf[pos + 4 : eol].split()
                    headed = op == 72
                    stop = eol + 2 + int(args[-1])
                    if stop + 2 > end:
                        break  # the payload is still on its way
                    head = eol + 2 + int(args[-2]) if headed else eol + 2
                    block, data = buf[eol + 2 : head], buf[head:stop]
                    pos = stop + 2
                    if len(args) == (5 if headed else 4):  # with a reply subject
                        reply = args[2]
                        if reply.startswith(b"$JS.ACK."):
                            t = reply.split(b".")
                            if len(t) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
                                cseq, seq, ns, pending = int(t[6]), int(t[5]), int(t[7]), int(t[8])
                            else:  # $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<n>.<sseq>.<cseq>.<ts>.<pending>.<x>
                                cseq, seq, ns, pending = int(t[8]), int(t[7]), int(t[9]), int(t[10])
                            if cseq != self._cseq + 1:
                                raise Gap(f"consumer sequence {cseq} after {self._cseq}")
                            self._cseq = cseq
                            count += 1
                            if handle(args[0], seq, ns, pending, block, data):
                                return count, True
                        else:
                            out.append(b"PUB " + reply + b" 0\r\n\r\n")  # a flow-control request
                    else:
                        self._status(block, out)
                elif op == 80 and buf[pos + 1] == 73:  # PING
                    out.append(b"PONG\r\n")
                    pos = eol + 2
                elif op == 45:  # -ERR
                    raise ReaderError(buf[pos + 5 : eol].decode(errors="replace"))
                else:  # +OK, PONG, INFO
                    pos = eol + 2
            return count, False
        finally:
            self._pos = pos
            if out:
                self._writer.write(b"".join(out))

    def _status(self, block: bytes, out: list[bytes]) -> None:
        """A status message without reply: an idle heartbeat (maybe naming a stalled flow control)."""
        if not block.startswith(b"NATS/1.0 100"):
            raise ReaderError(block.split(b"\r\n", 1)[0].decode(errors="replace"))
        fields = dict(_STATUS_FIELD.findall(block))
        stalled = fields.get(b"Nats-Consumer-Stalled")
        if stalled:
            out.append(b"PUB " + stalled + b" 0\r\n\r\n")
        last = fields.get(b"Nats-Last-Consumer")
        if last is not None and int(last) != self._cseq:
            raise Gap(f"heartbeat reports {int(last)} deliveries, {self._cseq} arrived")


_STATUS_FIELD: Final = re.compile(rb"(?m)^([!-9;-~]+):[ \t]*([^\r\n]*?)[ \t]*\r$")


async def _connect(nc: NATS) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A second connection to the server ``nc`` is connected to, as the same user."""
    url = nc.connected_url
    if url is None or url.hostname is None:
        raise ReaderError("the NATS client is not connected")
    options: dict[str, Any] = nc.options
    if url.scheme in ("ws", "wss") or options.get("tls_handshake_first"):
        raise ReaderError(f"reading a consumer over {url.scheme}:// (or TLS-first) is not supported")
    reader, writer = await asyncio.open_connection(url.hostname, url.port or 4222, limit=4 * CHUNK)
    try:
        line = await asyncio.wait_for(reader.readline(), 10)
        if not line.startswith(b"INFO "):
            raise ReaderError(f"not a NATS server: {line[:40]!r}")
        info = json.loads(line[5:])
        tls = options.get("tls")
        if url.scheme == "tls" or info.get("tls_required") or tls is not None:
            context = tls if isinstance(tls, ssl.SSLContext) else ssl.create_default_context()
            await writer.start_tls(context, server_hostname=options.get("tls_hostname") or url.hostname)
        connect: dict[str, Any] = {
            "verbose": False,
            "pedantic": False,
            "headers": True,
            "no_responders": True,
            "protocol": 1,
            "lang": "python3",
            "version": "evbus-push-reader",
            "name": f"{options.get('name') or 'evbus'}-reader",
        }
        user, password, token = options.get("user"), options.get("password"), options.get("token")
        if user is not None and password is not None:
            connect["user"], connect["pass"] = _value(user), _value(password)
        elif token is not None:
            connect["auth_token"] = _value(token)
        elif url.username is not None:
            if url.password is None:
                connect["auth_token"] = url.username
            else:
                connect["user"], connect["pass"] = url.username, url.password
        writer.write(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        await _until_pong(reader)
    except BaseException:
        writer.close()
        raise
    return reader, writer


def _value(option: Any) -> str:
    return str(option() if callable(option) else option)


async def _until_pong(reader: asyncio.StreamReader) -> None:
    async with asyncio.timeout(10):
        while True:
            line = await reader.readline()
            if not line:
                raise ReaderError("nats-server closed the connection")
            if line.startswith(b"-ERR"):
                raise ReaderError(line[5:].strip().decode(errors="replace"))
            if line.startswith(b"PONG"):
                return


# --- headers ----------------------------------------------------------------------------------

# one `Name: value` line as every NATS client writes it: a name of visible ASCII without ':', one
# space, a value of printable ASCII without surrounding blanks (possibly empty); each match starts
# at the line feed that ends the line before
_PLAIN_LINE: Final = re.compile(r"\n([!-9;-~]+): ([!-~][ -~]*[!-~]|[!-~]|)\r(?=\n)")
_BLANKS: Final = " \t\n\r\x0b\x0c"  # what bytes.strip() strips


def headers(block: bytes) -> dict[str, str]:
    """The headers of a header block (``NATS/1.0\\r\\n…\\r\\n\\r\\n``), exactly as nats-py reads them.

    Blocks whose every line is plain (see ``_PLAIN_LINE``), which is every block evbus writes, are
    read with one regular expression; anything else goes line by line with nats-py's own rules
    (names stripped, lines without ':' or with a blank inside the name skipped, values stripped and
    decoded as UTF-8 with replacement, the last of repeated names wins).
    """
    if not block:
        return {}
    text = block.decode("latin-1")
    pairs = _PLAIN_LINE.findall(text, 9)
    lines = text.count("\n") - 2  # the NATS/1.0 line and the closing empty line
    # every CR and LF but those of the first and the last two lines belongs to a match: the block
    # is the status line, the matched lines one after the other, and the empty line
    if (
        len(pairs) == lines
        and text.count("\r") - 2 == lines
        and text.startswith("NATS/1.0\r\n")
        and text.endswith("\r\n\r\n")
    ):
        return dict(pairs)
    return _header_lines(block[10:])


def _header_lines(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in raw.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        try:
            key = name.strip().decode("ascii")
        except UnicodeDecodeError:
            continue
        if any(c.isspace() for c in key):
            continue
        out[key] = value.strip().decode("utf-8", "replace")
    return out


__all__ = ["CHUNK", "HEARTBEAT_S", "Gap", "Handler", "PushReader", "ReaderError", "headers"]
