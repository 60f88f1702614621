"""The gateway's copy of KV ``mqtt_ignore``: reading the bucket again never shrinks the filters in force."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from evbus.kv import Entry
from gateways.mqtt import control
from gateways.mqtt.ignore import IgnoreFilters
from schemas.telemetry import IgnoredTopic, encode
from tests.support import eventually


def entry(topic_filter: str) -> Entry:
    value = encode(IgnoredTopic(filter=topic_filter, added_by="admin", added_at="2026-11-21T00:00:00Z"))
    return Entry(key=topic_filter, value=value, revision=1, deleted=False)


class Bucket:
    """KV ``mqtt_ignore`` as evbus.kv reads it: three filters; the first follower fails."""

    def __init__(self) -> None:
        self.reads = 0

    async def read_all(self, kv: Any) -> tuple[dict[str, Entry], int]:
        self.reads += 1
        return {e.key: e for e in (entry("a/#"), entry("b/#"), entry("c/#"))}, 3

    async def changes(self, kv: Any, revision: int) -> Any:
        fail = self.reads == 1

        class Changes:
            def __aiter__(self) -> Any:
                return self

            async def __anext__(self) -> Entry:
                await asyncio.sleep(0)
                if fail:
                    raise ConnectionError("nats-server went away")
                await asyncio.Event().wait()  # no more changes
                raise AssertionError

            async def stop(self) -> None:
                pass

        return Changes()


async def test_a_new_follower_replaces_the_filters_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control, "WATCH_RETRY_S", 0)
    filters = IgnoreFilters()
    gateway = SimpleNamespace(id="gw", filters=filters, forget_unmatched=lambda: None)
    plane = control.ControlPlane.__new__(control.ControlPlane)
    plane.gw = gateway  # type: ignore[assignment]
    seen: list[tuple[str, ...]] = []
    replace = filters.replace_operator

    def spy(found: Any) -> None:
        replace(found)
        seen.append(filters.operator)

    monkeypatch.setattr(filters, "replace_operator", spy)
    bucket, ready = Bucket(), asyncio.Event()
    monkeypatch.setattr(control, "read_all", bucket.read_all)
    monkeypatch.setattr(control.Changes, "after", bucket.changes)
    task = asyncio.create_task(plane._follow_ignore(None, ready))  # type: ignore[arg-type]
    try:
        await eventually(lambda: _true(bucket.reads >= 2 and len(seen) >= 2))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert ready.is_set()
    assert set(seen) == {("a/#", "b/#", "c/#")}, "never fewer filters while the bucket is read again"


async def _true(value: bool) -> bool:
    return value
