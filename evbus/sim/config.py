"""What a simulation run is asked to do: the ``evbus sim`` options as one frozen value."""

from __future__ import annotations

from typing import Final, Literal
from urllib.parse import quote

import msgspec

from schemas.ocpp_j import PROTOCOLS, Protocol

Mode = Literal["session", "roundtrip", "idle"]
MODES: Final[tuple[Mode, ...]] = ("session", "roundtrip", "idle")

DEFAULT_SESSION_RATE: Final = 0.2  # meter-value messages per second per charging station
CONNECTORS: Final = 2  # 1.6 connectors 1 and 2; 2.x EVSEs 1 and 2, one connector each
MAX_STATION_ID: Final = 48


class SimConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One run of the simulator. ``rate`` means what the mode makes of it (see :attr:`pace`)."""

    url: str
    stations: int = 1
    protocol: Protocol = "ocpp1.6"
    duration: float = 0.0  # seconds; 0 = until stopped
    mode: Mode = "session"
    rate: float | None = None  # session: meter values/s per charging station; roundtrip: total round trips/s
    prefix: str = "SIM-"
    password: str | None = None
    connect_rate: float | None = None  # new connections/s; None = unlimited (bounded in flight); 0 = all at once
    seed: int = 1
    first: int = 1  # number of the first station
    call_timeout: float = 30.0  # seconds to wait for the CSMS's answer to a CALL of ours
    backoff_base: float = 1.0  # first reconnect delay (seconds), doubled per failed attempt
    backoff_max: float = 60.0
    reboot_delay: float = 1.0  # seconds a station "reboots" after a Reset
    grace: float = 10.0  # seconds to finish in-flight calls and transactions when stopping
    record_calls: bool = False  # keep every CALL's unique id, sent and answered (Simulator.call_log)

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {self.protocol!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.stations < 1:
            raise ValueError("stations must be at least 1")
        if self.duration < 0 or (self.rate is not None and self.rate < 0):
            raise ValueError("duration and rate cannot be negative")
        if self.connect_rate is not None and self.connect_rate < 0:
            raise ValueError("connect_rate cannot be negative")
        if not self.url.startswith(("ws://", "wss://")):
            raise ValueError(f"url must start with ws:// or wss://, not {self.url!r}")
        if len(self.station_id(self.first + self.stations - 1)) > MAX_STATION_ID:
            raise ValueError(f"station ids longer than {MAX_STATION_ID} characters: shorten the prefix")

    @property
    def pace(self) -> float:
        """``rate`` with the mode's default: 0.2 meter values/s in session mode, 0 (= flat out) otherwise."""
        if self.rate is not None:
            return self.rate
        return DEFAULT_SESSION_RATE if self.mode == "session" else 0.0

    def station_id(self, number: int) -> str:
        return f"{self.prefix}{number:05d}"

    def station_url(self, station_id: str) -> str:
        return f"{self.url.rstrip('/')}/{quote(station_id, safe='')}"

    def station_ids(self) -> list[str]:
        return [self.station_id(n) for n in range(self.first, self.first + self.stations)]
