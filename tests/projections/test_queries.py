"""Queries over what operator commands caused: commands, reservations (expired as of ``now``),
local lists, and the station detail that shows them."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import msgspec
import pytest

from projections import queries
from tests.projections.synthetic import Script, command_events
from tests.projections.test_fold import folded

STATIONS = 4
BEFORE_EXPIRY = datetime(2026, 11, 21, 6, 30, tzinfo=UTC)  # the 1.6 reservations expire at 07:00:0x
AFTER_EXPIRY = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    messages = Script().traffic(STATIONS) + command_events(STATIONS)
    return folded(messages, 50)


def as_json(value: object) -> object:
    return msgspec.json.decode(msgspec.json.encode(value))


# --- commands ---------------------------------------------------------------------------------


def test_a_command_with_its_payloads_as_json(con: duckdb.DuckDBPyConnection) -> None:
    found = queries.command(con, "cmd-1")
    assert found is not None
    assert as_json(found) == {
        "commandId": "cmd-1",
        "identity": "S201:1",
        "action": "Reset",
        "command": "reset",
        "status": "failed",
        "outcome": "error",
        "requestedAt": "2026-11-21T07:00:01.000000Z",
        "sentAt": "2026-11-21T07:00:01.000000Z",
        "finishedAt": "2026-11-21T07:00:02.000000Z",
        "request": {"type": "Hard"},
        "response": None,
        "errorCode": "NotSupported",
        "errorDescription": "no",
        "errorDetails": {"why": ["x", 1]},
        "durationMs": 8.0,
        "requestedBy": "admin",
        "detail": None,
    }
    assert queries.command(con, "no-such-command") is None


def test_commands_filter_and_page(con: duckdb.DuckDBPyConnection) -> None:
    rows, total = queries.commands(con, queries.CommandFilter(), queries.Page(limit=2))
    assert total == STATIONS + 1
    assert [r.command_id for r in rows] == ["cmd-3", "cmd-2"]  # newest request first
    answered, total = queries.commands(con, queries.CommandFilter(status="answered"))
    assert total == 2
    assert {r.command_id for r in answered} == {"cmd-0", "cmd-3"}
    mine, total = queries.commands(con, queries.CommandFilter(identity="S16.2", action="Reset"))
    assert ([r.outcome for r in mine], total) == (["timeout"], 1)
    assert queries.commands(con, queries.CommandFilter(action="Nope")) == ([], 0)


# --- reservations -----------------------------------------------------------------------------


def test_reservations_as_of_now(con: duckdb.DuckDBPyConnection) -> None:
    rows, total = queries.reservations(con, BEFORE_EXPIRY, identity="S16.0")
    assert total == 2
    assert [(r.reservation_id, r.status, r.transaction_id, r.connector_id) for r in rows] == [
        (200, "cancelled", None, 2),
        (100, "used", "1000", 1),
    ]
    assert as_json(rows[1]) == {
        "reservationId": 100,
        "identity": "S16.0",
        "connectorId": 1,
        "evseId": None,
        "idTag": "TAG0",
        "parentIdTag": None,
        "expiryDate": "2026-11-21T07:00:00.200000Z",
        "status": "used",
        "transactionId": "1000",
        "requestedAt": "2026-11-21T06:00:00.200000Z",
        "updatedAt": "2026-11-21T06:00:02.000000Z",
    }
    used, total = queries.reservations(con, BEFORE_EXPIRY, status="used")
    assert total == STATIONS
    assert {r.identity for r in used} == {"S16.0", "S201:1", "S16.2", "S201:3"}


def an_accepted_reservation() -> duckdb.DuckDBPyConnection:
    s = Script()
    messages = [s.conn("R", "R-c", "ocpp1.6", "connected", 0)]
    reserve = {"connectorId": 0, "expiryDate": "2026-11-21T07:00:00+01:00", "idTag": "T", "reservationId": 1}
    messages += s.command("R", "R-c", "ocpp1.6", "ReserveNow", reserve, {"status": "Accepted"}, 1)
    return folded(messages, 10)


def test_an_accepted_reservation_past_its_expiry_shows_as_expired() -> None:
    con = an_accepted_reservation()  # expires 06:00Z (07:00+01:00)
    (before,), _ = queries.reservations(con, datetime(2026, 11, 21, 5, 59, tzinfo=UTC))
    assert (before.status, before.expiry_date) == ("accepted", "2026-11-21T06:00:00.000000Z")
    (after,), _ = queries.reservations(con, datetime(2026, 11, 21, 6, 1, tzinfo=UTC))
    assert after.status == "expired"
    assert queries.reservations(con, datetime(2026, 11, 21, 6, 1, tzinfo=UTC), status="accepted") == ([], 0)
    assert queries.reservations(con, datetime(2026, 11, 21, 6, 1, tzinfo=UTC), status="expired")[1] == 1


# --- local lists ------------------------------------------------------------------------------


def test_a_local_list(con: duckdb.DuckDBPyConnection) -> None:
    found = queries.local_list(con, "S201:1")
    assert as_json(found) == {
        "identity": "S201:1",
        "listVersion": 5,
        "reportedVersion": 5,
        "updateType": "Full",
        "updatedAt": "2026-11-21T06:00:01.050000Z",
        "entries": [
            {"idTag": "T1", "type": "ISO14443", "status": "Accepted", "expiryDate": "2026-11-22T06:00:00.000000Z",
             "parentIdTag": "G"},
            {"idTag": "U", "type": "eMAID", "status": "Invalid", "expiryDate": None, "parentIdTag": None},
        ],
    }  # fmt: skip


def test_a_station_without_a_local_list_has_an_empty_one_and_an_unknown_station_none() -> None:
    con = an_accepted_reservation()
    assert as_json(queries.local_list(con, "R")) == {
        "identity": "R",
        "listVersion": None,
        "reportedVersion": None,
        "updateType": None,
        "updatedAt": None,
        "entries": [],
    }
    assert queries.local_list(con, "nobody") is None


# --- station detail ---------------------------------------------------------------------------


def test_the_station_detail_shows_firmware_diagnostics_and_open_reservations(con: duckdb.DuckDBPyConnection) -> None:
    detail = queries.station(con, "S201:1", BEFORE_EXPIRY)
    assert detail is not None
    assert (detail.firmware_status, detail.diagnostics_status) == ("Installing", "Uploading")
    assert detail.firmware_status_at == "2026-11-21T06:00:01.200000Z"
    assert detail.reservations == []  # one used, one expired
    open_one = queries.station(an_accepted_reservation(), "R", datetime(2026, 11, 21, 5, 0, tzinfo=UTC))
    assert open_one is not None
    assert [r.reservation_id for r in open_one.reservations] == [1]
    lapsed = queries.station(an_accepted_reservation(), "R", datetime(2026, 11, 21, 7, 0, tzinfo=UTC))
    assert lapsed is not None
    assert lapsed.reservations == []
