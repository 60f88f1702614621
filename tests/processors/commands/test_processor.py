"""The command path over NATS alone: a request on cmd.{station}.{action} reaches a real station."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call_result

from evbus.settings import Settings
from schemas import commands, subjects
from tests.conftest import running
from tests.support import charge_point, eventually, present, stored, stored_frames


class Station16(Cp16):
    @on("Reset")
    async def on_reset(self, type: str, **_: Any) -> call_result.Reset:
        return call_result.Reset(status="Accepted" if type == "Soft" else "Rejected")

    @on("ChangeConfiguration")
    async def on_change_configuration(self, key: str, value: str) -> call_result.ChangeConfiguration:
        await asyncio.sleep(3600)  # never answers
        raise AssertionError


async def request(nc: Any, station: str, action: str, payload: bytes, **headers: str) -> commands.CommandReply:
    msg = await nc.request(subjects.command(station, action), payload, timeout=10, headers=headers or None)
    return commands.decode_reply(msg.data)


@pytest.mark.asyncio
async def test_a_command_reaches_the_station_and_its_answer_comes_back(settings: Settings, station: str) -> None:
    async with running(settings) as s, charge_point(s.url(station), station, "ocpp1.6", Station16) as (_, wire):
        await eventually(lambda: present(s.js, station))
        # member order as requested, whitespace and all: the payload goes on the wire as given
        reply = await request(s.nc, station, "Reset", b'{"type": "Soft"}', **{commands.H_COMMAND_ID: "cmd-1"})
        assert reply.outcome == "answered", reply
        assert msgspec.json.decode(reply.response) == {"status": "Accepted"}
        assert reply.command_id == "cmd-1"
        assert reply.protocol == "ocpp1.6"
        assert wire.received[-1] == '[2,"cmd-1","Reset",{"type": "Soft"}]'

        frames = await stored_frames(s.js, station)
        kinds = [
            (m.subject.split(".")[2], m.headers.get(subjects.H_TYPE), m.headers.get(subjects.H_ID)) for m in frames
        ]
        assert ("out", "CALL", "cmd-1") in kinds
        assert ("in", "CALLRESULT", "cmd-1") in kinds
        events = await stored(s.js, f"events.command.{subjects.token(station)}.>", subjects.STREAM_EVENTS)
        statuses = [commands.decode_event(m.data).status for m in events]
        assert statuses == ["requested", "sent", "answered"]


@pytest.mark.asyncio
async def test_offline_invalid_and_timeout(settings: Settings, station: str) -> None:
    async with running(settings) as s:
        offline = await request(s.nc, station, "Reset", b'{"type": "Soft"}')
        assert offline.outcome == "offline"
        async with charge_point(s.url(station), station, "ocpp1.6", Station16):
            await eventually(lambda: present(s.js, station))
            invalid = await request(s.nc, station, "Reset", b'{"type": "Sideways"}')
            assert invalid.outcome == "invalid"
            assert "Sideways" in (invalid.detail or "")
            not_json = await request(s.nc, station, "Reset", b"{type")
            assert not_json.outcome == "invalid"
            unknown = await request(s.nc, station, "RequestStartTransaction", b"{}")
            assert unknown.outcome == "invalid"
            assert "not an ocpp1.6 action" in (unknown.detail or "")
            error = await request(s.nc, station, "ClearCache", b"{}")  # the ChargePoint has no handler
            assert error.outcome == "error"
            assert error.error_code == "NotImplemented"
            # last: the ocpp library's ChargePoint answers nothing more while a handler hangs
            slow = await request(
                s.nc, station, "ChangeConfiguration", b'{"key": "a", "value": "b"}', **{commands.H_TIMEOUT: "0.5"}
            )
            assert slow.outcome == "timeout"
            assert slow.detail == f"no answer from {station!r} within 0.5 s"
            events = await stored(s.js, f"events.command.{subjects.token(station)}.>", subjects.STREAM_EVENTS)
            ended = [commands.decode_event(m.data) for m in events if m.subject.rsplit(".", 1)[1] != "requested"]
            assert [(e.status, e.outcome) for e in ended] == [
                ("failed", "offline"),
                ("failed", "invalid"),
                ("failed", "invalid"),
                ("failed", "invalid"),
                ("sent", None),
                ("failed", "error"),
                ("sent", None),
                ("timed_out", "timeout"),
            ]
