"""The DuckDB read models: one table per view of the stream, plus the position each stream reached.

Times are ``TIMESTAMP`` in UTC (the session time zone is UTC). Directions are stored as the API
shows them (``IN``/``OUT``). Nothing here is a source of truth: :func:`create` on an empty file and
a replay of the streams give back every row.
"""

from __future__ import annotations

from typing import Final

import duckdb

VERSION: Final = 4  # bump when a table or what is folded into it changes: the runner rebuilds from the stream

TABLES: Final = (
    "checkpoints",
    "messages",
    "calls",
    "connections",
    "stations",
    "connectors",
    "transactions",
    "meter_values",
    "events",
    "commands",
    "reservations",
    "local_lists",
    "local_list_entries",
    "devices",
    "readings",
    "device_sessions",
    "meta",
)

DDL: Final = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);

-- the stream sequence each stream was applied up to; written in the same transaction as the rows
CREATE TABLE IF NOT EXISTS checkpoints (stream VARCHAR PRIMARY KEY, seq BIGINT NOT NULL);

-- every frame, in stream order; id = OCPP stream sequence
CREATE TABLE IF NOT EXISTS messages (
    seq BIGINT NOT NULL,
    ts TIMESTAMP NOT NULL,               -- Ocpp-Received-At: the gateway's clock
    station VARCHAR NOT NULL,
    direction VARCHAR NOT NULL,          -- IN | OUT
    type VARCHAR NOT NULL,               -- CALL | CALLRESULT | CALLERROR | CALLRESULTERROR | SEND | INVALID
    action VARCHAR,
    unique_id VARCHAR,
    protocol VARCHAR,
    connection VARCHAR,
    payload JSON,                        -- the frame's payload (INVALID: the raw text as a JSON string)
    error_code VARCHAR,
    error_description VARCHAR
);

-- one row per CALL, paired with its CALLRESULT/CALLERROR when that arrives (outcome NULL = pending)
CREATE TABLE IF NOT EXISTS calls (
    seq BIGINT NOT NULL,
    ts TIMESTAMP NOT NULL,
    station VARCHAR NOT NULL,
    direction VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    unique_id VARCHAR NOT NULL,
    answered_seq BIGINT,
    response_ms DOUBLE,
    outcome VARCHAR                      -- result | error | NULL while unanswered
);

CREATE TABLE IF NOT EXISTS connections (
    connection_id VARCHAR PRIMARY KEY,
    station VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    remote_address VARCHAR,
    protocol VARCHAR,
    gateway VARCHAR,
    connected_at TIMESTAMP NOT NULL,
    disconnected_at TIMESTAMP,
    close_code INTEGER,
    reason VARCHAR,
    message_count BIGINT NOT NULL DEFAULT 0,
    last_message_at TIMESTAMP
);

CREATE TABLE IF NOT EXISTS stations (
    station VARCHAR PRIMARY KEY,
    protocol VARCHAR,
    first_seen_at TIMESTAMP,
    last_seen_at TIMESTAMP,
    vendor VARCHAR,
    model VARCHAR,
    serial_number VARCHAR,
    firmware_version VARCHAR,
    boot_at TIMESTAMP,
    boot_status VARCHAR,
    heartbeat_interval INTEGER,
    last_heartbeat_at TIMESTAMP,
    firmware_status VARCHAR,             -- the last FirmwareStatusNotification accepted
    firmware_status_at TIMESTAMP,
    firmware_request_id INTEGER,         -- 2.x: the UpdateFirmware request it reports on
    diagnostics_status VARCHAR,          -- the last DiagnosticsStatusNotification (1.6) / LogStatusNotification (2.x)
    diagnostics_status_at TIMESTAMP,
    diagnostics_request_id INTEGER       -- 2.x: the GetLog request it reports on
);

CREATE TABLE IF NOT EXISTS connectors (
    station VARCHAR NOT NULL,
    evse_id INTEGER NOT NULL,            -- 1.6: the connector id
    connector_id INTEGER NOT NULL,
    status VARCHAR,
    error_code VARCHAR,
    info VARCHAR,
    vendor_error_code VARCHAR,
    station_time TIMESTAMP,              -- the timestamp the station sent
    updated_at TIMESTAMP NOT NULL,       -- gateway time of the frame
    seq BIGINT NOT NULL,
    PRIMARY KEY (station, evse_id, connector_id)
);

CREATE TABLE IF NOT EXISTS transactions (
    station VARCHAR NOT NULL,
    transaction_id VARCHAR NOT NULL,
    protocol VARCHAR,
    evse_id INTEGER,
    connector_id INTEGER,
    id_tag VARCHAR,
    started_at TIMESTAMP,
    stopped_at TIMESTAMP,
    meter_start DOUBLE,                  -- Wh
    meter_stop DOUBLE,
    meter_last DOUBLE,                   -- latest energy register reading seen, Wh
    stop_reason VARCHAR,                 -- exactly as the station sent it
    status VARCHAR NOT NULL,             -- active | completed
    start_seq BIGINT,
    stop_seq BIGINT,
    PRIMARY KEY (station, transaction_id)
);

-- every sampled value of MeterValues, StopTransaction.transactionData and TransactionEvent
CREATE TABLE IF NOT EXISTS meter_values (
    seq BIGINT NOT NULL,
    station VARCHAR NOT NULL,
    transaction_id VARCHAR,
    evse_id INTEGER,
    connector_id INTEGER,
    ts TIMESTAMP,
    measurand VARCHAR,
    phase VARCHAR,
    location VARCHAR,
    context VARCHAR,
    unit VARCHAR,
    value DOUBLE
);

-- everything on the EVENTS stream: security, command and transaction events, admin actions
CREATE TABLE IF NOT EXISTS events (
    seq BIGINT NOT NULL,
    ts TIMESTAMP NOT NULL,
    kind VARCHAR NOT NULL,               -- security | command | transaction | admin | ...
    name VARCHAR NOT NULL,               -- the category / status / event token
    station VARCHAR,
    severity VARCHAR,
    remote_address VARCHAR,
    detail VARCHAR,
    body JSON
);

-- one row per operator command, folded from its events.command.{station}.{status} events: each
-- column holds the latest value any of its events gave it
CREATE TABLE IF NOT EXISTS commands (
    command_id VARCHAR PRIMARY KEY,      -- also the OCPP unique id of the CALL it sent
    station VARCHAR,
    action VARCHAR,
    command VARCHAR,                     -- the version-neutral name (reset, reserve-now, ...) when the API mapped one
    status VARCHAR NOT NULL,             -- of the latest event: requested | sent | answered | failed | timed_out
    outcome VARCHAR,                     -- answered | error | timeout | offline | invalid | unavailable
    requested_at TIMESTAMP,
    sent_at TIMESTAMP,
    finished_at TIMESTAMP,               -- answered, failed or timed out
    request JSON,                        -- the CALL's payload as requested
    response JSON,                       -- the station's CALLRESULT payload
    error_code VARCHAR,
    error_description VARCHAR,
    error_details JSON,
    detail VARCHAR,                      -- why, for invalid / offline / unavailable
    duration_ms DOUBLE,
    requested_by VARCHAR,
    gateway VARCHAR,
    protocol VARCHAR,
    timeout_s DOUBLE,
    seq BIGINT NOT NULL                  -- EVENTS sequence of the latest event
);

-- reservations evbus made (ReserveNow) and what became of them; status as of the latest change
-- (an accepted reservation past its expiry is shown as expired at query time)
CREATE TABLE IF NOT EXISTS reservations (
    station VARCHAR NOT NULL,
    reservation_id INTEGER NOT NULL,
    protocol VARCHAR,
    connector_id INTEGER,                -- 1.6 (0: any connector)
    evse_id INTEGER,                     -- 2.x
    id_tag VARCHAR,                      -- 2.x: idToken.idToken
    parent_id_tag VARCHAR,               -- 2.x: groupIdToken.idToken
    expiry_date TIMESTAMP,
    status VARCHAR NOT NULL,             -- requested | accepted | faulted | occupied | rejected | unavailable
                                         -- | failed (CALLERROR) | cancelled | used | expired | removed
    transaction_id VARCHAR,              -- the transaction that used it
    requested_at TIMESTAMP NOT NULL,     -- when the ReserveNow was sent
    answered_at TIMESTAMP,               -- when the station answered it
    used_at TIMESTAMP,
    ended_at TIMESTAMP,                  -- cancelled, or expired / removed as the station reported
    updated_at TIMESTAMP NOT NULL,       -- time of the latest change
    request_seq BIGINT NOT NULL,         -- OCPP sequence of the ReserveNow
    seq BIGINT NOT NULL,                 -- OCPP sequence of the latest change
    PRIMARY KEY (station, reservation_id)
);

-- each station's local authorization list as evbus last set it (SendLocalList the station accepted)
CREATE TABLE IF NOT EXISTS local_lists (
    station VARCHAR PRIMARY KEY,
    list_version INTEGER,                -- of the last update the station accepted
    update_type VARCHAR,                 -- Full | Differential, of that update
    updated_at TIMESTAMP,                -- when the station accepted it
    reported_version INTEGER,            -- what the station's last GetLocalListVersion answer said
    reported_at TIMESTAMP
);

CREATE TABLE IF NOT EXISTS local_list_entries (
    station VARCHAR NOT NULL,
    id_tag VARCHAR NOT NULL,             -- 2.x: idToken.idToken
    token_type VARCHAR,                  -- 2.x: idToken.type
    status VARCHAR NOT NULL,             -- idTagInfo.status / idTokenInfo.status
    expiry_date TIMESTAMP,               -- 2.x: cacheExpiryDateTime
    parent_id_tag VARCHAR,               -- 2.x: groupIdToken.idToken
    seq BIGINT NOT NULL,                 -- OCPP sequence of the station's answer that set it
    PRIMARY KEY (station, id_tag)
);

-- one row per MQTT device: its latest reading (telemetry.{source}.{device}, a full snapshot) wins
-- whole, so a value the device erased is NULL here, never 0 (docs/adr/0010-mqtt-gateway.md)
CREATE TABLE IF NOT EXISTS devices (
    id VARCHAR PRIMARY KEY,              -- {token(source)}.{token(device)}: the reading's subject tail
    source VARCHAR NOT NULL,
    device VARCHAR NOT NULL,
    kind VARCHAR,                        -- evse | meter | site
    first_seen_at TIMESTAMP NOT NULL,    -- gateway time of its first reading
    updated_at TIMESTAMP NOT NULL,       -- gateway time of its latest reading
    last_seen_at TIMESTAMP,              -- its last live message (readings' lastSeenAt); a replay is no sign of life
    state VARCHAR,                       -- IEC 61851 A-F
    state_raw VARCHAR,
    connected BOOLEAN,                   -- a vehicle is plugged in
    charging BOOLEAN,
    enabled BOOLEAN,
    online BOOLEAN,                      -- presence of the device itself
    power_w DOUBLE,
    energy_wh DOUBLE,
    session_energy_wh DOUBLE,
    currents_a DOUBLE[],                 -- L1-L3, NULL for a phase not reported
    voltages_v DOUBLE[],
    soc_pct DOUBLE,
    offered_current_a DOUBLE,
    phases INTEGER,
    temperature_c DOUBLE,
    errors VARCHAR[],
    mode VARCHAR,
    title VARCHAR,
    extra JSON,
    flags VARCHAR[],                     -- of the latest reading: values it carried that were implausible
    retained BOOLEAN NOT NULL,           -- the latest reading came from a broker replay (it may be old)
    reports_connected BOOLEAN NOT NULL,  -- a reading of it had `connected`: sessions follow that, else `charging`
    reading JSON NOT NULL,               -- the latest reading as stored
    seq BIGINT NOT NULL                  -- its TELEMETRY sequence
);

-- every reading's numbers, one column each (no lists, no JSON), for time series and downsampling
CREATE TABLE IF NOT EXISTS readings (
    seq BIGINT NOT NULL,                 -- TELEMETRY sequence
    ts TIMESTAMP NOT NULL,               -- gateway time of the message that made the reading
    device_id VARCHAR NOT NULL,
    retained BOOLEAN NOT NULL,
    online BOOLEAN,
    connected BOOLEAN,
    charging BOOLEAN,
    power_w DOUBLE,
    energy_wh DOUBLE,
    session_energy_wh DOUBLE,
    current_l1 DOUBLE,
    current_l2 DOUBLE,
    current_l3 DOUBLE,
    voltage_l1 DOUBLE,
    voltage_l2 DOUBLE,
    voltage_l3 DOUBLE,
    soc_pct DOUBLE,
    offered_current_a DOUBLE,
    phases INTEGER,
    temperature_c DOUBLE
);

-- charging sessions of MQTT devices, from their readings: one starts when a live reading says a
-- vehicle is connected (or, for a device that never reports `connected`, that it charges) and
-- none is active; it ends at the first reading that says it is not (projections/fold.py)
CREATE TABLE IF NOT EXISTS device_sessions (
    device_id VARCHAR NOT NULL,
    n INTEGER NOT NULL,                  -- 1, 2, ... per device: the API's id is mqtt:{device_id}:{n}
    source VARCHAR NOT NULL,
    device VARCHAR NOT NULL,
    trigger VARCHAR NOT NULL,            -- connected | charging: the field that opened and closes it
    started_at TIMESTAMP NOT NULL,
    stopped_at TIMESTAMP,
    meter_start DOUBLE,                  -- energyWh at the start (or the first one reported after it), Wh
    meter_stop DOUBLE,                   -- energyWh at the end (or the last one reported before it)
    session_energy_wh DOUBLE,            -- the device's sessionEnergyWh at the end, when it reported one
    status VARCHAR NOT NULL,             -- active | completed
    start_seq BIGINT NOT NULL,
    stop_seq BIGINT,
    PRIMARY KEY (device_id, n)
);
"""


def create(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table that is missing and record the schema version."""
    con.execute(DDL)
    con.execute(
        "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
        [str(VERSION)],
    )


def version(con: duckdb.DuckDBPyConnection) -> int | None:
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except duckdb.CatalogException:
        return None
    return int(row[0]) if row else None


def drop(con: duckdb.DuckDBPyConnection) -> None:
    for table in TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}")  # names from the constant above, not input


# DuckDB checkpoints when the WAL passes this size (default 16 MB: every batch or two of 50 000
# messages, and each checkpoint rewrites the row groups the batches touched). At 256 MB ingest
# spends less than half as long committing (bench/RESULTS.md); the price is a longer WAL replay
# when the process was killed (a clean close checkpoints). Every commit is still durable.
CHECKPOINT_THRESHOLD: Final = "256MB"


def connect(path: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(path)
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
    return con
