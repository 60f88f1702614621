"""``evbus sim``: simulated charge points for demos and load — OCPP 1.6, 2.0.1 and 2.1.

A library first (:func:`simulate`, :class:`Simulator`, :class:`SimConfig`); the CLI is a thin
wrapper in :mod:`evbus.cli`.
"""

from evbus.sim.config import MODES, Mode, SimConfig
from evbus.sim.simulator import Simulator, simulate
from evbus.sim.station import Station
from evbus.sim.stats import Report

__all__ = ["MODES", "Mode", "Report", "SimConfig", "Simulator", "Station", "simulate"]
