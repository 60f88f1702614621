"""The operator-command contract: a request on ``cmd.{station}.{action}``, its reply, its events.

Any NATS client can command a station: publish the CALL's payload (JSON, in the station's own
protocol) as a request on ``cmd.{station}.{action}``. The command processor (queue group
``commands``) checks that the station is connected and the payload valid for its protocol, stores
the CALL on ``ocpp.{station}.out.{action}``, waits for the station's CALLRESULT/CALLERROR in the
stream and replies with :class:`CommandReply`. Each step is recorded as
``events.command.{station}.{status}`` (:class:`CommandEvent`). ``cmd.>`` is captured by no stream:
a core request to a captured subject would get the stream's PubAck as its first reply.
"""

from __future__ import annotations

import re
from typing import Final, Literal

import msgspec

# Optional request headers (ours never use the reserved Nats- prefix).
H_COMMAND_ID: Final = "Evbus-Command-Id"  # the caller's id for the command: also the CALL's OCPP unique id
H_TIMEOUT: Final = "Evbus-Timeout"  # seconds to wait for the station's answer (default EVBUS_CALL_TIMEOUT)
H_COMMAND: Final = "Evbus-Command"  # the version-neutral command name, when the API mapped one
H_REQUESTED_BY: Final = "Evbus-Requested-By"  # who asked (an API user, "api-token", a system's name)
# Members of the payload that are secrets (JSON pointers, comma-separated, e.g. "/value"): the
# station gets them; the stored CALL and the events show "***" there and carry H_REDACTED.
H_SECRET: Final = "Evbus-Secret"  # noqa: S105 - a header name
H_REDACTED: Final = "Evbus-Redacted"  # on a stored CALL whose secrets were blanked: the pointers
REDACTED: Final = "***"


def timeout_of(text: str | None) -> float | None:
    """The seconds of an ``Evbus-Timeout`` header: a positive finite number, else None."""
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and 0 < value < float("inf") else None


QUEUE: Final = "commands"  # the processors' queue group: any number may run
MAX_TIMEOUT_S: Final = 600.0

# An OCPP unique id is at most 36 characters (1.6 and 2.x); a command id is one.
COMMAND_ID: Final = re.compile(r"[A-Za-z0-9_.:-]{1,36}")

Outcome = Literal["answered", "error", "timeout", "offline", "invalid", "unavailable"]
"""How a command ended, in the reply:

- ``answered``: the station sent CALLRESULT (``response`` is its payload);
- ``error``: the station sent CALLERROR (``errorCode``, ``errorDescription``, ``errorDetails``);
- ``timeout``: no answer within the timeout (the CALL stays stored; a late answer is still recorded);
- ``offline``: no gateway holds a socket of the station;
- ``invalid``: the payload is not valid for the station's protocol, or the action is not one of it;
- ``unavailable``: the CALL could not be stored (NATS/JetStream trouble).
"""

NONE: Final = msgspec.Raw()
"""An absent JSON member (``Raw | None`` is not a type msgspec decodes): empty, falsy, omitted on encode."""

EventStatus = Literal["requested", "sent", "answered", "failed", "timed_out"]


class CommandReply(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """The reply to a ``cmd.{station}.{action}`` request. ``response`` and ``errorDetails`` are the
    station's JSON exactly as it sent it (empty when absent)."""

    command_id: str
    station: str
    action: str
    outcome: Outcome
    protocol: str | None = None
    response: msgspec.Raw = NONE
    error_code: str | None = None
    error_description: str | None = None
    error_details: msgspec.Raw = NONE
    detail: str | None = None  # why, for invalid/offline/unavailable
    duration_ms: float | None = None


class CommandEvent(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """Body of ``events.command.{station}.{status}``; header ``Ocpp-Station``, ``Nats-Msg-Id``
    ``cmd:{commandId}:{status}``.

    ``requested`` carries ``payload`` (the CALL's payload as requested); ``sent`` the gateway
    holding the socket; ``answered`` the station's ``response``; ``failed`` an ``outcome``
    (``error``, ``offline``, ``invalid``, ``unavailable``) with the error fields; ``timed_out``
    the timeout. ``durationMs`` runs from ``requested`` to the end.
    """

    command_id: str
    station: str
    action: str
    status: EventStatus
    at: str
    command: str | None = None
    protocol: str | None = None
    gateway: str | None = None
    requested_by: str | None = None
    payload: msgspec.Raw = NONE
    response: msgspec.Raw = NONE
    outcome: Outcome | None = None
    error_code: str | None = None
    error_description: str | None = None
    error_details: msgspec.Raw = NONE
    detail: str | None = None
    timeout_s: float | None = None
    duration_ms: float | None = None


encode = msgspec.json.Encoder().encode
decode_reply = msgspec.json.Decoder(CommandReply).decode
decode_event = msgspec.json.Decoder(CommandEvent).decode
