"""Apply one batch to the read models: set-wise SQL over the batch's Arrow tables, one transaction.

The batch's frames are visible as ``f``, its connection events as ``c`` and its EVENTS messages as
``e``. Every statement depends only on the stream's content, never on where a batch boundary fell
or on the clock, so replaying the stream in one batch or in ten thousand gives the same tables
(tests/projections/test_rebuild.py holds that to account).

Domain state (boots, statuses, transactions, meter values) follows the CALLs the CSMS accepted: a
station CALL counts once its CALLRESULT is in the stream. A CALL answered with CALLERROR (invalid
payload, say) stays in the message log and changes nothing else.
"""

from __future__ import annotations

from typing import Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from projections.batch import Batch

# gateway time of a frame, falling back to the stream's own timestamp
TS: Final = "coalesce(CAST(TRY_CAST(ts AS TIMESTAMPTZ) AS TIMESTAMP), make_timestamp(stream_us))"


def station_time(expr: str) -> str:
    """A date-time the station sent (any offset, or none = UTC); NULL when unreadable."""
    return f"CAST(TRY_CAST({expr} AS TIMESTAMPTZ) AS TIMESTAMP)"


PAIR_WINDOW: Final = "INTERVAL 1 HOUR"  # an answer later than this pairs with nothing

# The parts of MeterValues, StopTransaction and TransactionEvent requests the meter values come from,
# for from_json: one parse per request. Every leaf is VARCHAR, so a field reads exactly as ``->>``
# reads it (a number as its JSON text, an object as its JSON, keys case-sensitive, the first of
# duplicate keys); a part of another shape (an object where a list belongs, a list item that is
# not an object) reads as NULL, so a malformed payload adds no rows and fails nothing.
_SAMPLED_VALUE: Final = (
    '{"value": "VARCHAR", "measurand": "VARCHAR", "phase": "VARCHAR", "location": "VARCHAR", "context": "VARCHAR", '
    '"unit": "VARCHAR", "unitOfMeasure": {"unit": "VARCHAR", "multiplier": "VARCHAR"}}'
)
_METER_VALUE: Final = f'{{"timestamp": "VARCHAR", "sampledValue": [{_SAMPLED_VALUE}]}}'
METER_REQUEST: Final = (
    '{"transactionId": "VARCHAR", "connectorId": "VARCHAR", "evseId": "VARCHAR", '
    '"transactionInfo": {"transactionId": "VARCHAR"}, "evse": {"id": "VARCHAR", "connectorId": "VARCHAR"}, '
    f'"meterValue": [{_METER_VALUE}], "transactionData": [{_METER_VALUE}]}}'
)

OCPP: Final = (
    # the message log
    f"""INSERT INTO messages
    SELECT seq, {TS}, station, direction, type, action, unique_id, protocol, connection,
           CAST(payload AS JSON), error_code, error_description
    FROM f""",
    # CALLs wait in `calls` for their answer
    f"""INSERT INTO calls (seq, ts, station, direction, action, unique_id)
    SELECT seq, {TS}, station, direction, action, unique_id
    FROM f WHERE type = 'CALL' AND action IS NOT NULL AND unique_id IS NOT NULL""",
    # pair answers with pending CALLs: the k-th answer to an id with the k-th pending CALL of it
    f"""UPDATE calls SET answered_seq = m.answer_seq, response_ms = m.response_ms, outcome = m.outcome
    FROM (
        WITH a AS (
            SELECT seq, {TS} AS ts, station, unique_id, direction, type,
                   row_number() OVER (PARTITION BY station, unique_id, direction ORDER BY seq) AS k
            FROM f WHERE type IN ('CALLRESULT', 'CALLERROR', 'CALLRESULTERROR') AND unique_id IS NOT NULL
        ), p AS (
            SELECT seq, ts, station, unique_id, direction,
                   row_number() OVER (PARTITION BY station, unique_id, direction ORDER BY seq) AS k
            FROM calls
            WHERE outcome IS NULL
              AND ts >= (SELECT min(ts) FROM a) - {PAIR_WINDOW}
              AND unique_id IN (SELECT unique_id FROM a)
        )
        SELECT p.seq AS call_seq, a.seq AS answer_seq,
               date_diff('microsecond', p.ts, a.ts) / 1000.0 AS response_ms,
               CASE a.type WHEN 'CALLRESULT' THEN 'result' ELSE 'error' END AS outcome
        FROM p JOIN a ON p.station = a.station AND p.unique_id = a.unique_id
                     AND p.direction <> a.direction AND p.k = a.k
        WHERE p.seq < a.seq AND a.ts - p.ts <= {PAIR_WINDOW}
    ) m
    WHERE calls.seq = m.call_seq""",
    # station CALLs the CSMS accepted in this batch, with request and answer payloads
    """CREATE OR REPLACE TEMP TABLE accepted AS
    SELECT m.seq, m.ts, m.station, m.protocol, m.action, m.payload AS req, CAST(r.payload AS JSON) AS res
    FROM f r JOIN calls k ON k.answered_seq = r.seq JOIN messages m ON m.seq = k.seq
    WHERE r.type = 'CALLRESULT' AND r.direction = 'OUT' AND k.direction = 'IN'""",
    # connections
    f"""INSERT INTO connections (connection_id, station, seq, remote_address, protocol, gateway, connected_at)
    SELECT connection, station, seq, remote_address, protocol, gateway, {TS}
    FROM c WHERE event = 'connected' AND connection IS NOT NULL
    ON CONFLICT DO NOTHING""",
    f"""UPDATE connections
    SET message_count = connections.message_count + x.n,
        last_message_at = greatest(connections.last_message_at, x.last)
    FROM (SELECT connection, count(*) AS n, max({TS}) AS last FROM f WHERE connection IS NOT NULL GROUP BY ALL) x
    WHERE connections.connection_id = x.connection""",
    f"""UPDATE connections SET disconnected_at = x.at, close_code = x.close_code, reason = x.reason
    FROM (
        SELECT connection, arg_max({TS}, seq) AS at, arg_max(close_code, seq) AS close_code,
               arg_max(reason, seq) AS reason
        FROM c WHERE event = 'disconnected' AND connection IS NOT NULL GROUP BY ALL
    ) x
    WHERE connections.connection_id = x.connection""",
    # a connection its gateway never closed (the gateway died) ends when the station connects again
    """UPDATE connections SET disconnected_at = x.next_at, reason = 'superseded'
    FROM (
        SELECT connection_id,
               lead(connected_at) OVER (PARTITION BY station ORDER BY connected_at, seq) AS next_at
        FROM connections WHERE station IN (SELECT station FROM c WHERE event = 'connected')
    ) x
    WHERE connections.connection_id = x.connection_id
      AND connections.disconnected_at IS NULL AND x.next_at IS NOT NULL""",
    # stations: seen when they connect or send anything
    f"""INSERT INTO stations (station, protocol, first_seen_at, last_seen_at)
    SELECT station, arg_max(protocol, seq), min(ts), max(ts)
    FROM (
        SELECT station, protocol, seq, {TS} AS ts FROM f WHERE direction = 'IN'
        UNION ALL
        SELECT station, protocol, seq, {TS} AS ts FROM c WHERE event = 'connected'
    ) GROUP BY station
    ON CONFLICT (station) DO UPDATE
    SET protocol = coalesce(excluded.protocol, stations.protocol),
        last_seen_at = greatest(stations.last_seen_at, excluded.last_seen_at)""",
    """UPDATE stations
    SET vendor = coalesce(x.req->>'chargePointVendor', x.req->'chargingStation'->>'vendorName'),
        model = coalesce(x.req->>'chargePointModel', x.req->'chargingStation'->>'model'),
        serial_number = coalesce(x.req->>'chargePointSerialNumber', x.req->'chargingStation'->>'serialNumber'),
        firmware_version = coalesce(x.req->>'firmwareVersion', x.req->'chargingStation'->>'firmwareVersion'),
        boot_at = x.ts,
        boot_status = x.res->>'status',
        heartbeat_interval = TRY_CAST(x.res->>'interval' AS INTEGER)
    FROM (
        SELECT station, arg_max(req, seq) AS req, arg_max(res, seq) AS res, max(ts) AS ts
        FROM accepted WHERE action = 'BootNotification' GROUP BY station
    ) x
    WHERE stations.station = x.station""",
    """UPDATE stations SET last_heartbeat_at = x.ts
    FROM (SELECT station, max(ts) AS ts FROM accepted WHERE action = 'Heartbeat' GROUP BY station) x
    WHERE stations.station = x.station""",
    # connector status: the last StatusNotification per connector
    f"""INSERT INTO connectors
    SELECT station, evse, conn, status, error_code, info, vendor_error_code, station_time, ts, seq
    FROM (
        SELECT *, row_number() OVER (PARTITION BY station, evse, conn ORDER BY seq DESC) AS newest
        FROM (
            SELECT station, seq, ts,
                   coalesce(TRY_CAST(req->>'evseId' AS INTEGER), TRY_CAST(req->>'connectorId' AS INTEGER)) AS evse,
                   TRY_CAST(req->>'connectorId' AS INTEGER) AS conn,
                   coalesce(req->>'status', req->>'connectorStatus') AS status,
                   req->>'errorCode' AS error_code, req->>'info' AS info,
                   req->>'vendorErrorCode' AS vendor_error_code,
                   {station_time("req->>'timestamp'")} AS station_time
            FROM accepted WHERE action = 'StatusNotification'
        )
    )
    WHERE newest = 1 AND evse IS NOT NULL AND conn IS NOT NULL
    ON CONFLICT (station, evse_id, connector_id) DO UPDATE
    SET status = excluded.status, error_code = excluded.error_code, info = excluded.info,
        vendor_error_code = excluded.vendor_error_code, station_time = excluded.station_time,
        updated_at = excluded.updated_at, seq = excluded.seq""",
    # transactions, 1.6: started by an accepted StartTransaction, its id is in our answer
    f"""INSERT INTO transactions
        (station, transaction_id, protocol, evse_id, connector_id, id_tag, started_at, meter_start, status, start_seq)
    SELECT station, res->>'transactionId', protocol,
           TRY_CAST(req->>'connectorId' AS INTEGER), TRY_CAST(req->>'connectorId' AS INTEGER),
           req->>'idTag', coalesce({station_time("req->>'timestamp'")}, ts),
           TRY_CAST(req->>'meterStart' AS DOUBLE), 'active', seq
    FROM accepted
    WHERE action = 'StartTransaction' AND res->>'transactionId' IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY station, res->>'transactionId' ORDER BY seq) = 1
    ON CONFLICT DO NOTHING""",
    # transactions, 2.0.1/2.1: any TransactionEvent creates or completes the row
    f"""INSERT INTO transactions
        (station, transaction_id, protocol, evse_id, connector_id, id_tag, started_at, status, start_seq)
    SELECT station, tid, arg_min(protocol, seq), arg_min(evse, seq), arg_min(conn, seq), arg_min(token, seq),
           min(coalesce(event_at, ts)), 'active', min(seq)
    FROM (
        SELECT station, seq, ts, protocol, req->'transactionInfo'->>'transactionId' AS tid,
               TRY_CAST(req->'evse'->>'id' AS INTEGER) AS evse,
               TRY_CAST(req->'evse'->>'connectorId' AS INTEGER) AS conn,
               req->'idToken'->>'idToken' AS token,
               {station_time("req->>'timestamp'")} AS event_at
        FROM accepted WHERE action = 'TransactionEvent'
    )
    WHERE tid IS NOT NULL
    GROUP BY station, tid
    ON CONFLICT (station, transaction_id) DO UPDATE
    SET evse_id = coalesce(transactions.evse_id, excluded.evse_id),
        connector_id = coalesce(transactions.connector_id, excluded.connector_id),
        id_tag = coalesce(transactions.id_tag, excluded.id_tag),
        started_at = least(transactions.started_at, excluded.started_at)""",
    # meter values of MeterValues, StopTransaction.transactionData and TransactionEvent: each
    # request is parsed once into METER_REQUEST (a JSON path read parses the document every time)
    f"""INSERT INTO meter_values
    SELECT seq, station, tid, evse, conn, {station_time("mv.timestamp")},
           sv.measurand, sv.phase, sv.location, sv.context,
           coalesce(sv.unitOfMeasure.unit, sv.unit),
           TRY_CAST(sv.value AS DOUBLE) * power(10, coalesce(TRY_CAST(sv.unitOfMeasure.multiplier AS INTEGER), 0))
    FROM (
        SELECT seq, station, tid, evse, conn, mv, unnest(mv.sampledValue) AS sv
        FROM (
            SELECT seq, station,
                   CASE action WHEN 'TransactionEvent' THEN r.transactionInfo.transactionId
                               ELSE r.transactionId END AS tid,
                   CASE action WHEN 'TransactionEvent' THEN TRY_CAST(r.evse.id AS INTEGER)
                               ELSE coalesce(TRY_CAST(r.evseId AS INTEGER),
                                             TRY_CAST(r.connectorId AS INTEGER)) END AS evse,
                   CASE action WHEN 'TransactionEvent' THEN TRY_CAST(r.evse.connectorId AS INTEGER)
                               ELSE TRY_CAST(r.connectorId AS INTEGER) END AS conn,
                   unnest(CASE action WHEN 'StopTransaction' THEN r.transactionData ELSE r.meterValue END) AS mv
            FROM (
                SELECT seq, station, action, from_json(req, '{METER_REQUEST}') AS r
                FROM accepted WHERE action IN ('MeterValues', 'StopTransaction', 'TransactionEvent')
            )
        )
    )""",
    # the energy register: first reading starts a 2.x transaction's meter, the latest is its live
    # value (ties inside one frame: the smallest first reading, the largest last one)
    """UPDATE transactions
    SET meter_start = coalesce(transactions.meter_start, x.first), meter_last = x.last
    FROM (
        SELECT station, transaction_id,
               min(wh) FILTER (WHERE seq = first_seq) AS first, max(wh) FILTER (WHERE seq = last_seq) AS last
        FROM (
            SELECT station, transaction_id, seq,
                   value * CASE lower(unit) WHEN 'kwh' THEN 1000 ELSE 1 END AS wh,
                   min(seq) OVER w AS first_seq, max(seq) OVER w AS last_seq
            FROM meter_values
            WHERE seq IN (SELECT seq FROM accepted) AND transaction_id IS NOT NULL
              AND phase IS NULL AND value IS NOT NULL
              AND coalesce(measurand, 'Energy.Active.Import.Register') = 'Energy.Active.Import.Register'
            WINDOW w AS (PARTITION BY station, transaction_id)
        ) GROUP BY ALL
    ) x
    WHERE transactions.station = x.station AND transactions.transaction_id = x.transaction_id""",
    # 1.6 stop: the first accepted StopTransaction ends the transaction
    f"""UPDATE transactions
    SET stopped_at = x.stopped_at, meter_stop = x.meter_stop, stop_reason = x.reason,
        status = 'completed', stop_seq = x.seq, id_tag = coalesce(transactions.id_tag, x.id_tag)
    FROM (
        SELECT station, req->>'transactionId' AS tid, seq,
               coalesce({station_time("req->>'timestamp'")}, ts) AS stopped_at,
               TRY_CAST(req->>'meterStop' AS DOUBLE) AS meter_stop, req->>'reason' AS reason,
               req->>'idTag' AS id_tag
        FROM accepted WHERE action = 'StopTransaction'
        QUALIFY row_number() OVER (PARTITION BY station, req->>'transactionId' ORDER BY seq) = 1
    ) x
    WHERE transactions.station = x.station AND transactions.transaction_id = x.tid
      AND transactions.status = 'active'""",
    # 2.x stop: the first accepted TransactionEvent Ended
    f"""UPDATE transactions
    SET stopped_at = x.stopped_at, meter_stop = transactions.meter_last, stop_reason = x.reason,
        status = 'completed', stop_seq = x.seq
    FROM (
        SELECT station, req->'transactionInfo'->>'transactionId' AS tid, seq,
               coalesce({station_time("req->>'timestamp'")}, ts) AS stopped_at,
               req->'transactionInfo'->>'stoppedReason' AS reason
        FROM accepted WHERE action = 'TransactionEvent' AND req->>'eventType' = 'Ended'
        QUALIFY row_number() OVER (PARTITION BY station, req->'transactionInfo'->>'transactionId' ORDER BY seq) = 1
    ) x
    WHERE transactions.station = x.station AND transactions.transaction_id = x.tid
      AND transactions.status = 'active'""",
    "DROP TABLE accepted",
)

EVENTS: Final = (
    f"""INSERT INTO events
    SELECT seq, {TS}, kind, name, station, severity, remote_address, detail, CAST(body AS JSON) FROM e""",
)

CHECKPOINT: Final = (
    "INSERT INTO checkpoints VALUES ($stream, $seq) ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq"
)

# What each statement of OCPP reads, in the same order. A statement changes nothing when what it
# reads is absent from the batch (no rows to insert, no rows to update from), so it is left out:
# a small live batch (a few heartbeats and meter values) runs a third of the statements. The
# first six facts come from the batch's columns; the accepted actions from ``accepted`` itself.
_READS: Final = (
    "frames",  # messages
    "calls",  # calls
    "answers",  # pairing
    "accepted",  # CREATE accepted
    "connected",  # connections
    "connection",  # message_count
    "disconnected",  # disconnected_at
    "connected",  # superseded
    "seen",  # stations
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "StartTransaction",
    "TransactionEvent",  # 2.x transactions
    "meter",  # meter_values
    "meter",  # meter_start / meter_last
    "StopTransaction",
    "TransactionEvent",  # 2.x stop
    "accepted",  # DROP accepted
)
_FIRST_ACCEPTED: Final = 9  # statements from here on read ``accepted`` only
_METER_ACTIONS: Final = frozenset({"MeterValues", "StopTransaction", "TransactionEvent"})
assert len(_READS) == len(OCPP)


def _facts(frames: pa.Table, conns: pa.Table) -> set[str]:
    """What the batch holds, as the names in ``_READS`` (computed on the Arrow columns)."""
    facts: set[str] = set()
    if frames.num_rows:
        facts.add("frames")
        types = set(pc.unique(frames["type"]).to_pylist())
        if "CALL" in types:
            facts.add("calls")
        if types & {"CALLRESULT", "CALLERROR", "CALLRESULTERROR"}:
            facts.add("answers")
        results_out = pc.and_(pc.equal(frames["type"], "CALLRESULT"), pc.equal(frames["direction"], "OUT"))
        if pc.any(results_out).as_py():
            facts.add("accepted")
        if frames["connection"].null_count < frames.num_rows:
            facts.add("connection")
        if pc.any(pc.equal(frames["direction"], "IN")).as_py():
            facts.add("seen")
    if conns.num_rows:
        events = set(pc.unique(conns["event"]).to_pylist())
        facts |= events & {"connected", "disconnected"}
        if "connected" in events:
            facts.add("seen")
    return facts


def _script(statements: range, facts: set[str]) -> str:
    return ";\n".join(OCPP[i] for i in statements if _READS[i] in facts)


def apply(con: duckdb.DuckDBPyConnection, batch: Batch) -> None:
    """Write ``batch`` and the stream positions it reached in one transaction.

    Statements run as two scripts (one call into DuckDB each, so the writer thread hands the GIL
    back and forth a few times per batch instead of once per statement)."""
    frames, conns, events = batch.tables()
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("f", frames)
        con.register("c", conns)
        con.register("e", events)
        if frames.num_rows or conns.num_rows:
            facts = _facts(frames, conns)
            if first := _script(range(_FIRST_ACCEPTED), facts):
                con.execute(first)
            if "accepted" in facts:
                actions = {a for (a,) in con.execute("SELECT DISTINCT action FROM accepted").fetchall()}
                if actions & _METER_ACTIONS:
                    actions.add("meter")
                con.execute(_script(range(_FIRST_ACCEPTED, len(OCPP)), actions | {"accepted"}))
        if events.num_rows:
            con.execute(";\n".join(EVENTS))
        if batch.last_ocpp:
            con.execute(CHECKPOINT, {"stream": "OCPP", "seq": batch.last_ocpp})
        if batch.last_events:
            con.execute(CHECKPOINT, {"stream": "EVENTS", "seq": batch.last_events})
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for name in ("f", "c", "e"):
            con.unregister(name)


def checkpoints(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return dict(con.execute("SELECT stream, seq FROM checkpoints").fetchall())  # type: ignore[arg-type]
