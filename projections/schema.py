"""The DuckDB read models: one table per view of the stream, plus the position each stream reached.

Times are ``TIMESTAMP`` in UTC (the session time zone is UTC). Directions are stored as the API
shows them (``IN``/``OUT``). Nothing here is a source of truth: :func:`create` on an empty file and
a replay of the streams give back every row.
"""

from __future__ import annotations

from typing import Final

import duckdb

VERSION: Final = 1  # bump when a table changes: the runner then rebuilds from the stream

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
    last_heartbeat_at TIMESTAMP
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
