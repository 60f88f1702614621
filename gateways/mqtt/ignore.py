"""Which MQTT topics the gateway drops before any work: nothing they carry is stored.

Three origins, one matcher: evbus's own subjects (built in: a broker bridged to NATS may deliver
every core NATS message to a ``#`` subscriber, our own readings included; the embedded listener
gives MQTT clients no rights on them, nats.conf), ``EVBUS_MQTT_IGNORE``
(the gateway's setting) and the operators' filters in KV ``mqtt_ignore`` (``/api/mqtt/ignored-topics``),
which a running gateway follows without a restart. The first two cannot be removed from the API.
Pure logic: the gateway's control plane feeds the operators' filters in.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Final

from paho.mqtt.matcher import MQTTMatcher

# evbus's own subjects as MQTT topics (ocpp.CP1.in.Heartbeat → ocpp/CP1/in/Heartbeat); nats.conf denies
# the embedded listener's devices the same list (tests/gateways/mqtt/test_listener.py checks it)
OWN_SUBJECTS: Final = ("ocpp/#", "telemetry/#", "events/#", "cmd/#", "evbus/#", "_INBOX/#")
MAX_FILTER_BYTES: Final = 256  # a KV key is the filter escaped (up to 3 characters a byte)
MAX_OPERATOR_FILTERS: Final = 1000


def filter_problem(text: str) -> str | None:
    """Why ``text`` is not an MQTT topic filter an operator may add (MQTT 3.1.1 §4.7), or None.

    ``+`` is a whole level, ``#`` the whole last level. A filter whose every level is a wildcard
    (``#``, ``+``, ``+/#``) would drop every topic of some depth, so one level must be named."""
    if not text:
        return "a topic filter is not empty"
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        return "a topic filter has no control characters"
    if len(text.encode("utf-8")) > MAX_FILTER_BYTES:
        return f"a topic filter has at most {MAX_FILTER_BYTES} bytes"
    if text != text.strip():
        return "a topic filter does not start or end with whitespace"
    levels = text.split("/")
    for n, level in enumerate(levels):
        if "#" in level and (level != "#" or n != len(levels) - 1):
            return "'#' is only allowed as the whole last level (a/b/#)"
        if "+" in level and level != "+":
            return "'+' is only allowed as a whole level (a/+/c)"
    if all(level in ("+", "#") for level in levels):
        return "the filter would drop every topic of its depth: name at least one level"
    return None


class IgnoreFilters:
    """The gateway's ignore filters by origin, and one MQTTMatcher over all of them (0.9 µs a
    message however many filters there are; a tree per filter cost 15)."""

    def __init__(self, setting: Iterable[str] = ()) -> None:
        self.built_in: tuple[str, ...] = OWN_SUBJECTS
        self.setting: tuple[str, ...] = tuple(setting)
        self.operator: tuple[str, ...] = ()
        self._matcher = self._build()

    def drops(self, topic: str) -> bool:
        return next(self._matcher.iter_match(topic), False) is True

    def replace_operator(self, filters: Iterable[str]) -> None:
        """The operators' filters as KV ``mqtt_ignore`` now holds them (invalid ones are left out)."""
        self.operator = tuple(sorted({f for f in filters if filter_problem(f) is None}))
        self._matcher = self._build()

    def all(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.built_in + self.setting + self.operator))

    def _build(self) -> MQTTMatcher:
        matcher = MQTTMatcher()
        for topic_filter in self.all():
            matcher[topic_filter] = True
        return matcher
