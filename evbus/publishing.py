"""Storing a message in JetStream until it is acknowledged, the one way evbus writes frames.

Every retry carries the same headers, so the same ``Nats-Msg-Id``: a publish whose ack was lost
is stored once (the streams' duplicate window is 2 minutes).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import NoStreamResponseError

log = logging.getLogger(__name__)

ACK_TIMEOUT_S: Final = 2.0
_RETRYABLE = (NatsTimeoutError, NoRespondersError, NoStreamResponseError, ConnectionError)


class StorageUnavailable(RuntimeError):
    """JetStream did not acknowledge a message within the budget."""


async def publish_until_stored(
    js: JetStreamContext, subject: str, body: bytes, headers: dict[str, str], budget: float | None
) -> None:
    """Publish and await the ack, retrying with backoff; ``budget=None`` retries for ever."""
    loop = asyncio.get_running_loop()
    deadline = None if budget is None else loop.time() + budget
    delay = 0.05
    while True:
        try:
            await js.publish(subject, body, timeout=ACK_TIMEOUT_S, headers=headers)
            return
        except _RETRYABLE as exc:
            if deadline is not None and loop.time() + delay > deadline:
                raise StorageUnavailable(f"no JetStream ack for {subject}: {exc!r}") from exc
            log.warning("%s not stored yet (%r), retrying", subject, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
