"""A small Server-Sent Events client for the tests: reads one stream of an evbus API with httpx."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True, slots=True)
class Event:
    event: str  # the event name; ":" for a comment (heartbeat)
    data: str
    id: str | None

    def json(self) -> Any:
        return json.loads(self.data)


class Reader:
    """The events of one open SSE response, parsed as the EventSource spec says (enough of it)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.ended = False

    async def next(self, timeout: float = 10.0) -> Event:
        """The next event or comment; ``StopAsyncIteration`` when the server ended the stream."""
        async with asyncio.timeout(timeout):
            name, data, ident = "message", [], None
            async for line in self._lines:
                if line == "":
                    if data or ident is not None:
                        return Event(name, "\n".join(data), ident)
                    continue
                if line.startswith(":"):
                    return Event(":", line[1:].strip(), None)
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "event":
                    name = value
                elif field == "data":
                    data.append(value)
                elif field == "id":
                    ident = value
            self.ended = True
            raise StopAsyncIteration

    async def events(self, count: int, timeout: float = 10.0, name: str | None = None) -> list[Event]:
        """The next ``count`` events (comments skipped; only ``name`` ones when given)."""
        out: list[Event] = []
        async with asyncio.timeout(timeout):
            while len(out) < count:
                event = await self.next(timeout)
                if event.event != ":" and (name is None or event.event == name):
                    out.append(event)
        return out

    async def rest(self, timeout: float = 10.0) -> list[Event]:
        """Every event until the server ends the stream (comments skipped)."""
        out: list[Event] = []
        with contextlib.suppress(StopAsyncIteration):
            while True:
                event = await self.next(timeout)
                if event.event != ":":
                    out.append(event)
        return out


@contextlib.asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, path: str, last_event_id: str | None = None, **params: Any
) -> AsyncIterator[Reader]:
    """Open ``path`` as an SSE stream (``Last-Event-ID`` when given) and read it."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    query = {k: v for k, v in params.items() if v is not None}
    async with client.stream("GET", path, headers=headers, params=query, timeout=httpx.Timeout(30.0)) as response:
        if response.status_code != 200:
            await response.aread()
            raise AssertionError(f"{path}: {response.status_code} {response.text}")
        yield Reader(response)
