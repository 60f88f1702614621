"""The fold without a server: what operator commands cause (commands, reservations, local lists,
firmware and diagnostics status) folds to the same tables wherever the batch boundaries fall, and
the tables say what the frames and events said."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import duckdb
import pytest

from projections import fold, schema
from tests.projections.synthetic import Message, Script, command_events, project

COMPARED = [t for t in schema.TABLES if t not in ("meta", "checkpoints")]


def fresh() -> duckdb.DuckDBPyConnection:
    con = schema.connect(":memory:")
    schema.create(con)
    return con


def tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in COMPARED}  # noqa: S608


def folded(messages: list[Message], batch_size: int) -> duckdb.DuckDBPyConnection:
    con = fresh()
    project(con, messages, batch_size)
    return con


def interleave(frames: list[Message], events: list[Message]) -> list[Message]:
    """Events spread among the frames, so batches hold both streams."""
    every = max(1, len(frames) // max(1, len(events)))
    out: list[Message] = []
    pending: Iterator[Message] = iter(events)
    for i, m in enumerate(frames):
        out.append(m)
        if i % every == 0:
            out.extend(e for e in [next(pending, None)] if e is not None)
    out.extend(pending)
    return out


STATIONS = 4


@pytest.fixture(scope="module")
def stream() -> list[Message]:
    return interleave(Script().traffic(STATIONS), command_events(STATIONS))


@pytest.fixture(scope="module")
def once(stream: list[Message]) -> duckdb.DuckDBPyConnection:
    return folded(stream, len(stream))


@pytest.mark.parametrize("batch_size", [1, 2, 7, 50])
def test_batch_boundaries_change_nothing(
    stream: list[Message], once: duckdb.DuckDBPyConnection, batch_size: int
) -> None:
    whole, split = tables(once), tables(folded(stream, batch_size))
    for table in COMPARED:
        assert split[table] == whole[table], table


def test_each_statement_lists_what_it_reads() -> None:
    assert len(fold._READS) == len(fold.OCPP)
    assert len(fold._EVENT_READS) == len(fold.EVENTS)


# --- commands ---------------------------------------------------------------------------------


def test_a_command_row_holds_the_latest_of_its_events(once: duckdb.DuckDBPyConnection) -> None:
    rows = once.execute(
        """SELECT command_id, station, status, outcome, sent_at IS NOT NULL, finished_at IS NOT NULL,
                  CAST(request AS VARCHAR), CAST(response AS VARCHAR), error_code, CAST(error_details AS VARCHAR),
                  duration_ms, timeout_s, requested_by, gateway, protocol
        FROM commands WHERE command_id IN ('cmd-0', 'cmd-1', 'cmd-2') ORDER BY command_id"""
    ).fetchall()
    assert rows == [
        ("cmd-0", "S16.0", "answered", "answered", True, True, '{"type":"Hard"}', '{"status":"Accepted"}',
         None, None, 12.5, None, "admin", "gw-1", "ocpp1.6"),
        ("cmd-1", "S201:1", "failed", "error", True, True, '{"type":"Hard"}', None,
         "NotSupported", '{"why":["x",1]}', 8.0, None, "admin", "gw-1", "ocpp2.0.1"),
        ("cmd-2", "S16.2", "timed_out", "timeout", True, True, '{"type":"Hard"}', None,
         None, None, 5000.0, 5.0, "admin", "gw-1", "ocpp1.6"),
    ]  # fmt: skip
    offline = once.execute(
        "SELECT status, outcome, detail, sent_at FROM commands WHERE command_id = 'cmd-offline'"
    ).fetchone()
    assert offline == ("failed", "offline", "no gateway holds GONE", None)
    assert once.execute("SELECT count(*) FROM commands").fetchone() == (STATIONS + 1,)


# --- reservations -----------------------------------------------------------------------------


def reservation(con: duckdb.DuckDBPyConnection, station: str, rid: int) -> dict[str, Any]:
    cur = con.execute("SELECT * FROM reservations WHERE station = ? AND reservation_id = ?", [station, rid])
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    assert row is not None, (station, rid)
    return dict(zip(names, row, strict=True))


def test_a_reservation_a_transaction_used(once: duckdb.DuckDBPyConnection) -> None:
    r16 = reservation(once, "S16.0", 100)
    assert (r16["status"], r16["transaction_id"], r16["connector_id"], r16["evse_id"], r16["id_tag"]) == (
        "used", "1000", 1, None, "TAG0",
    )  # fmt: skip
    assert r16["used_at"] == datetime(2026, 11, 21, 6, 0, 2)  # StartTransaction's timestamp
    assert r16["answered_at"] is not None
    assert r16["ended_at"] is None
    r201 = reservation(once, "S201:1", 301)
    assert (r201["status"], r201["transaction_id"], r201["connector_id"], r201["evse_id"], r201["id_tag"]) == (
        "used", "tx-1", None, 1, "TOK1",
    )  # fmt: skip
    assert r201["used_at"] == datetime(2026, 11, 21, 6, 0, 10, 500000)  # Started; Updated repeats the id


def test_a_reservation_cancelled_refused_or_expired(once: duckdb.DuckDBPyConnection) -> None:
    cancelled = reservation(once, "S16.0", 200)  # n % 4 == 0: accepted, then cancelled
    assert (cancelled["status"], cancelled["parent_id_tag"], cancelled["connector_id"]) == ("cancelled", "PARENT", 2)
    assert cancelled["ended_at"] is not None
    assert reservation(once, "S16.2", 202)["status"] == "failed"  # the station's CALLERROR
    expired = reservation(once, "S201:1", 401)  # ReservationStatusUpdate Expired
    assert (expired["status"], expired["parent_id_tag"], expired["evse_id"]) == ("expired", "G", 2)
    assert once.execute("SELECT count(*) FROM reservations").fetchone() == (2 * STATIONS,)


def command(station: str, action: str, req: Any, res: Any, t: float, script: Script, error: str = "") -> list[Message]:
    return script.command(station, f"{station}-c", "ocpp1.6", action, req, res, t, error)


def reserve(rid: int, id_tag: str) -> dict[str, Any]:
    return {"connectorId": 1, "expiryDate": "2026-11-21T07:00:00Z", "idTag": id_tag, "reservationId": rid}


@pytest.mark.parametrize("batch_size", [1, 2, 3, 100])
def test_a_new_request_for_an_id_replaces_the_reservation(batch_size: int) -> None:
    s = Script()
    st = "S"
    msgs = [s.conn(st, "S-c", "ocpp1.6", "connected", 0)]
    msgs += command(st, "ReserveNow", reserve(9, "FIRST"), {"status": "Accepted"}, 1, s)
    msgs += s.call(st, "S-c", "ocpp1.6", "StartTransaction",
                   {"connectorId": 1, "idTag": "FIRST", "meterStart": 0, "timestamp": s.at(2), "reservationId": 9},
                   {"transactionId": 77, "idTagInfo": {"status": "Accepted"}}, 2)  # fmt: skip
    msgs += command(st, "ReserveNow", reserve(9, "SECOND"), {"status": "Occupied"}, 3, s)
    # a change for a reservation never requested (made before the stream's retention, say) adds nothing
    msgs += command(st, "CancelReservation", {"reservationId": 5}, {"status": "Accepted"}, 4, s)
    con = folded(msgs, batch_size)
    r = reservation(con, st, 9)
    assert (r["id_tag"], r["status"], r["transaction_id"], r["used_at"]) == ("SECOND", "occupied", None, None)
    assert con.execute("SELECT count(*) FROM reservations").fetchone() == (1,)


# --- local lists ------------------------------------------------------------------------------


def entries(con: duckdb.DuckDBPyConnection, station: str) -> list[tuple[Any, ...]]:
    return con.execute(
        "SELECT id_tag, token_type, status, expiry_date, parent_id_tag FROM local_list_entries "
        "WHERE station = ? ORDER BY id_tag",
        [station],
    ).fetchall()


def test_local_lists_follow_the_updates_the_station_accepted(once: duckdb.DuckDBPyConnection) -> None:
    # 1.6: Full {A, B}, Differential {-B, +C}, a Differential {-A} refused with VersionMismatch
    assert entries(once, "S16.0") == [
        ("A0", None, "Accepted", datetime(2026, 11, 22, 6, 0), None),
        ("C0", None, "Accepted", None, None),
    ]
    assert once.execute(
        "SELECT list_version, update_type, reported_version FROM local_lists WHERE station = 'S16.0'"
    ).fetchone() == (2, "Differential", 2)
    # 2.0.1: Full with idToken / idTokenInfo
    assert entries(once, "S201:1") == [
        ("T1", "ISO14443", "Accepted", datetime(2026, 11, 22, 6, 0), "G"),
        ("U", "eMAID", "Invalid", None, None),
    ]
    assert once.execute(
        "SELECT list_version, update_type, reported_version FROM local_lists WHERE station = 'S201:1'"
    ).fetchone() == (5, "Full", 5)


def send_list(version: int, kind: str, *items: tuple[str, str | None]) -> dict[str, Any]:
    return {
        "listVersion": version,
        "updateType": kind,
        "localAuthorizationList": [
            {"idTag": tag, **({"idTagInfo": {"status": status}} if status else {})} for tag, status in items
        ],
    }


ACCEPTED = {"status": "Accepted"}


@pytest.mark.parametrize("batch_size", [1, 2, 5, 100])
def test_a_full_update_replaces_what_came_before_it(batch_size: int) -> None:
    s, st = Script(), "L"
    msgs = [s.conn(st, "L-c", "ocpp1.6", "connected", 0)]
    updates = [
        send_list(1, "Full", ("A", "Accepted"), ("B", "Accepted")),
        send_list(2, "Differential", ("A", "Blocked"), ("Z", None)),  # Z: removing what is not there
        send_list(3, "Full", ("B", "Expired"), ("C", "Accepted"), ("C", "Blocked")),  # the later C counts
        send_list(4, "Differential", ("C", None), ("D", "Accepted")),
    ]
    for i, update in enumerate(updates):
        msgs += command(st, "SendLocalList", update, ACCEPTED, i + 1, s)
    # refused or failed: change nothing
    msgs += command(st, "SendLocalList", send_list(5, "Full"), {"status": "Failed"}, 5, s)
    msgs += command(st, "SendLocalList", send_list(6, "Full"), None, 6, s, error="InternalError")
    con = folded(msgs, batch_size)
    assert entries(con, st) == [("B", None, "Expired", None, None), ("D", None, "Accepted", None, None)]
    assert con.execute("SELECT list_version, update_type, reported_version FROM local_lists").fetchall() == [
        (4, "Differential", None)
    ]  # fmt: skip


# --- station status ---------------------------------------------------------------------------


def test_stations_show_their_last_firmware_and_diagnostics_status(once: duckdb.DuckDBPyConnection) -> None:
    rows = once.execute(
        """SELECT station, firmware_status, firmware_request_id, diagnostics_status, diagnostics_request_id
        FROM stations WHERE station IN ('S16.0', 'S201:1') ORDER BY station"""
    ).fetchall()
    assert rows == [("S16.0", "Installed", None, "Uploaded", None), ("S201:1", "Installing", 7, "Uploading", 8)]


@pytest.mark.parametrize("batch_size", [1, 3, 4, 100])
def test_status_follows_the_order_the_csms_answered_in(batch_size: int) -> None:
    """Two notifications answered in the opposite order: the one answered last counts, in any batching."""
    s, st, c, p = Script(), "F", "F-c", "ocpp1.6"
    msgs = [s.conn(st, c, p, "connected", 0)]
    firmware, diagnostics = "FirmwareStatusNotification", "DiagnosticsStatusNotification"
    msgs += [
        s.frame(st, c, p, "in", "CALL", firmware, "a", [2, "a", firmware, {"status": "Downloading"}], 1),
        s.frame(st, c, p, "in", "CALL", firmware, "b", [2, "b", firmware, {"status": "Downloaded"}], 2),
        s.frame(st, c, p, "out", "CALLRESULT", firmware, "b", [3, "b", {}], 3),
        s.frame(st, c, p, "out", "CALLRESULT", firmware, "a", [3, "a", {}], 4),
        # refused: changes nothing
        s.frame(st, c, p, "in", "CALL", diagnostics, "d", [2, "d", diagnostics, {"status": "UploadFailed"}], 5),
        s.frame(st, c, p, "out", "CALLERROR", diagnostics, "d", [4, "d", "InternalError", "", {}], 6),
    ]
    con = folded(msgs, batch_size)
    assert con.execute("SELECT firmware_status, diagnostics_status FROM stations").fetchone() == ("Downloading", None)


def test_malformed_payloads_add_nothing_and_fail_nothing() -> None:
    s, st = Script(), "M"
    msgs = [s.conn(st, "M-c", "ocpp1.6", "connected", 0)]
    msgs += command(st, "ReserveNow", [1, 2], {"status": "Accepted"}, 1, s)
    msgs += command(st, "ReserveNow", {"reservationId": "x", "expiryDate": "soon"}, {"status": 3}, 2, s)
    msgs += command(st, "SendLocalList", {"updateType": "Full", "localAuthorizationList": 5}, ACCEPTED, 3, s)
    msgs += command(
        st, "SendLocalList", {"localAuthorizationList": [1, {"idTag": "A", "idTagInfo": []}]}, ACCEPTED, 4, s
    )
    msgs += command(st, "GetLocalListVersion", {}, {"listVersion": "many"}, 5, s)
    msgs += s.call(st, "M-c", "ocpp1.6", "FirmwareStatusNotification", "Installed", {}, 6)
    garbage = Message("events.command.M.sent", {}, b'{"durationMs": "slow", "payload": 5}')
    con = folded([*msgs, garbage, Message("events.command.M.failed", {}, b"not json")], 3)
    assert con.execute("SELECT count(*) FROM reservations").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM local_list_entries").fetchone() == (0,)
    assert con.execute("SELECT list_version, update_type, reported_version FROM local_lists").fetchall() == [
        (None, None, None)
    ]
    assert con.execute("SELECT firmware_status FROM stations").fetchall() == [(None,)]
    assert con.execute("SELECT count(*) FROM commands").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM events").fetchone() == (2,)


def test_an_event_whose_text_fields_are_objects_keeps_the_batch_whole() -> None:
    """Any NATS client can publish on ``events.>``: an object where a string belongs is NULL, and
    the event's columns stay as long as the others (a raised TypeError left them uneven)."""
    from projections.batch import Batch

    batch = Batch()
    body = b'{"at": {}, "station": [], "severity": {"x": 1}, "detail": [1], "remoteAddress": {}}'
    batch.add_event(1, 1_000, "events.connection.CP1.connected", None, body)
    batch.add_event(2, 2_000, "events.security.login_failed", None, body)
    assert {len(column) for column in batch.events.values()} == {2}
    assert batch.events["ts"] == [None, None]
    assert batch.events["severity"] == [None, None]
    assert batch.events["detail"] == [None, None]
