"""The station-id encoding (DESIGN §2) and the subject builders, table-style."""

from __future__ import annotations

import pytest

from schemas import subjects


@pytest.mark.parametrize(
    ("station", "token"),
    [
        ("CP01", "CP01"),
        ("CP-01_a", "CP-01_a"),
        ("CP.01", "CP%2E01"),
        ("CP*", "CP%2A"),
        (">", "%3E"),
        ("100%", "100%25"),
        ("with space", "with%20space"),
        ("a:b+c|d@e=f", "a%3Ab%2Bc%7Cd%40e%3Df"),
        ("Ladesäule", "Lades%C3%A4ule"),
        ("X" * 60, "X" * 60),
    ],
)
def test_token_escapes_every_byte_outside_the_safe_set(station: str, token: str) -> None:
    assert subjects.token(station) == token
    assert subjects.untoken(token) == station


@pytest.mark.parametrize("station", ["CP.01", "a*b>c", "%41", "=3D", "x y", "ö.ü", "-_-", "A" * 48])
def test_kv_keys_round_trip_and_use_only_kv_characters(station: str) -> None:
    key = subjects.kv_key(station)
    assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-=")
    assert subjects.from_kv_key(key) == station


def test_escaped_tokens_never_contain_subject_wildcards_or_separators() -> None:
    for station in ("a.b", "*", ">", "a.>", "..."):
        assert not set(subjects.token(station)) & set(".*> ")


def test_a_percent_in_the_id_cannot_forge_another_stations_token() -> None:
    assert subjects.token("CP%2E01") != subjects.token("CP.01")
    assert subjects.untoken(subjects.token("CP%2E01")) == "CP%2E01"


def test_empty_ids_have_no_token() -> None:
    with pytest.raises(ValueError, match="empty"):
        subjects.token("")


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (subjects.ocpp_frame("CP.1", "in", "BootNotification"), "ocpp.CP%2E1.in.BootNotification"),
        (subjects.ocpp_frame("CP.1", "out", "Reset"), "ocpp.CP%2E1.out.Reset"),
        (subjects.ocpp_invalid("CP.1", "in"), "ocpp.CP%2E1.in._invalid"),
        (subjects.ocpp_conn("CP.1", "connected"), "ocpp.CP%2E1.conn.connected"),
        (subjects.ocpp_station_out("CP>"), "ocpp.CP%3E.out.>"),
        (subjects.security_event("auth_failed"), "events.security.auth_failed"),
        (subjects.transaction_event("CP.1", "orphan_stop"), "events.transaction.CP%2E1.orphan_stop"),
        (subjects.upload_event("CP.1", "received"), "events.upload.CP%2E1.received"),
        (subjects.command("CP.1", "Reset"), "cmd.CP%2E1.Reset"),
        (subjects.telemetry("evcc", "lp.1"), "telemetry.evcc.lp%2E1"),
    ],
)
def test_subject_builders(built: str, expected: str) -> None:
    assert built == expected


def test_station_of_decodes_any_ocpp_subject() -> None:
    assert subjects.station_of("ocpp.CP%2E01.in.Heartbeat") == "CP.01"
    with pytest.raises(ValueError, match="not an ocpp subject"):
        subjects.station_of("events.security.x")
