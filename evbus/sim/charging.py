"""A car on a connector: how much power it draws and what the meter reads, seeded.

Energy is power integrated over real (monotonic) time, so the register, power, current, voltage
and state of charge a station reports always agree with each other.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

# on-board charger sizes of common cars: (max power W, phases), with rough market weights
CARS: Final = ((3700.0, 1), (7400.0, 1), (11000.0, 3), (22000.0, 3))
CAR_WEIGHTS: Final = (1, 2, 6, 1)
NOMINAL_VOLTS: Final = 230.0


@dataclass(slots=True)
class Charge:
    max_power_w: float
    phases: int
    capacity_wh: float
    soc: float  # percent
    power_w: float
    since: float  # monotonic time the register was last advanced

    @classmethod
    def plugged(cls, rng: random.Random, now: float) -> Charge:
        power, phases = rng.choices(CARS, CAR_WEIGHTS)[0]
        soc = rng.uniform(10.0, 60.0)
        return cls(power, phases, rng.choice((40_000.0, 58_000.0, 77_000.0, 100_000.0)), soc, power, now)

    def advance(self, register_wh: float, now: float, rng: random.Random) -> float:
        """The register after charging since the last call; also moves SoC and the next power level."""
        hours = max(now - self.since, 0.0) / 3600.0
        self.since = now
        energy = self.power_w * hours
        self.soc = min(100.0, self.soc + energy / self.capacity_wh * 100.0)
        taper = 1.0 if self.soc < 80.0 else max(0.05, (100.0 - self.soc) / 20.0)  # constant current, then voltage
        self.power_w = self.max_power_w * taper * rng.uniform(0.97, 1.0)
        return register_wh + energy

    def volts(self, rng: random.Random) -> list[float]:
        return [round(NOMINAL_VOLTS + rng.uniform(-4.0, 4.0), 1) for _ in range(self.phases)]

    def amps(self, volts: list[float]) -> list[float]:
        return [round(self.power_w / self.phases / v, 1) for v in volts]
