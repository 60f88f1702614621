"""The asking side of ``cmd.{station}.{action}``: what the API (or any evbus tool) uses to command a station."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from schemas import commands, subjects
from schemas.commands import CommandReply

log = logging.getLogger(__name__)

REPLY_MARGIN_S: Final = 5.0  # beyond the command's own timeout: storing the CALL and the events
REMEMBERED: Final = 10_000  # commands sent without waiting whose outcome this process keeps


class NoProcessor(RuntimeError):
    """No command processor answered: none is running, or it is overloaded."""


@dataclass(slots=True)
class Pending:
    """A command sent with ``wait=False``: its reply once it came (until then None)."""

    command_id: str
    station: str
    action: str
    command: str | None
    started: float
    reply: CommandReply | None = None
    error: str | None = None


class CommandClient:
    def __init__(self, nc: NATS, default_timeout: float) -> None:
        self.nc = nc
        self.default_timeout = default_timeout
        self.background: OrderedDict[str, Pending] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(
        self,
        station: str,
        action: str,
        payload: bytes,
        *,
        command: str | None = None,
        command_id: str | None = None,
        timeout_s: float | None = None,
        requested_by: str | None = None,
        secrets: list[str] | None = None,
    ) -> CommandReply:
        """Send and wait for the outcome. Raises :class:`NoProcessor` when no processor replied.
        ``secrets``: JSON pointers of payload members the stream must not keep (e.g. a password)."""
        wait = min(timeout_s or self.default_timeout, commands.MAX_TIMEOUT_S)
        headers = {
            commands.H_COMMAND_ID: command_id or new_id(),
            commands.H_TIMEOUT: f"{wait:g}",
        }
        if command:
            headers[commands.H_COMMAND] = command
        if requested_by:
            headers[commands.H_REQUESTED_BY] = requested_by
        if secrets:
            headers[commands.H_SECRET] = ",".join(secrets)
        try:
            msg = await self.nc.request(
                subjects.command(station, action), payload, timeout=wait + REPLY_MARGIN_S, headers=headers
            )
        except NoRespondersError as exc:
            raise NoProcessor("no command processor is running") from exc
        except NatsTimeout as exc:
            raise NoProcessor(f"no command processor replied within {wait + REPLY_MARGIN_S:g} s") from exc
        return commands.decode_reply(msg.data)

    def start(
        self,
        station: str,
        action: str,
        payload: bytes,
        *,
        command: str | None = None,
        timeout_s: float | None = None,
        requested_by: str | None = None,
    ) -> Pending:
        """Send without waiting: the outcome lands in :attr:`background` (and in the stream)."""
        command_id = new_id()
        pending = Pending(command_id, station, action, command, time.time())
        self.background[command_id] = pending
        while len(self.background) > REMEMBERED:
            self.background.popitem(last=False)

        async def run() -> None:
            try:
                pending.reply = await self.send(
                    station,
                    action,
                    payload,
                    command=command,
                    command_id=command_id,
                    timeout_s=timeout_s,
                    requested_by=requested_by,
                )
            except NoProcessor as exc:
                pending.error = str(exc)
            except Exception as exc:  # recorded for GET /api/commands/{id}; nobody else awaits this task
                log.exception("command %s to %s failed", command_id, station)
                pending.error = f"internal error: {exc!r}"

        task = asyncio.create_task(run(), name=f"command-{command_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return pending

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def new_id() -> str:
    """A command id: a UUID, which is also a valid OCPP unique id (36 characters)."""
    return str(uuid.uuid4())
