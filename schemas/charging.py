"""Charging profiles as evbus stores them: one version-neutral shape, sent as 1.6 or 2.x.

The shape is OCPP 1.6's ``csChargingProfiles`` (what most operators know) with the profile's
evbus ``id`` (sent on the wire as ``chargingProfileId`` / ``id``) and a ``description``. Purposes
may be given in either version's words: ``ChargePointMaxProfile`` and ``ChargingStationMaxProfile``
are the same purpose. Stored in KV ``charging_profiles`` under the id.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Purpose = Literal["ChargePointMaxProfile", "ChargingStationMaxProfile", "TxDefaultProfile", "TxProfile"]
Kind = Literal["Absolute", "Recurring", "Relative"]


class SchedulePeriod(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", forbid_unknown_fields=True):
    start_period: int  # seconds from the start of the schedule
    limit: float  # in chargingRateUnit
    number_phases: int | None = None


class ChargingSchedule(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", forbid_unknown_fields=True):
    charging_rate_unit: Literal["A", "W"]
    charging_schedule_period: list[SchedulePeriod]
    duration: int | None = None
    start_schedule: str | None = None
    min_charging_rate: float | None = None


class ChargingProfile(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", forbid_unknown_fields=True):
    """A stored profile. ``id`` is allocated by evbus when it is created without one."""

    charging_profile_purpose: Purpose
    charging_profile_kind: Kind
    charging_schedule: ChargingSchedule
    id: int | None = None
    description: str = ""
    stack_level: int = 0
    recurrency_kind: Literal["Daily", "Weekly"] | None = None
    valid_from: str | None = None
    valid_to: str | None = None


encode = msgspec.json.Encoder().encode
decode_profile = msgspec.json.Decoder(ChargingProfile).decode
