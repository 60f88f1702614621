"""The messages a simulated station sends, one implementation per protocol family."""

from __future__ import annotations

import random
from typing import Any, Protocol

from evbus.sim.device import Connector, Device, Transaction
from evbus.sim.v2.messages import Messages2
from evbus.sim.v16.messages import Messages16


class Messages(Protocol):
    def boot(self, reason: str) -> dict[str, Any]: ...

    def status_text(self, c: Connector) -> str: ...

    def status(self, c: Connector) -> dict[str, Any]: ...

    def authorize(self, id_tag: str, token_type: str) -> dict[str, Any]: ...

    def authorized(self, answer: dict[str, Any]) -> bool: ...

    def start(self, c: Connector, tx: Transaction) -> tuple[str, dict[str, Any]]: ...

    def started(self, answer: dict[str, Any], tx: Transaction) -> bool:
        """Read the start's answer (1.6: the transaction id); False when the idTag was refused."""
        ...

    def meter_values(self, c: Connector, context: str, rng: random.Random) -> tuple[str, dict[str, Any]]: ...

    def update(self, c: Connector, rng: random.Random, trigger: bool = False) -> tuple[str, dict[str, Any]]:
        """Periodic (or triggered) meter values of a running transaction."""
        ...

    def stop(self, c: Connector, tx: Transaction, reason: str) -> tuple[str, dict[str, Any]] | None: ...

    def notification(self, message: str) -> tuple[str, dict[str, Any]] | None:
        """A triggered status notification ("Idle") or certificate request; None if not one of those."""
        ...


def messages_for(device: Device) -> Messages:
    return Messages16(device) if device.v16 else Messages2(device)
