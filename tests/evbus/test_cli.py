"""`evbus up` as a user runs it: a real process, its own nats-server, a charge point, Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from ocpp.v16 import ChargePoint, call

from evbus.settings import environment
from tests.support import eventually

EVBUS = [sys.executable, "-m", "evbus.cli"]
REPO = Path(__file__).resolve().parents[2]


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    base = environment(data_dir=tmp_path / "data", nats_port=0, mqtt_port=0, ocpp_port=0, ocpp_host="127.0.0.1")
    base.update(extra)  # EVBUS_* names, invalid values too
    return base


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


async def read_line_matching(stream: asyncio.StreamReader, pattern: str, timeout: float = 30) -> re.Match[str]:
    async def scan() -> re.Match[str]:
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"output ended before {pattern!r}")
            if match := re.search(pattern, line):
                return match

    return await asyncio.wait_for(scan(), timeout)


async def test_evbus_up_serves_a_charge_point_and_stops_cleanly(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        *EVBUS, "up", env=env(tmp_path), cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        match = await read_line_matching(process.stdout, r"ws://127\.0\.0\.1:(\d+)/ocpp/")
        port = int(match.group(1))
        async with websockets.connect(f"ws://127.0.0.1:{port}/ocpp/CLI-1", subprotocols=["ocpp1.6"]) as ws:
            cp = ChargePoint("CLI-1", ws)
            task = asyncio.create_task(cp.start())
            boot = await cp.call(call.BootNotification(charge_point_vendor="cli", charge_point_model="test"))
            assert boot.status == "Accepted"
            task.cancel()
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    config = (tmp_path / "data" / "nats-server.conf").read_text()
    assert "jetstream" in config
    assert "mqtt" in config
    server_pids = subprocess.run(["pgrep", "-f", str(tmp_path / "data")], capture_output=True, text=True).stdout
    assert server_pids.strip() == ""  # the embedded nats-server stopped with evbus


async def test_evbus_demo_runs_the_stack_with_simulated_stations_charging(tmp_path: Path) -> None:
    extra = {"EVBUS_API_PORT": "0", "EVBUS_API_TOKEN": "demo-token"}
    process = await asyncio.create_subprocess_exec(
        *EVBUS, "demo", "--stations", "2", "--rate", "5", env=env(tmp_path, **extra), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        api = (await read_line_matching(process.stdout, r"(http://127\.0\.0\.1:\d+)/schema")).group(1)
        await read_line_matching(process.stdout, r"demo: 2 simulated stations")
        headers = {"Authorization": "Bearer demo-token"}
        async with httpx.AsyncClient(base_url=api, headers=headers, timeout=10) as http:

            async def charging() -> list[dict[str, object]]:
                rows = (await http.get("/api/transactions")).json()
                return rows if {row["protocol"] for row in rows} == {"ocpp1.6", "ocpp2.0.1"} else []

            rows = await eventually(charging, timeout=60, interval=0.25)
        assert {row["identity"] for row in rows} <= {"DEMO-00001", "DEMO-00002"}
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(
    ("setting", "also_says"),
    [("EVBUS_NATS_PORT", "EVBUS_NATS_URL"), ("EVBUS_MQTT_PORT", "MQTT"), ("EVBUS_OCPP_PORT", "OCPP")],
)
def test_a_taken_port_is_named_with_the_setting_to_change(tmp_path: Path, setting: str, also_says: str) -> None:
    with taken_port() as port:
        result = subprocess.run(
            [*EVBUS, "up"],
            env=env(tmp_path, **{setting: str(port)}),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port}" in result.stderr
    assert setting in result.stderr
    assert also_says in result.stderr
    assert "Traceback" not in result.stderr


def test_roles_refuse_to_run_without_a_nats_url(tmp_path: Path) -> None:
    result = subprocess.run(
        [*EVBUS, "gateway"], env=env(tmp_path), cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "EVBUS_NATS_URL" in result.stderr


def test_bad_settings_are_reported_by_name(tmp_path: Path) -> None:
    result = subprocess.run(
        [*EVBUS, "up"], env=env(tmp_path, EVBUS_OCPP_PORT="nine"), cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "ocpp_port" in result.stderr
