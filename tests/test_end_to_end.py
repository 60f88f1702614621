"""The foundation's promise: ocpp-library charge points (1.6 and 2.0.1) run a whole session, and
every frame of both directions is in the OCPP stream with the right subject, headers and bytes."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201

from schemas import subjects
from schemas.records import TokenRecord, encode
from tests.conftest import Stack
from tests.support import WireRecorder, charge_point, eventually, stored_frames

NOW = datetime.now(UTC).isoformat()


async def put_token(stack: Stack, id_tag: str, **fields: object) -> None:
    kv = await stack.js.key_value(subjects.BUCKET_TOKENS)
    await kv.put(subjects.kv_key(id_tag), encode(TokenRecord(id_tag=id_tag, **fields)))  # type: ignore[arg-type]


async def assert_stream_matches_wire(stack: Stack, station: str, protocol: str, recorder: WireRecorder) -> None:
    wire = [("in", text) for text in recorder.sent] + [("out", text) for text in recorder.received]

    async def all_stored() -> list:
        frames = [m for m in await stored_frames(stack.js, station) if ".conn." not in m.subject]
        return frames if len(frames) >= len(wire) else []

    frames = await eventually(all_stored)
    assert sorted((m.headers[subjects.H_DIRECTION], m.data.decode()) for m in frames) == sorted(wire)
    calls: dict[str, str] = {}
    for msg in frames:
        frame = msgspec.json.decode(msg.data)
        headers = msg.headers
        direction = headers[subjects.H_DIRECTION]
        kind = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}[frame[0]]
        if kind == "CALL":
            calls[frame[1]] = frame[2]
        action = calls[frame[1]]
        assert msg.subject == subjects.ocpp_frame(station, direction, action)
        assert headers[subjects.H_STATION] == station
        assert headers[subjects.H_TYPE] == kind
        assert headers[subjects.H_ACTION] == action
        assert headers[subjects.H_ID] == frame[1]
        assert headers[subjects.H_PROTOCOL] == protocol
        assert headers[subjects.H_GATEWAY] == stack.gateway.id  # type: ignore[union-attr]
        assert headers[subjects.H_MSG_ID]
        received_at = datetime.fromisoformat(headers[subjects.H_RECEIVED_AT])
        assert received_at.tzinfo is not None
        assert headers[subjects.H_RECEIVED_AT].endswith("Z")
        assert len(headers[subjects.H_RECEIVED_AT].split(".")[1]) == 7  # microseconds + Z
    for event in ("connected",):
        assert any(m.subject == subjects.ocpp_conn(station, event) for m in await stored_frames(stack.js, station))


@pytest.mark.nats
async def test_ocpp16_charge_point_runs_a_session(stack: Stack, station: str) -> None:
    await put_token(stack, "TAG-16")
    async with charge_point(stack.url(station), station, "ocpp1.6", ChargePoint16) as (cp, recorder):
        boot = await cp.call(call16.BootNotification(charge_point_vendor="evbus-test", charge_point_model="v16"))
        assert boot.status == "Accepted"
        assert boot.interval == stack.settings.heartbeat_interval
        await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
        auth = await cp.call(call16.Authorize(id_tag="TAG-16"))
        assert auth.id_tag_info["status"] == "Accepted"
        start = await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG-16", meter_start=1000, timestamp=NOW))
        assert isinstance(start.transaction_id, int)
        assert start.transaction_id > 0
        assert start.id_tag_info["status"] == "Accepted"
        await cp.call(
            call16.MeterValues(
                connector_id=1,
                transaction_id=start.transaction_id,
                meter_value=[
                    {
                        "timestamp": NOW,
                        "sampledValue": [{"value": "1500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}],
                    }
                ],
            )
        )
        stop = await cp.call(
            call16.StopTransaction(
                meter_stop=2500, timestamp=NOW, transaction_id=start.transaction_id, id_tag="TAG-16", reason="Local"
            )
        )
        assert stop.id_tag_info["status"] == "Accepted"
        beat = await cp.call(call16.Heartbeat())
        assert beat.current_time
    await assert_stream_matches_wire(stack, station, "ocpp1.6", recorder)

    async def disconnected() -> bool:
        return any(
            m.subject == subjects.ocpp_conn(station, "disconnected") for m in await stored_frames(stack.js, station)
        )

    await eventually(disconnected)


@pytest.mark.nats
async def test_ocpp201_charging_station_runs_a_session(stack: Stack, station: str) -> None:
    await put_token(stack, "TAG-201")
    token = {"idToken": "TAG-201", "type": "ISO14443"}
    async with charge_point(stack.url(station), station, "ocpp2.0.1", ChargePoint201) as (cp, recorder):
        boot = await cp.call(
            call201.BootNotification(charging_station={"model": "v201", "vendorName": "evbus-test"}, reason="PowerUp")
        )
        assert boot.status == "Accepted"
        await cp.call(
            call201.StatusNotification(timestamp=NOW, connector_status="Available", evse_id=1, connector_id=1)
        )
        auth = await cp.call(call201.Authorize(id_token=token))
        assert auth.id_token_info["status"] == "Accepted"
        info = {"transactionId": "tx-" + station}
        started = await cp.call(
            call201.TransactionEvent(
                event_type="Started",
                timestamp=NOW,
                trigger_reason="Authorized",
                seq_no=0,
                transaction_info=info,
                id_token=token,
                evse={"id": 1, "connectorId": 1},
            )
        )
        assert started.id_token_info["status"] == "Accepted"
        await cp.call(
            call201.MeterValues(evse_id=1, meter_value=[{"timestamp": NOW, "sampledValue": [{"value": 1500.0}]}])
        )
        await cp.call(
            call201.TransactionEvent(
                event_type="Updated",
                timestamp=NOW,
                trigger_reason="MeterValuePeriodic",
                seq_no=1,
                transaction_info=info,
                meter_value=[
                    {
                        "timestamp": NOW,
                        "sampledValue": [{"value": 2000.0, "measurand": "Energy.Active.Import.Register"}],
                    }
                ],
            )
        )
        await cp.call(
            call201.TransactionEvent(
                event_type="Ended",
                timestamp=NOW,
                trigger_reason="StopAuthorized",
                seq_no=2,
                transaction_info={**info, "stoppedReason": "Local"},
            )
        )
        await cp.call(call201.Heartbeat())
    await assert_stream_matches_wire(stack, station, "ocpp2.0.1", recorder)
