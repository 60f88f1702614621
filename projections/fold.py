"""Apply one batch to the read models: set-wise SQL over the batch's Arrow tables, one transaction.

The batch's frames are visible as ``f``, its connection events as ``c``, its EVENTS messages as
``e`` and its TELEMETRY readings as ``t``. Every statement depends only on the stream's content,
never on where a batch boundary fell or on the clock, so replaying the stream in one batch or in
ten thousand gives the same tables (tests/projections/test_rebuild.py holds that to account).

Domain state (boots, statuses, transactions, meter values) follows the CALLs the CSMS accepted: a
station CALL counts once its CALLRESULT is in the stream. A CALL answered with CALLERROR (invalid
payload, say) stays in the message log and changes nothing else. What evbus's own CALLs (operator
commands) cause follows the station's answers to them the same way: a reservation, a local list.

Where the order of changes matters, a change takes the stream sequence of the frame that made it
known (the answer, for an answered CALL): batches arrive in that order, so "the newest in this
batch, over what earlier batches left" is the newest of the whole stream.
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

# --- reservations -------------------------------------------------------------------------------
# A reservation is a sequence of changes: the ReserveNow we sent (a new reservation, or one that
# replaces the station's reservation of that id), the station's answer, a cancellation it accepted,
# a transaction that used it, the station reporting it expired or removed. The batch's changes
# collect in ``reservation_changes``, one statement per source; then each reservation takes the
# changes since its latest request: status from the newest, timestamps from the ones that set them.

_RESERVATION_STATE: Final = """
    SELECT station, reservation_id,
           max(seq) FILTER (WHERE request) AS request_seq,
           any_value(protocol) FILTER (WHERE request) AS protocol,
           any_value(connector_id) FILTER (WHERE request) AS connector_id,
           any_value(evse_id) FILTER (WHERE request) AS evse_id,
           any_value(id_tag) FILTER (WHERE request) AS id_tag,
           any_value(parent_id_tag) FILTER (WHERE request) AS parent_id_tag,
           any_value(expiry_date) FILTER (WHERE request) AS expiry_date,
           any_value(ts) FILTER (WHERE request) AS requested_at,
           arg_max(status, seq) AS status,
           arg_min_null(transaction_id, seq) FILTER (WHERE status = 'used') AS transaction_id,
           arg_min(used_at, seq) AS used_at,                -- the first use (arg_min/max skip NULLs)
           arg_max(answered_at, seq) AS answered_at,
           arg_max(ended_at, seq) AS ended_at,
           arg_max(ts, seq) AS updated_at,
           max(seq) AS seq
    FROM (
        SELECT *, max(seq) FILTER (WHERE request) OVER (PARTITION BY station, reservation_id) AS last_request
        FROM reservation_changes WHERE reservation_id IS NOT NULL AND status IS NOT NULL
    )
    WHERE last_request IS NULL OR seq >= last_request  -- what came before a new request is replaced
    GROUP BY station, reservation_id"""

RESERVATIONS: Final = (
    """CREATE OR REPLACE TEMP TABLE reservation_changes (
        station VARCHAR, reservation_id INTEGER, seq BIGINT, ts TIMESTAMP, status VARCHAR,
        request BOOLEAN DEFAULT false, protocol VARCHAR, connector_id INTEGER, evse_id INTEGER,
        id_tag VARCHAR, parent_id_tag VARCHAR, expiry_date TIMESTAMP,
        answered_at TIMESTAMP, used_at TIMESTAMP, transaction_id VARCHAR, ended_at TIMESTAMP
    )""",
    # the ReserveNow we sent (1.6: reservationId, connectorId, idTag, parentIdTag, expiryDate;
    # 2.x: id, evseId, idToken, groupIdToken, expiryDateTime)
    f"""INSERT INTO reservation_changes BY NAME
    SELECT station, coalesce(TRY_CAST(p->>'reservationId' AS INTEGER), TRY_CAST(p->>'id' AS INTEGER)) AS reservation_id,
           seq, ts, 'requested' AS status, true AS request, protocol,
           TRY_CAST(p->>'connectorId' AS INTEGER) AS connector_id, TRY_CAST(p->>'evseId' AS INTEGER) AS evse_id,
           coalesce(p->>'idTag', p->'idToken'->>'idToken') AS id_tag,
           coalesce(p->>'parentIdTag', p->'groupIdToken'->>'idToken') AS parent_id_tag,
           {station_time("coalesce(p->>'expiryDate', p->>'expiryDateTime')")} AS expiry_date
    FROM (
        SELECT seq, {TS} AS ts, station, protocol, CAST(payload AS JSON) AS p
        FROM f WHERE type = 'CALL' AND direction = 'OUT' AND action = 'ReserveNow'
    )""",
    # the station's answer: its status in lower case (accepted, occupied, ...), failed on CALLERROR
    """INSERT INTO reservation_changes BY NAME
    SELECT station, coalesce(TRY_CAST(req->>'reservationId' AS INTEGER), TRY_CAST(req->>'id' AS INTEGER))
               AS reservation_id,
           answer_seq AS seq, answer_ts AS ts,
           CASE outcome WHEN 'error' THEN 'failed' ELSE lower(res->>'status') END AS status, answer_ts AS answered_at
    FROM answered WHERE action = 'ReserveNow'""",
    # a CancelReservation the station accepted (one it rejected changes nothing)
    """INSERT INTO reservation_changes BY NAME
    SELECT station, TRY_CAST(req->>'reservationId' AS INTEGER) AS reservation_id, answer_seq AS seq, answer_ts AS ts,
           'cancelled' AS status, answer_ts AS ended_at
    FROM answered WHERE action = 'CancelReservation' AND outcome = 'result' AND res->>'status' = 'Accepted'""",
    # a transaction that started on it (1.6: the id is in our answer; 2.x: in the station's event)
    f"""INSERT INTO reservation_changes BY NAME
    SELECT station, TRY_CAST(req->>'reservationId' AS INTEGER) AS reservation_id, answer_seq AS seq, ts,
           'used' AS status, coalesce({station_time("req->>'timestamp'")}, ts) AS used_at,
           CASE action WHEN 'StartTransaction' THEN res->>'transactionId'
                       ELSE req->'transactionInfo'->>'transactionId' END AS transaction_id
    FROM accepted
    WHERE action IN ('StartTransaction', 'TransactionEvent') AND req->>'reservationId' IS NOT NULL""",
    # 2.x: the station says the reservation expired or was removed
    """INSERT INTO reservation_changes BY NAME
    SELECT station, TRY_CAST(req->>'reservationId' AS INTEGER) AS reservation_id, answer_seq AS seq, ts,
           lower(req->>'reservationUpdateStatus') AS status, ts AS ended_at
    FROM accepted WHERE action = 'ReservationStatusUpdate'""",
    # a reservation requested in this batch is (re)written whole
    f"""INSERT OR REPLACE INTO reservations
    SELECT station, reservation_id, protocol, connector_id, evse_id, id_tag, parent_id_tag, expiry_date, status,
           transaction_id, requested_at, answered_at, used_at, ended_at, updated_at, request_seq, seq
    FROM ({_RESERVATION_STATE}) WHERE request_seq IS NOT NULL""",
    # any other changes one requested earlier (changes to a reservation never requested are dropped:
    # a rebuild would drop them too, having no row to change)
    f"""UPDATE reservations
    SET status = x.status,
        transaction_id = CASE WHEN reservations.used_at IS NULL THEN x.transaction_id
                              ELSE reservations.transaction_id END,
        used_at = coalesce(reservations.used_at, x.used_at),
        answered_at = coalesce(x.answered_at, reservations.answered_at),
        ended_at = coalesce(x.ended_at, reservations.ended_at),
        updated_at = x.updated_at, seq = x.seq
    FROM ({_RESERVATION_STATE}) x
    WHERE x.request_seq IS NULL
      AND reservations.station = x.station AND reservations.reservation_id = x.reservation_id""",
    "DROP TABLE reservation_changes",
)

# --- local authorization lists ----------------------------------------------------------------
# A SendLocalList the station accepted replaces its list (Full) or changes entries (Differential: an
# entry with info is set, one without is removed). Set-wise over a batch: a station's entries go if
# the batch holds a Full for it, as do the entries the batch touches; then each entry's newest op at
# or after the station's last Full is written back, if it has info.

_LIST_ACCEPTED: Final = "action = 'SendLocalList' AND outcome = 'result' AND res->>'status' = 'Accepted'"
# the parts of a SendLocalList request (1.6 and 2.x) entries come from, parsed once per request
LIST_REQUEST: Final = (
    '{"localAuthorizationList": [{"idTag": "VARCHAR", '
    '"idTagInfo": {"status": "VARCHAR", "expiryDate": "VARCHAR", "parentIdTag": "VARCHAR"}, '
    '"idToken": {"idToken": "VARCHAR", "type": "VARCHAR"}, '
    '"idTokenInfo": {"status": "VARCHAR", "cacheExpiryDateTime": "VARCHAR", "groupIdToken": {"idToken": "VARCHAR"}}}]}'
)

LOCAL_LISTS: Final = (
    f"""CREATE OR REPLACE TEMP TABLE list_ops AS
    SELECT station, id_tag, token_type, status, expiry_date, parent_id_tag, seq
    FROM (
        SELECT station, seq, i,
               coalesce(e.idTag, e.idToken.idToken) AS id_tag, e.idToken.type AS token_type,
               coalesce(e.idTagInfo.status, e.idTokenInfo.status) AS status,
               {station_time("coalesce(e.idTagInfo.expiryDate, e.idTokenInfo.cacheExpiryDateTime)")} AS expiry_date,
               coalesce(e.idTagInfo.parentIdTag, e.idTokenInfo.groupIdToken.idToken) AS parent_id_tag
        FROM (
            SELECT station, seq, unnest(u.localAuthorizationList) AS e,
                   generate_subscripts(u.localAuthorizationList, 1) AS i  -- an entry's place in its list
            FROM (
                SELECT station, answer_seq AS seq, from_json(req, '{LIST_REQUEST}') AS u,
                       max(answer_seq) FILTER (WHERE req->>'updateType' = 'Full')
                           OVER (PARTITION BY station) AS last_full
                FROM answered WHERE {_LIST_ACCEPTED}
            )
            WHERE seq >= coalesce(last_full, 0)
        )
    )
    WHERE id_tag IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY station, id_tag ORDER BY seq DESC, i DESC) = 1""",
    f"""DELETE FROM local_list_entries l
    WHERE l.station IN (SELECT station FROM answered WHERE {_LIST_ACCEPTED} AND req->>'updateType' = 'Full')
       OR EXISTS (SELECT 1 FROM list_ops o WHERE o.station = l.station AND o.id_tag = l.id_tag)""",
    """INSERT INTO local_list_entries
    SELECT station, id_tag, token_type, status, expiry_date, parent_id_tag, seq
    FROM list_ops WHERE status IS NOT NULL""",
    "DROP TABLE list_ops",
    # the version of the newest update (1.6 listVersion, 2.x versionNumber)
    f"""INSERT INTO local_lists (station, list_version, update_type, updated_at)
    SELECT station, TRY_CAST(coalesce(req->>'listVersion', req->>'versionNumber') AS INTEGER), req->>'updateType',
           answer_ts
    FROM answered WHERE {_LIST_ACCEPTED}
    QUALIFY row_number() OVER (PARTITION BY station ORDER BY answer_seq DESC) = 1
    ON CONFLICT (station) DO UPDATE
    SET list_version = excluded.list_version, update_type = excluded.update_type, updated_at = excluded.updated_at""",
    # the version the station says it holds
    """INSERT INTO local_lists (station, reported_version, reported_at)
    SELECT station, TRY_CAST(coalesce(res->>'listVersion', res->>'versionNumber') AS INTEGER), answer_ts
    FROM answered WHERE action = 'GetLocalListVersion' AND outcome = 'result'
    QUALIFY row_number() OVER (PARTITION BY station ORDER BY answer_seq DESC) = 1
    ON CONFLICT (station) DO UPDATE
    SET reported_version = excluded.reported_version, reported_at = excluded.reported_at""",
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
    SELECT m.seq, m.ts, m.station, m.protocol, m.action, m.payload AS req, CAST(r.payload AS JSON) AS res,
           r.seq AS answer_seq
    FROM f r JOIN calls k ON k.answered_seq = r.seq JOIN messages m ON m.seq = k.seq
    WHERE r.type = 'CALLRESULT' AND r.direction = 'OUT' AND k.direction = 'IN'""",
    # our CALLs (operator commands) the station answered in this batch, either way, with both payloads
    f"""CREATE OR REPLACE TEMP TABLE answered AS
    SELECT m.seq, m.ts, m.station, m.protocol, m.action, m.payload AS req,
           CASE r.type WHEN 'CALLRESULT' THEN 'result' ELSE 'error' END AS outcome, CAST(r.payload AS JSON) AS res,
           r.seq AS answer_seq, r.ts AS answer_ts
    FROM (
        SELECT seq, {TS} AS ts, type, payload FROM f
        WHERE type IN ('CALLRESULT', 'CALLERROR', 'CALLRESULTERROR') AND direction = 'IN'
    ) r JOIN calls k ON k.answered_seq = r.seq JOIN messages m ON m.seq = k.seq
    WHERE k.direction = 'OUT'""",
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
    # firmware and diagnostics / log uploads the station reports on (after UpdateFirmware, GetDiagnostics,
    # GetLog): the last notification the CSMS accepted
    """UPDATE stations
    SET firmware_status = x.status, firmware_status_at = x.ts, firmware_request_id = x.request_id
    FROM (
        SELECT station, req->>'status' AS status, ts, TRY_CAST(req->>'requestId' AS INTEGER) AS request_id
        FROM accepted WHERE action = 'FirmwareStatusNotification'
        QUALIFY row_number() OVER (PARTITION BY station ORDER BY answer_seq DESC) = 1
    ) x
    WHERE stations.station = x.station""",
    """UPDATE stations
    SET diagnostics_status = x.status, diagnostics_status_at = x.ts, diagnostics_request_id = x.request_id
    FROM (
        SELECT station, req->>'status' AS status, ts, TRY_CAST(req->>'requestId' AS INTEGER) AS request_id
        FROM accepted WHERE action IN ('DiagnosticsStatusNotification', 'LogStatusNotification')
        QUALIFY row_number() OVER (PARTITION BY station ORDER BY answer_seq DESC) = 1
    ) x
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
    *RESERVATIONS,
    *LOCAL_LISTS,
    "DROP TABLE accepted",
    "DROP TABLE answered",
)

# the parts of an events.command.* body (schemas.commands.CommandEvent) a command row comes from;
# payloads stay JSON, numbers are read as text and cast, so a malformed body adds NULLs, not errors
COMMAND_EVENT: Final = (
    '{"commandId": "VARCHAR", "station": "VARCHAR", "action": "VARCHAR", "command": "VARCHAR", '
    '"protocol": "VARCHAR", "gateway": "VARCHAR", "requestedBy": "VARCHAR", "payload": "JSON", "response": "JSON", '
    '"outcome": "VARCHAR", "errorCode": "VARCHAR", "errorDescription": "VARCHAR", "errorDetails": "JSON", '
    '"detail": "VARCHAR", "timeoutS": "VARCHAR", "durationMs": "VARCHAR"}'
)
# command columns that keep the latest value any of the command's events gave them
_COMMAND_LATEST: Final = (
    "station",
    "action",
    "command",
    "outcome",
    "requested_at",
    "sent_at",
    "finished_at",
    "request",
    "response",
    "error_code",
    "error_description",
    "error_details",
    "detail",
    "duration_ms",
    "requested_by",
    "gateway",
    "protocol",
    "timeout_s",
)

EVENTS: Final = (
    f"""INSERT INTO events
    SELECT seq, {TS}, kind, name, station, severity, remote_address, detail, CAST(body AS JSON) FROM e""",
    # commands: status from the newest event, every other column from the newest event that has it
    # (arg_max skips NULLs); a later batch's events are newer than anything stored
    f"""INSERT INTO commands (command_id, status, seq, {", ".join(_COMMAND_LATEST)})
    SELECT command_id, arg_max(status, seq), max(seq), {", ".join(f"arg_max({c}, seq)" for c in _COMMAND_LATEST)}
    FROM (
        SELECT seq, name AS status, b.commandId AS command_id, coalesce(b.station, station) AS station,
               b.action, b.command, b.protocol, b.gateway, b.requestedBy AS requested_by,
               coalesce(b.outcome, CASE name WHEN 'answered' THEN 'answered' WHEN 'timed_out' THEN 'timeout' END)
                   AS outcome,
               CASE WHEN name = 'requested' THEN ts END AS requested_at,
               CASE WHEN name = 'sent' THEN ts END AS sent_at,
               CASE WHEN name IN ('answered', 'failed', 'timed_out') THEN ts END AS finished_at,
               b.payload AS request, b.response, b.errorCode AS error_code,
               b.errorDescription AS error_description, b.errorDetails AS error_details, b.detail,
               TRY_CAST(b.durationMs AS DOUBLE) AS duration_ms, TRY_CAST(b.timeoutS AS DOUBLE) AS timeout_s
        FROM (
            SELECT seq, {TS} AS ts, name, station, from_json(body, '{COMMAND_EVENT}') AS b
            FROM e WHERE kind = 'command'
        )
    )
    WHERE command_id IS NOT NULL
    GROUP BY command_id
    ON CONFLICT (command_id) DO UPDATE
    SET status = excluded.status, seq = excluded.seq,
        {", ".join(f"{c} = coalesce(excluded.{c}, commands.{c})" for c in _COMMAND_LATEST)}""",
)
_EVENT_READS: Final = ("events", "command")
assert len(_EVENT_READS) == len(EVENTS)

# --- telemetry: MQTT devices --------------------------------------------------------------------
# A reading (telemetry.{source}.{device}, schemas.telemetry.Reading) is a device's whole normalised
# state. The batch's readings are parsed once into ``rb`` (from_json with the Reading's types: a
# value of another type reads as NULL; a body that is not a JSON object is no reading at all), then
# appended to ``readings``, folded into charging sessions and written over each device's row.
#
# Sessions. What counts is whether a vehicle is plugged in: the reading's ``connected``, or its
# ``charging`` for a device that never reported ``connected`` (then a session is a charging spell).
# A live reading that says so opens a session when none is active; any reading that says not
# (a replay too) ends the active one; a reading that does not know (the field unset, as after
# evcc's restart burst) changes nothing. A *replayed* "plugged in" (``retained``: the broker
# replays its retained values whenever the gateway subscribes again, and they may be old) opens
# nothing: after a gateway restart the session still active continues, and a vehicle that was
# plugged in while evbus was away gets its session from the first live reading. A reading the
# gateway writes itself (no ``rawTopic``: ``online: false`` after silence) repeats the last values
# and opens nothing either (``hearsay``: retained or not from the device). Set-wise: of the
# readings that count, only those that change the state (against the previous one, the first
# against what the tables say) are edges; edges alternate, so each opening edge's session ends at
# the next edge of its device, and a first edge that closes ends the session active before.

READING: Final = (
    '{"kind": "VARCHAR", "ts": "VARCHAR", "lastSeenAt": "VARCHAR", "retained": "BOOLEAN", "state": "VARCHAR", '
    '"stateRaw": "VARCHAR", "connected": "BOOLEAN", "charging": "BOOLEAN", "enabled": "BOOLEAN", '
    '"online": "BOOLEAN", "powerW": "DOUBLE", "energyWh": "DOUBLE", "sessionEnergyWh": "DOUBLE", '
    '"currentsA": ["DOUBLE"], "voltagesV": ["DOUBLE"], "socPct": "DOUBLE", "offeredCurrentA": "DOUBLE", '
    '"phases": "INTEGER", "temperatureC": "DOUBLE", "errors": ["VARCHAR"], "mode": "VARCHAR", "title": "VARCHAR", '
    '"extra": "JSON", "flags": ["VARCHAR"], "rawTopic": "VARCHAR"}'
)
# the columns of ``devices`` the latest reading sets whole (NULL where it has no value)
SNAPSHOT: Final = (
    "kind",
    "state",
    "state_raw",
    "connected",
    "charging",
    "enabled",
    "online",
    "power_w",
    "energy_wh",
    "session_energy_wh",
    "currents_a",
    "voltages_v",
    "soc_pct",
    "offered_current_a",
    "phases",
    "temperature_c",
    "errors",
    "mode",
    "title",
    "extra",
    "flags",
    "retained",
)

_SESSION_EDGES: Final = """CREATE OR REPLACE TEMP TABLE session_edges AS
    SELECT device_id, source, device, seq, ts, energy_wh, session_energy_wh, plugged, trigger
    FROM (
        SELECT *, lag(plugged) OVER (PARTITION BY device_id ORDER BY seq) AS before
        FROM (
            SELECT device_id, source, device, seq, ts, energy_wh, session_energy_wh, active,
                   CASE WHEN by_connected THEN connected ELSE charging END AS plugged,
                   CASE WHEN by_connected THEN 'connected' ELSE 'charging' END AS trigger,
                   hearsay
            FROM (
                SELECT r.*, coalesce(p.active, false) AS active,
                       coalesce(p.reports_connected, false)
                           OR bool_or(r.connected IS NOT NULL) OVER (PARTITION BY r.device_id ORDER BY r.seq)
                           AS by_connected
                FROM rb r LEFT JOIN (
                    SELECT d.id AS device_id, d.reports_connected,
                           EXISTS (SELECT 1 FROM device_sessions s WHERE s.device_id = d.id AND s.status = 'active')
                               AS active
                    FROM devices d WHERE d.id IN (SELECT device_id FROM rb)
                ) p USING (device_id)
            )
        )
        -- a "plugged in" that is not the device's live word, and an unknown, count for nothing
        WHERE NOT plugged OR (plugged AND NOT hearsay)
    )
    WHERE plugged IS DISTINCT FROM coalesce(before, active)"""

TELEMETRY: Final = (
    f"""CREATE OR REPLACE TEMP TABLE rb AS
    SELECT seq, device_id, source, device, CAST(body AS JSON) AS body,
           coalesce({station_time("r.ts")}, make_timestamp(stream_us)) AS ts,
           {station_time("r.lastSeenAt")} AS last_seen_at, coalesce(r.retained, false) AS retained,
           coalesce(r.retained, false) OR r.rawTopic IS NULL AS hearsay,
           r.kind, r.state, r.stateRaw AS state_raw, r.connected, r.charging, r.enabled, r.online,
           r.powerW AS power_w, r.energyWh AS energy_wh, r.sessionEnergyWh AS session_energy_wh,
           r.currentsA AS currents_a, r.voltagesV AS voltages_v, r.socPct AS soc_pct,
           r.offeredCurrentA AS offered_current_a, r.phases, r.temperatureC AS temperature_c,
           r.errors, r.mode, r.title, r.extra, r.flags
    FROM (
        SELECT *, CASE WHEN json_valid(body) AND json_type(body) = 'OBJECT' THEN from_json(body, '{READING}') END AS r
        FROM t
    )
    WHERE r IS NOT NULL""",
    """INSERT INTO readings
    SELECT seq, ts, device_id, retained, online, connected, charging, power_w, energy_wh, session_energy_wh,
           currents_a[1], currents_a[2], currents_a[3], voltages_v[1], voltages_v[2], voltages_v[3],
           soc_pct, offered_current_a, phases, temperature_c
    FROM rb""",
    _SESSION_EDGES,
    # a first edge that closes ends the session that was active before this batch
    """UPDATE device_sessions
    SET stopped_at = e.ts, meter_stop = e.energy_wh, session_energy_wh = e.session_energy_wh,
        status = 'completed', stop_seq = e.seq
    FROM (SELECT * FROM session_edges QUALIFY row_number() OVER (PARTITION BY device_id ORDER BY seq) = 1) e
    WHERE NOT e.plugged AND device_sessions.device_id = e.device_id AND device_sessions.status = 'active'""",
    # each opening edge starts a session, which the next edge of its device (if any) ends
    """INSERT INTO device_sessions
    SELECT x.device_id, coalesce(m.n, 0) + row_number() OVER (PARTITION BY x.device_id ORDER BY x.seq),
           x.source, x.device, x.trigger, x.ts, x.stop_ts, x.energy_wh, x.stop_energy_wh, x.stop_session_energy_wh,
           CASE WHEN x.stop_seq IS NULL THEN 'active' ELSE 'completed' END, x.seq, x.stop_seq
    FROM (
        SELECT *, lead(seq) OVER w AS stop_seq, lead(ts) OVER w AS stop_ts, lead(energy_wh) OVER w AS stop_energy_wh,
               lead(session_energy_wh) OVER w AS stop_session_energy_wh
        FROM session_edges WINDOW w AS (PARTITION BY device_id ORDER BY seq)
    ) x
    LEFT JOIN (
        SELECT device_id, max(n) AS n FROM device_sessions
        WHERE device_id IN (SELECT device_id FROM session_edges) GROUP BY device_id
    ) m USING (device_id)
    WHERE x.plugged""",
    # a session whose start had no energy counter yet starts at the first one reported in it (any
    # earlier reading of the session had none, or an earlier batch would have set it)
    """UPDATE device_sessions
    SET meter_start = x.first
    FROM (
        SELECT s.device_id, s.n, arg_min(r.energy_wh, r.seq) AS first
        FROM device_sessions s JOIN rb r
          ON r.device_id = s.device_id AND r.seq >= s.start_seq AND r.seq <= coalesce(s.stop_seq, r.seq)
        WHERE s.meter_start IS NULL AND r.energy_wh IS NOT NULL
          AND (s.status = 'active' OR s.stop_seq >= (SELECT min(seq) FROM rb))
        GROUP BY s.device_id, s.n
    ) x
    WHERE device_sessions.device_id = x.device_id AND device_sessions.n = x.n""",
    # one that ended without a counter in its last reading ends at the last one reported in it
    """UPDATE device_sessions
    SET meter_stop = x.last
    FROM (
        SELECT s.device_id, s.n, arg_max(r.energy_wh, r.seq) AS last
        FROM device_sessions s JOIN readings r
          ON r.device_id = s.device_id AND r.seq >= s.start_seq AND r.seq <= s.stop_seq
        WHERE s.meter_stop IS NULL AND s.stop_seq >= (SELECT min(seq) FROM rb) AND r.energy_wh IS NOT NULL
        GROUP BY s.device_id, s.n
    ) x
    WHERE device_sessions.device_id = x.device_id AND device_sessions.n = x.n""",
    "DROP TABLE session_edges",
    # the devices: the newest reading wins whole; first seen, last seen and whether it reports
    # `connected` gather over every reading
    f"""INSERT INTO devices BY NAME
    SELECT device_id AS id, source, device, first_seen_at, ts AS updated_at, seen AS last_seen_at,
           {", ".join(SNAPSHOT)}, reports_connected, body AS reading, seq
    FROM (
        SELECT *, min(ts) OVER w AS first_seen_at,
               max(coalesce(last_seen_at, CASE WHEN NOT retained THEN ts END)) OVER w AS seen,
               bool_or(connected IS NOT NULL) OVER w AS reports_connected
        FROM rb WINDOW w AS (PARTITION BY device_id)
    )
    QUALIFY row_number() OVER (PARTITION BY device_id ORDER BY seq DESC) = 1
    ON CONFLICT (id) DO UPDATE
    SET {", ".join(f"{c} = excluded.{c}" for c in SNAPSHOT)},
        source = excluded.source, device = excluded.device, updated_at = excluded.updated_at,
        reading = excluded.reading, seq = excluded.seq,
        first_seen_at = least(devices.first_seen_at, excluded.first_seen_at),
        last_seen_at = greatest(devices.last_seen_at, excluded.last_seen_at),
        reports_connected = devices.reports_connected OR excluded.reports_connected""",
    "DROP TABLE rb",
)

CHECKPOINT: Final = (
    "INSERT INTO checkpoints VALUES ($stream, $seq) ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq"
)

# What each statement of OCPP reads, in the same order. A statement changes nothing when what it
# reads is absent from the batch (no rows to insert, no rows to update from), so it is left out:
# a small live batch (a few heartbeats and meter values) runs a third of the statements. The facts
# of the first script come from the batch's columns (:func:`_facts`); those of the second also
# from the actions in ``accepted`` and ``answered`` (:func:`_actions`).
_READS: Final = (
    "frames",  # messages
    "calls",  # calls
    "answers",  # pairing
    "accepted",  # CREATE accepted
    "answered",  # CREATE answered
    "connected",  # connections
    "connection",  # message_count
    "disconnected",  # disconnected_at
    "connected",  # superseded
    "seen",  # stations
    "BootNotification",
    "Heartbeat",
    "FirmwareStatusNotification",
    "diagnostics",  # DiagnosticsStatusNotification, LogStatusNotification
    "StatusNotification",
    "StartTransaction",
    "TransactionEvent",  # 2.x transactions
    "meter",  # meter_values
    "meter",  # meter_start / meter_last
    "StopTransaction",
    "TransactionEvent",  # 2.x stop
    "reservations",  # CREATE reservation_changes
    "sent:ReserveNow",
    "answered:ReserveNow",
    "answered:CancelReservation",
    "uses reservation",  # StartTransaction / TransactionEvent with a reservationId
    "ReservationStatusUpdate",
    "reservations",  # requested in this batch
    "reservations",  # requested earlier
    "reservations",  # DROP reservation_changes
    "answered:SendLocalList",  # CREATE list_ops
    "answered:SendLocalList",  # DELETE entries
    "answered:SendLocalList",  # INSERT entries
    "answered:SendLocalList",  # DROP list_ops
    "answered:SendLocalList",  # list version
    "answered:GetLocalListVersion",  # reported version
    "accepted",  # DROP accepted
    "answered",  # DROP answered
)
_FIRST_ACCEPTED: Final = 10  # statements from here on read ``accepted`` or ``answered`` (or follow them)
_METER_ACTIONS: Final = frozenset({"MeterValues", "StopTransaction", "TransactionEvent"})
_DIAGNOSTICS_ACTIONS: Final = frozenset({"DiagnosticsStatusNotification", "LogStatusNotification"})
_RESERVATION_CHANGES: Final = frozenset(
    {
        "sent:ReserveNow",
        "answered:ReserveNow",
        "answered:CancelReservation",
        "uses reservation",
        "ReservationStatusUpdate",
    }
)
_ANSWERS: Final = ("CALLRESULT", "CALLERROR", "CALLRESULTERROR")
assert len(_READS) == len(OCPP)


def _facts(frames: pa.Table, conns: pa.Table) -> set[str]:
    """What the batch holds, as the names in ``_READS`` (computed on the Arrow columns)."""
    facts: set[str] = set()
    if frames.num_rows:
        facts.add("frames")
        types = set(pc.unique(frames["type"]).to_pylist())
        if "CALL" in types:
            facts.add("calls")
            sent = pc.and_(pc.equal(frames["type"], "CALL"), pc.equal(frames["direction"], "OUT"))
            if pc.any(pc.and_(sent, pc.equal(frames["action"], "ReserveNow"))).as_py():
                facts.add("sent:ReserveNow")
        if types & set(_ANSWERS):
            facts.add("answers")
            answers_in = pc.and_(pc.is_in(frames["type"], pa.array(_ANSWERS)), pc.equal(frames["direction"], "IN"))
            if pc.any(answers_in).as_py():
                facts.add("answered")
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


def _actions(con: duckdb.DuckDBPyConnection, facts: set[str]) -> set[str]:
    """The actions ``accepted`` (as they are) and ``answered`` (as ``answered:{action}``) hold, and
    the facts that follow from them."""
    parts = []
    if "accepted" in facts:
        # a transaction that may use a reservation: a cheap look at the text, the fold reads the field
        parts.append(
            """SELECT DISTINCT action, action IN ('StartTransaction', 'TransactionEvent')
                                       AND contains(CAST(req AS VARCHAR), '"reservationId"')
            FROM accepted"""
        )
    if "answered" in facts:
        parts.append("SELECT DISTINCT 'answered:' || action, false FROM answered")
    rows = con.execute(" UNION ALL ".join(parts)).fetchall() if parts else []
    actions = {action for action, _ in rows}
    if any(uses_reservation for _, uses_reservation in rows):
        actions.add("uses reservation")
    if actions & _METER_ACTIONS:
        actions.add("meter")
    if actions & _DIAGNOSTICS_ACTIONS:
        actions.add("diagnostics")
    if (actions | facts) & _RESERVATION_CHANGES:
        actions.add("reservations")
    return actions


def _script(statements: range, facts: set[str]) -> str:
    return ";\n".join(OCPP[i] for i in statements if _READS[i] in facts)


def apply(con: duckdb.DuckDBPyConnection, batch: Batch) -> None:
    """Write ``batch`` and the stream positions it reached in one transaction.

    OCPP statements run as two scripts (one call into DuckDB each, so the writer thread hands the
    GIL back and forth a few times per batch instead of once per statement): the second's
    statements are picked once the first has built ``accepted`` and ``answered``."""
    frames, conns, events = batch.tables()
    readings = batch.readings_table()
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("f", frames)
        con.register("c", conns)
        con.register("e", events)
        con.register("t", readings)
        if frames.num_rows or conns.num_rows:
            facts = _facts(frames, conns)
            if first := _script(range(_FIRST_ACCEPTED), facts):
                con.execute(first)
            if second := _script(range(_FIRST_ACCEPTED, len(OCPP)), facts | _actions(con, facts)):
                con.execute(second)
        if events.num_rows:
            held = {"events", "command"} if pc.any(pc.equal(events["kind"], "command")).as_py() else {"events"}
            con.execute(";\n".join(sql for sql, reads in zip(EVENTS, _EVENT_READS, strict=True) if reads in held))
        if readings.num_rows:
            con.execute(";\n".join(TELEMETRY))
        if batch.last_ocpp:
            con.execute(CHECKPOINT, {"stream": "OCPP", "seq": batch.last_ocpp})
        if batch.last_events:
            con.execute(CHECKPOINT, {"stream": "EVENTS", "seq": batch.last_events})
        if batch.last_telemetry:
            con.execute(CHECKPOINT, {"stream": "TELEMETRY", "seq": batch.last_telemetry})
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for name in ("f", "c", "e", "t"):
            con.unregister(name)


def checkpoints(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return dict(con.execute("SELECT stream, seq FROM checkpoints").fetchall())  # type: ignore[arg-type]
