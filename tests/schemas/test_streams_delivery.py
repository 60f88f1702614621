"""schemas.streams.delivery reads a JetStream reply subject as nats-py's metadata does."""

from __future__ import annotations

import pytest
from nats.aio.msg import Msg

from schemas import streams


@pytest.mark.parametrize(
    "reply",
    [
        "$JS.ACK.OCPP.csms.1.4711.4700.1763719200123456789.12",
        "$JS.ACK.hub.ACCOUNTHASH.OCPP.csms.2.4711.4700.1763719200123456789.0.token",
    ],
)
def test_delivery_reads_sequence_time_and_pending_like_nats_py(reply: str) -> None:
    metadata = Msg(_client=None, reply=reply).metadata  # type: ignore[arg-type]
    seq, stream_ns, pending = streams.delivery(reply)
    assert (seq, pending) == (metadata.sequence.stream, metadata.num_pending)
    assert abs(stream_ns / 1000 - metadata.timestamp.timestamp() * 1_000_000) <= 1  # nats-py keeps whole µs
