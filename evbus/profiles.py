"""Stored charging profiles: KV ``charging_profiles``, one version-neutral profile per id.

Operators keep profiles here and refer to them by id or description when they send one to a
station (set-charging-profile, remote-start). Ids come from a KV counter, so every replica agrees
on them; an id given by the operator is taken as it is, and the counter skips it later.
Descriptions, when given, are unique: checked against this process's mirror, so two replicas
creating the same description in the same instant could both succeed.
"""

from __future__ import annotations

import itertools
import math
from typing import Final

import msgspec
from nats.js import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError

from evbus.clock import parse_rfc3339, rfc3339
from evbus.counters import KvCounter
from evbus.kv import KvMirror
from schemas import subjects
from schemas.charging import ChargingProfile, encode

MAX_ID: Final = 2**31 - 1  # chargers store profile ids as 32-bit signed integers


class ProfileError(ValueError):
    """A profile that may not be stored; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class ProfileConflict(Exception):
    """The profile's id or description belongs to another profile."""


class ProfileNotFound(LookupError):
    pass


# --- checking (pure) --------------------------------------------------------------------------


def problems(profile: ChargingProfile) -> list[str]:
    """What is wrong with ``profile``, in words an operator can act on; empty if nothing."""
    found: list[str] = []
    if profile.id is not None and not 1 <= profile.id <= MAX_ID:
        found.append(f"id must be 1 to {MAX_ID}")
    if profile.stack_level < 0:
        found.append("stackLevel must be 0 or more")
    schedule = profile.charging_schedule
    periods = schedule.charging_schedule_period
    if not periods:
        found.append("chargingSchedule.chargingSchedulePeriod needs at least one period")
    elif periods[0].start_period != 0:
        found.append("the first period's startPeriod must be 0")
    for n, (before, after) in enumerate(itertools.pairwise(periods), start=1):
        if after.start_period <= before.start_period:
            found.append(f"period {n}: startPeriod must be greater than the one before")
    for n, period in enumerate(periods):
        if not (math.isfinite(period.limit) and period.limit >= 0):
            found.append(f"period {n}: limit must be a number of 0 or more")
        if period.number_phases is not None and not 1 <= period.number_phases <= 3:
            found.append(f"period {n}: numberPhases must be 1, 2 or 3")
    if schedule.duration is not None and schedule.duration <= 0:
        found.append("chargingSchedule.duration must be more than 0 seconds")
    if schedule.min_charging_rate is not None and not (
        math.isfinite(schedule.min_charging_rate) and schedule.min_charging_rate >= 0
    ):
        found.append("chargingSchedule.minChargingRate must be a number of 0 or more")
    if profile.charging_profile_kind == "Recurring" and profile.recurrency_kind is None:
        found.append("a Recurring profile needs recurrencyKind (Daily or Weekly)")
    if profile.charging_profile_kind == "Relative" and schedule.start_schedule is not None:
        found.append("a Relative profile has no chargingSchedule.startSchedule")
    moments = {
        name: _moment(text, name, found)
        for name, text in (
            ("validFrom", profile.valid_from),
            ("validTo", profile.valid_to),
            ("chargingSchedule.startSchedule", schedule.start_schedule),
        )
        if text is not None
    }
    start, end = moments.get("validFrom"), moments.get("validTo")
    if start is not None and end is not None and not start < end:
        found.append("validFrom must be before validTo")
    return found


def _moment(text: str, name: str, found: list[str]) -> str | None:
    try:
        if "T" not in text.upper():
            raise ValueError("no time")
        moment = parse_rfc3339(text)
    except ValueError:
        found.append(f"{name} {text!r} is not an RFC 3339 date-time, e.g. 2027-01-01T00:00:00Z")
        return None
    return rfc3339(moment, "seconds" if moment.microsecond == 0 else "milliseconds")


def checked(profile: ChargingProfile) -> ChargingProfile:
    """``profile`` with its times in UTC (``…Z``), or :class:`ProfileError`."""
    wrong = problems(profile)
    if wrong:
        raise ProfileError(wrong)
    ignored: list[str] = []

    def utc(text: str | None, name: str) -> str | None:
        return None if text is None else _moment(text, name, ignored)

    schedule = msgspec.structs.replace(
        profile.charging_schedule, start_schedule=utc(profile.charging_schedule.start_schedule, "startSchedule")
    )
    return msgspec.structs.replace(
        profile,
        charging_schedule=schedule,
        valid_from=utc(profile.valid_from, "validFrom"),
        valid_to=utc(profile.valid_to, "validTo"),
    )


# --- the store --------------------------------------------------------------------------------


def _key(profile_id: int) -> str:
    return subjects.kv_key(str(profile_id))


class ProfileStore:
    def __init__(self, mirror: KvMirror[ChargingProfile], ids: KvCounter) -> None:
        self._kv = mirror.kv
        self._mirror = mirror
        self._ids = ids

    @classmethod
    async def open(cls, js: JetStreamContext) -> ProfileStore:
        mirror = await KvMirror.open(js, subjects.BUCKET_PROFILES, ChargingProfile)
        return cls(mirror, KvCounter(await js.key_value(subjects.BUCKET_CSMS), subjects.COUNTER_PROFILES))

    # reads: from the mirror

    def get(self, profile_id: int) -> ChargingProfile | None:
        return self._mirror.get(str(profile_id))

    def by_description(self, text: str) -> ChargingProfile | None:
        """The profile whose description is exactly ``text`` (never one without a description)."""
        if not text:
            return None
        return next((p for p in self._mirror.values() if p.description == text), None)

    def find(self, ref: int | str) -> ChargingProfile | None:
        """The profile an operator means: an ``int`` is an id, a ``str`` a description — the JSON
        type decides, so a profile described as ``"42"`` is found by ``"42"``, profile 42 by ``42``."""
        if isinstance(ref, bool):
            return None
        if isinstance(ref, int):
            return self.get(ref)
        return self.by_description(ref)

    def all(self) -> list[ChargingProfile]:
        """Every profile, sorted by id."""
        return sorted(self._mirror.values(), key=lambda p: p.id or 0)

    def __len__(self) -> int:
        return len(self._mirror)

    # writes: checked, then to KV

    async def create(self, profile: ChargingProfile) -> ChargingProfile:
        """Store a new profile; allocates its id when it has none. :class:`ProfileError` if it is
        invalid, :class:`ProfileConflict` if its id or description is taken."""
        profile = checked(profile)
        self._check_description(profile, None)
        if profile.id is not None:
            if not await self._create(profile):
                raise ProfileConflict(f"charging profile {profile.id} exists")
            return profile
        while True:
            profile_id = await self._ids.next()
            if profile_id > MAX_ID:
                raise ProfileConflict(f"no charging profile ids left (the counter reached {MAX_ID})")
            numbered = msgspec.structs.replace(profile, id=profile_id)
            if await self._create(numbered):  # else: taken by a profile created with its own id
                return numbered

    async def replace(self, profile: ChargingProfile) -> ChargingProfile:
        """Overwrite the stored profile of ``profile.id``. :class:`ProfileNotFound` if there is
        none, :class:`ProfileConflict` if the description is another profile's or it changed
        under us."""
        profile_id = profile.id
        if profile_id is None:
            raise ProfileError(["replacing a profile needs its id"])
        profile = checked(profile)
        self._check_description(profile, profile_id)
        try:
            entry = await self._kv.get(_key(profile_id))
        except (KeyNotFoundError, KeyDeletedError):
            raise ProfileNotFound(f"no charging profile {profile_id}") from None
        try:
            await self._kv.update(_key(profile_id), encode(profile), last=entry.revision)
        except KeyWrongLastSequenceError:
            raise ProfileConflict(f"charging profile {profile_id} changed meanwhile; try again") from None
        self._mirror.remember(str(profile_id), profile)
        return profile

    async def delete(self, profile_id: int) -> bool:
        """Remove profile ``profile_id``; False if there is none."""
        try:
            await self._kv.get(_key(profile_id))
        except (KeyNotFoundError, KeyDeletedError):
            return False
        await self._kv.delete(_key(profile_id))
        self._mirror.forget(str(profile_id))
        return True

    async def stop(self) -> None:
        await self._mirror.stop()

    def _check_description(self, profile: ChargingProfile, own_id: int | None) -> None:
        other = self.by_description(profile.description)
        if other is not None and other.id != own_id:
            raise ProfileConflict(f"description {profile.description!r} belongs to charging profile {other.id}")

    async def _create(self, profile: ChargingProfile) -> bool:
        assert profile.id is not None
        try:
            await self._kv.create(_key(profile.id), encode(profile))
        except KeyWrongLastSequenceError:
            return False
        self._mirror.remember(str(profile.id), profile)
        return True
