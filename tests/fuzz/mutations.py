"""Mutated real frames: the corpus (tests/vectors/, four charge-point implementations) and the ways
a broken or hostile station bends them. Each mutation takes the frame (decoded), its wire text and a
``random.Random`` and returns new wire text (or bytes, which go out as a binary frame).

Hypothesis drives these with its own seeded ``Random`` (tests/fuzz/test_frames.py); the live
gateway test draws a fixed sequence from ``random.Random(seed)``.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Final

import msgspec

VECTORS: Final = Path(__file__).resolve().parents[1] / "vectors"

Mutation = Callable[[list[Any], str, random.Random], str | bytes]


@cache
def corpus() -> tuple[tuple[str, str], ...]:
    """(protocol, wire text) of every distinct frame in the vectors, both directions."""
    frames: dict[str, str] = {}
    for path in sorted(VECTORS.glob("*.jsonl")):
        protocols: dict[str, str] = {}
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["dir"] == "connect":
                protocols.setdefault(record["station"], record["frame"]["subprotocol"])
            elif record["dir"] in ("cp->csms", "csms->cp"):
                text = msgspec.json.encode(record["frame"]).decode()
                frames.setdefault(text, protocols[record["station"]])
    return tuple((protocol, text) for text, protocol in frames.items())


def encode(frame: Any) -> str:
    return msgspec.json.encode(frame).decode()


# --- values of every JSON type, and nasty ones --------------------------------------------------

NASTY_STRINGS: Final = [
    "",
    " ",
    "\x00",
    "\t\n\r",
    "é€😀",
    "\u202e\u200b",
    "a" * 37,
    "\\",
    '"',
    "null",
    "../../etc/passwd",
    "%2E%00",
    "${jndi:ldap://x}",
    "'; DROP TABLE messages; --",
]
HUGE_NUMBERS: Final = [
    2**31,
    2**63,
    2**64,
    -(2**63) - 1,
    10**30,
    -(10**300),
    1e308,
    -1e308,
    5e-324,
    0.1 + 0.2,
    -0.0,
]


def json_value(rnd: random.Random, depth: int = 0) -> Any:
    kind = rnd.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rnd.random() < 0.5
    if kind == 2:
        return rnd.choice([0, -1, 1, 2, 3, 4, 5, 6, 7, 255, *HUGE_NUMBERS])
    if kind == 3:
        return rnd.choice([0.5, -2.5, 1e-9, *HUGE_NUMBERS])
    if kind in (4, 5):
        return rnd.choice(NASTY_STRINGS) if rnd.random() < 0.5 else random_text(rnd, rnd.randrange(12))
    if kind == 6:
        return [json_value(rnd, depth + 1) for _ in range(rnd.randrange(4))]
    return {random_text(rnd, rnd.randrange(1, 8)): json_value(rnd, depth + 1) for _ in range(rnd.randrange(4))}


def random_text(rnd: random.Random, length: int) -> str:
    alphabet = rnd.choice([string.ascii_letters, string.printable, '[]{}",:0123456789 ', "\x00\x1f\x7f é€😀\u2028"])
    return "".join(rnd.choice(alphabet) for _ in range(length))


def other_type(value: Any, rnd: random.Random) -> Any:
    """A value of another JSON type than ``value``."""
    while True:
        candidate = json_value(rnd)
        if type(candidate) is not type(value):
            return candidate


# --- text mutations ---------------------------------------------------------------------------


def delete_chars(frame: list[Any], text: str, rnd: random.Random) -> str:
    at = rnd.randrange(len(text))
    return text[:at] + text[at + rnd.randint(1, 8) :]


def insert_chars(frame: list[Any], text: str, rnd: random.Random) -> str:
    at = rnd.randrange(len(text) + 1)
    return text[:at] + random_text(rnd, rnd.randint(1, 6)) + text[at:]


def replace_chars(frame: list[Any], text: str, rnd: random.Random) -> str:
    chars = list(text)
    for _ in range(rnd.randint(1, 4)):
        chars[rnd.randrange(len(chars))] = rnd.choice('[]{}",:0 \x00\\é' + string.ascii_letters)
    return "".join(chars)


def truncate(frame: list[Any], text: str, rnd: random.Random) -> str:
    return text[: rnd.randrange(len(text))]


def repeat_span(frame: list[Any], text: str, rnd: random.Random) -> str:
    start = rnd.randrange(len(text))
    end = min(len(text), start + rnd.randint(1, 30))
    return text[:end] + text[start:end] * rnd.randint(1, 5) + text[end:]


def invalid_utf8(frame: list[Any], text: str, rnd: random.Random) -> bytes:
    raw = text.encode()
    at = rnd.randrange(len(raw) + 1)
    junk = rnd.choice([b"\xff", b"\xfe\xff", b"\xc3", b"\x80\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00"])
    return raw[:at] + junk + raw[at:]


def wrap_in_whitespace_or_bom(frame: list[Any], text: str, rnd: random.Random) -> str:
    return rnd.choice(["\ufeff", " \n\t", ""]) + text + rnd.choice(["", " ", "\n", " x", ",", "]", "[]"])


def duplicate_keys(frame: list[Any], text: str, rnd: random.Random) -> str:
    """``{"a": 1, ...}`` → ``{"a": <other>, "a": 1, ...}`` for one object in the frame."""
    starts = [i for i, c in enumerate(text) if c == "{" and text[i + 1 : i + 2] == '"']
    if not starts:
        return text[:-1] + ', {"k": 1, "k": 2}]'
    at = rnd.choice(starts)
    key_end = text.index('"', at + 2)
    key = text[at + 1 : key_end + 1]
    return text[: at + 1] + f"{key}:{encode(json_value(rnd))}," + text[at + 1 :]


def huge_number_text(frame: list[Any], text: str, rnd: random.Random) -> str:
    """A number no int64/float holds, written into the text where a value goes."""
    number = rnd.choice(
        ["1" + "0" * rnd.randint(20, 6000), "-9" * rnd.randint(10, 400), "1e999", "-1e-999", "1.5e+308"]
    )
    spots = [i + 1 for i, c in enumerate(text) if c in ":[,"]
    at = rnd.choice(spots)
    return text[:at] + number + "," + text[at:] if text[at : at + 1] not in "]}" else text[:at] + number + text[at:]


# --- structural mutations ---------------------------------------------------------------------


def change_element_type(frame: list[Any], text: str, rnd: random.Random) -> str:
    copy = list(frame)
    at = rnd.randrange(len(copy))
    copy[at] = other_type(copy[at], rnd)
    return encode(copy)


def change_payload_member(frame: list[Any], text: str, rnd: random.Random) -> str:
    copy = list(frame)
    payload = copy[-1]
    if isinstance(payload, dict) and payload:
        payload = dict(payload)
        key = rnd.choice(sorted(payload))
        choice = rnd.randrange(3)
        if choice == 0:
            payload[key] = other_type(payload[key], rnd)
        elif choice == 1:
            del payload[key]
        else:
            payload[random_text(rnd, rnd.randint(1, 10))] = json_value(rnd)
        copy[-1] = payload
    else:
        copy[-1] = {"unexpected": json_value(rnd)}
    return encode(copy)


def wrong_message_type(frame: list[Any], text: str, rnd: random.Random) -> str:
    copy = list(frame)
    copy[0] = rnd.choice([-1, 0, 1, 2, 3, 4, 5, 6, 7, 9, 99, 2**31, 2**63, 10**30, True, False, 2.0, "2", None, [2]])
    return encode(copy)


def long_or_odd_id(frame: list[Any], text: str, rnd: random.Random) -> str:
    copy = list(frame)
    if len(copy) < 2:
        copy.append("")
    copy[1] = rnd.choice(
        [
            "x" * rnd.choice([36, 37, 128, 129, 1000, 20000]),
            "",
            " ",
            "id with spaces",
            "id\x00nul",
            "é",
            "-1",
            random_text(rnd, rnd.randint(1, 40)),
        ]
    )
    return encode(copy)


def long_or_odd_action(frame: list[Any], text: str, rnd: random.Random) -> str:
    copy = list(frame)
    while len(copy) < 4:
        copy.append({})
    copy[2] = rnd.choice(
        [
            "A" * rnd.choice([64, 65, 1000, 20000]),
            "",
            "Heart beat",
            "No.Such>Action",
            "héartbeat",
            "heartbeat",
            "HEARTBEAT",
            "Reset",  # a CSMS→CS action sent by a station
            "GetConfiguration",
            "TransactionEvent",
            "StartTransaction",
            "1Heartbeat",
            random_text(rnd, rnd.randint(1, 20)),
        ]
    )
    return encode(copy)


def deep_nesting(frame: list[Any], text: str, rnd: random.Random) -> str:
    depth = rnd.choice([10, 100, 500, 900, 1200, 5000])
    opener, closer = rnd.choice([("[", "]"), ('{"a":', "}")])
    nested = opener * depth + "0" + closer * depth
    if frame and frame[0] == 2 and len(frame) == 4:
        return text[: -len(encode(frame[3])) - 1] + '{"data":' + nested + "}]"
    return "[" + text[1:-1] + "," + nested + "]"


def add_or_drop_elements(frame: list[Any], text: str, rnd: random.Random) -> str:
    copy = list(frame)
    if rnd.random() < 0.5 and copy:
        del copy[rnd.randrange(len(copy))]
    else:
        for _ in range(rnd.randint(1, 3)):
            copy.insert(rnd.randrange(len(copy) + 1), json_value(rnd))
    return encode(copy)


def not_a_frame(frame: list[Any], text: str, rnd: random.Random) -> str:
    return encode(rnd.choice([frame[-1], {"frame": frame}, [], [[]], frame[0], None, text, ""]))


TEXT_MUTATIONS: Final[dict[str, Mutation]] = {
    f.__name__: f  # type: ignore[misc]
    for f in (delete_chars, insert_chars, replace_chars, truncate, repeat_span, invalid_utf8)
}
STRUCTURE_MUTATIONS: Final[dict[str, Mutation]] = {
    f.__name__: f  # type: ignore[misc]
    for f in (
        wrap_in_whitespace_or_bom,
        duplicate_keys,
        huge_number_text,
        change_element_type,
        change_payload_member,
        wrong_message_type,
        long_or_odd_id,
        long_or_odd_action,
        deep_nesting,
        add_or_drop_elements,
        not_a_frame,
    )
}
MUTATIONS: Final = TEXT_MUTATIONS | STRUCTURE_MUTATIONS


def mutate(text: str, rnd: random.Random, times: int = 1) -> str | bytes:
    """``text`` bent by ``times`` mutations in a row (bytes end the chain: they are no longer text)."""
    current: str | bytes = text
    for _ in range(times):
        if isinstance(current, bytes) or not current:
            break
        try:
            frame = msgspec.json.decode(current)
        except (msgspec.DecodeError, RecursionError):
            frame = None
        # most mutations keep the frame JSON (what the later checks see); a third break the text itself
        table = STRUCTURE_MUTATIONS if rnd.random() < 0.65 else TEXT_MUTATIONS
        if not isinstance(frame, list) or not frame:
            table, frame = TEXT_MUTATIONS, [current]
        name = rnd.choice(sorted(table))
        current = table[name](frame, current, rnd)
    return current
