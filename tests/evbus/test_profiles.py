"""Stored charging profiles: what a valid one is (pure), and the store on a real JetStream KV."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS

from evbus.counters import KvCounter
from evbus.profiles import (
    MAX_ID,
    ProfileConflict,
    ProfileError,
    ProfileNotFound,
    ProfileStore,
    checked,
    problems,
)
from schemas import streams, subjects
from schemas.charging import ChargingProfile, ChargingSchedule, SchedulePeriod
from tests.support import eventually


def make(*periods: tuple[int, float], **fields: Any) -> ChargingProfile:
    schedule_fields = {k: fields.pop(k) for k in ("duration", "start_schedule", "min_charging_rate") if k in fields}
    return ChargingProfile(
        charging_profile_purpose=fields.pop("charging_profile_purpose", "TxDefaultProfile"),
        charging_profile_kind=fields.pop("charging_profile_kind", "Absolute"),
        charging_schedule=ChargingSchedule(
            charging_rate_unit="W",
            charging_schedule_period=[
                SchedulePeriod(start_period=s, limit=limit) for s, limit in (periods or ((0, 11_000.0),))
            ],
            **schedule_fields,
        ),
        **fields,
    )


# --- what a valid profile is ------------------------------------------------------------------


def test_a_plain_profile_is_valid() -> None:
    assert problems(make((0, 11_000.0), (1800, 3_680.0), (3600, 0.0))) == []


def test_an_empty_schedule_is_not() -> None:
    profile = make()
    profile.charging_schedule.charging_schedule_period.clear()
    assert problems(profile) == ["chargingSchedule.chargingSchedulePeriod needs at least one period"]


@pytest.mark.parametrize(
    ("profile", "problem"),
    [
        (make((10, 1.0)), "the first period's startPeriod must be 0"),
        (make((0, 1.0), (60, 2.0), (60, 3.0)), "period 2: startPeriod must be greater than the one before"),
        (make((0, 1.0), (60, 2.0), (30, 3.0)), "period 2: startPeriod must be greater than the one before"),
        (make((0, -0.5)), "period 0: limit must be a number of 0 or more"),
        (make((0, float("nan"))), "period 0: limit must be a number of 0 or more"),
        (make(stack_level=-1), "stackLevel must be 0 or more"),
        (make(id=0), f"id must be 1 to {MAX_ID}"),
        (make(id=MAX_ID + 1), f"id must be 1 to {MAX_ID}"),
        (make(duration=0), "chargingSchedule.duration must be more than 0 seconds"),
        (make(min_charging_rate=-1.0), "chargingSchedule.minChargingRate must be a number of 0 or more"),
        (make(charging_profile_kind="Recurring"), "a Recurring profile needs recurrencyKind (Daily or Weekly)"),
        (
            make(charging_profile_kind="Relative", start_schedule="2027-01-01T00:00:00Z"),
            "a Relative profile has no chargingSchedule.startSchedule",
        ),
        (
            make(valid_from="2027-01-01T00:00:00Z", valid_to="2027-01-01T00:00:00Z"),
            "validFrom must be before validTo",
        ),
        (
            make(valid_from="2027-01-01T02:00:00+02:00", valid_to="2027-01-01T00:30:00Z"),  # 00:00Z < 00:30Z
            None,
        ),
        (make(valid_to="soon"), "validTo 'soon' is not an RFC 3339 date-time, e.g. 2027-01-01T00:00:00Z"),
        (
            make(valid_from="2027-01-01"),
            "validFrom '2027-01-01' is not an RFC 3339 date-time, e.g. 2027-01-01T00:00:00Z",
        ),
    ],
)
def test_what_is_wrong_is_said(profile: ChargingProfile, problem: str | None) -> None:
    assert problems(profile) == ([] if problem is None else [problem])


def test_every_problem_is_listed() -> None:
    wrong = problems(make((5, -1.0), stack_level=-2))
    assert len(wrong) == 3


def test_checked_stores_times_in_utc() -> None:
    profile = checked(
        make(
            valid_from="2027-01-01T01:00:00+01:00",
            valid_to="2027-01-02T00:00:00.5+00:00",
            start_schedule="2027-01-01T06:00:00",  # no offset: UTC
        )
    )
    assert profile.valid_from == "2027-01-01T00:00:00Z"
    assert profile.valid_to == "2027-01-02T00:00:00.500Z"
    assert profile.charging_schedule.start_schedule == "2027-01-01T06:00:00Z"


def test_checked_refuses_with_every_problem() -> None:
    with pytest.raises(ProfileError) as refused:
        checked(make((5, -1.0)))
    assert len(refused.value.problems) == 2


# --- the store --------------------------------------------------------------------------------


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_url)
    await streams.declare(client.jetstream())
    yield client
    await client.drain()


@pytest.fixture
async def store(nc: NATS) -> AsyncIterator[ProfileStore]:
    opened = await ProfileStore.open(nc.jetstream())
    yield opened
    await opened.stop()


def name(text: str) -> str:
    """A description no other test uses (the session's server is shared)."""
    return f"{text}-{uuid.uuid4().hex[:8]}"


async def test_create_allocates_ascending_ids(store: ProfileStore) -> None:
    first = await store.create(make(description=name("a")))
    second = await store.create(make(description=name("b")))

    assert first.id is not None
    assert second.id is not None
    assert 1 <= first.id < second.id
    assert store.get(first.id) == first  # a read right after the write sees it
    assert [p.id for p in store.all()] == sorted(p.id or 0 for p in store.all())


async def test_an_id_given_is_kept_and_skipped_by_the_counter(nc: NATS, store: ProfileStore) -> None:
    current = await KvCounter(await nc.jetstream().key_value(subjects.BUCKET_CSMS), subjects.COUNTER_PROFILES).current()
    taken = await store.create(make(id=current + 1))
    assert taken.id == current + 1

    following = await store.create(make())

    assert following.id is not None
    assert following.id > current + 1
    with pytest.raises(ProfileConflict, match=f"{current + 1} exists"):
        await store.create(make(id=current + 1))


async def test_descriptions_are_unique(store: ProfileStore) -> None:
    text = name("solar")
    one = await store.create(make(description=text))
    with pytest.raises(ProfileConflict, match="belongs to charging profile"):
        await store.create(make(description=text))
    other = await store.create(make(description=name("wind")))
    with pytest.raises(ProfileConflict):
        await store.replace(msgspec.structs.replace(other, description=text))
    assert await store.replace(msgspec.structs.replace(one, stack_level=4)) is not None  # its own: fine
    many = [await store.create(make()), await store.create(make())]  # no description: no conflict
    assert all(p.description == "" for p in many)


async def test_find_by_id_or_description(store: ProfileStore) -> None:
    text = str(uuid.uuid4().int)[:12]  # a description of digits only
    profile = await store.create(make(description=text))
    assert profile.id is not None

    assert store.find(profile.id) == profile
    assert store.find(text) == profile
    assert store.find(int(text)) is None  # an int is an id
    assert store.find(str(profile.id)) is None  # a string is a description, never an id
    assert store.find("") is None
    assert store.by_description(text) == profile


async def test_replace_and_delete(store: ProfileStore) -> None:
    profile = await store.create(make(description=name("r")))
    assert profile.id is not None

    replaced = await store.replace(msgspec.structs.replace(profile, stack_level=7))

    assert replaced.stack_level == 7
    assert store.get(profile.id) == replaced
    assert await store.delete(profile.id)
    assert store.get(profile.id) is None
    assert not await store.delete(profile.id)
    with pytest.raises(ProfileNotFound):
        await store.replace(replaced)
    recreated = await store.create(make(id=profile.id))  # a deleted id may be used again
    assert store.get(profile.id) == recreated


async def test_an_invalid_profile_is_not_stored(store: ProfileStore) -> None:
    before = len(store)
    with pytest.raises(ProfileError):
        await store.create(make((30, 1.0), description=name("late")))
    assert len(store) == before


async def test_another_replica_sees_the_changes(nc: NATS, store: ProfileStore) -> None:
    replica = await ProfileStore.open(nc.jetstream())
    try:
        profile = await store.create(make(description=name("shared")))
        pid = profile.id
        assert pid is not None
        await eventually(lambda: _async(replica.get(pid) == profile), timeout=5)
        await store.delete(pid)
        await eventually(lambda: _async(replica.get(pid) is None), timeout=5)
    finally:
        await replica.stop()


async def _async(value: bool) -> bool:
    return value
