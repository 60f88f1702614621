"""Properties of the frame parser (schemas/ocpp_j.py) over mutated real frames and random input.

- ``parse`` never raises and returns a Call, CallResult, CallError or Malformed, for every protocol;
- a Malformed answer is a CALLERROR of that protocol carrying the frame's id (or ``-1``), and the
  code docs/adr/0003 gives for the kind of damage (checked against the table below, which is
  written from the ADR, not from the parser);
- what parses re-encodes to a frame that parses to the same message (and, for a CALL, decodes to
  the same JSON as the wire text).

Deterministic (``derandomize``) and bounded: the file runs in well under 30 s.
"""

from __future__ import annotations

import random
import re
from typing import Any

import msgspec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas import ocpp_j
from schemas.ocpp_j import (
    ERROR_CODES,
    MAX_ID_LENGTH,
    PROTOCOLS,
    SUPPORTED_TYPES,
    UNREADABLE_ID,
    Call,
    CallError,
    CallResult,
    Malformed,
    MessageType,
)
from tests.fuzz.mutations import corpus, mutate
from tests.fuzz.tally import TRIED

FUZZ = settings(
    max_examples=2000,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

# --- the expected answer, from the table in docs/adr/0003 ---------------------------------------

PRINTABLE_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_ID_LENGTH}}}")
ACTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")


def expected(data: str | bytes, protocol: str) -> tuple[str, Any]:
    """("call" | "result" | "error" | "silent", None) or ("answer", (id, code)) for this frame."""
    codes = ERROR_CODES[protocol]
    try:
        frame = msgspec.json.decode(data)
    except Exception:  # not JSON, not UTF-8, nested beyond the decoder's reach
        return "answer", (UNREADABLE_ID, codes.rpc)
    if not isinstance(frame, list) or not frame:
        return "answer", (UNREADABLE_ID, codes.rpc)
    # "-1" is the id of answers to frames without one (2.0.1 §4.2.3): it cannot pair anything either
    readable = len(frame) > 1 and isinstance(frame[1], str) and PRINTABLE_ID.fullmatch(frame[1]) and frame[1] != "-1"
    unique_id = frame[1] if readable else UNREADABLE_ID
    head = frame[0]
    if type(head) is not int:
        return "answer", (unique_id, codes.rpc)
    if head not in SUPPORTED_TYPES[protocol]:
        return ("silent", None) if codes.message_type is None else ("answer", (unique_id, codes.message_type))
    if not readable:
        return "answer", (UNREADABLE_ID, codes.rpc)
    if head in (2, 6):  # CALL, SEND
        if len(frame) != 4:
            return "answer", (unique_id, codes.rpc)
        if not isinstance(frame[2], str) or not ACTION_NAME.fullmatch(frame[2]):
            return "answer", (unique_id, "NotImplemented")
        if not isinstance(frame[3], dict):
            return "answer", (unique_id, codes.format)
        return "call", None
    if head == 3:
        return ("result", None) if len(frame) == 3 else ("silent", None)
    return ("error", None) if 3 <= len(frame) <= 5 and isinstance(frame[2], str) else ("silent", None)


def check(data: str | bytes, protocol: str) -> None:
    TRIED["frames parsed (hypothesis)"] += 1
    result = ocpp_j.parse(data, protocol)  # type: ignore[arg-type]
    assert isinstance(result, Call | CallResult | CallError | Malformed)
    kind, answer = expected(data, protocol)
    if kind == "answer":
        assert isinstance(result, Malformed), result
        assert result.answer is not None
        frame = msgspec.json.decode(result.answer)
        assert frame[:3] == [4, *answer], (frame, answer)
        assert len(frame) == 5
        assert isinstance(frame[3], str)
        assert len(frame[3]) <= 255
        assert frame[4] == {}
        assert result.unique_id == answer[0]
        if answer[0] != UNREADABLE_ID:  # our answer reads as a CALLERROR (one with id -1 pairs nothing)
            assert ocpp_j.parse(result.answer, protocol) == CallError(answer[0], answer[1], frame[3], {})  # type: ignore[arg-type]
    elif kind == "silent":
        assert isinstance(result, Malformed), result
        assert result.answer is None
    elif kind == "call":
        assert isinstance(result, Call), result
        again = ocpp_j.call(result.unique_id, result.action, result.payload)
        if result.type == MessageType.CALL:
            assert msgspec.json.decode(again) == msgspec.json.decode(data)
        assert ocpp_j.parse(again, protocol) == Call(result.unique_id, result.action, result.payload)  # type: ignore[arg-type]
    elif kind == "result":
        assert isinstance(result, CallResult), result
        again = msgspec.json.encode([3, result.unique_id, result.payload])
        assert ocpp_j.parse(again, protocol) == result  # type: ignore[arg-type]
    else:
        assert isinstance(result, CallError), result
        again = msgspec.json.encode(
            [int(result.type), result.unique_id, result.code, result.description, result.details]
        )
        assert ocpp_j.parse(again, protocol) == result  # type: ignore[arg-type]
    if isinstance(result, Malformed):
        assert result.reason
        assert result.unique_id == UNREADABLE_ID or PRINTABLE_ID.fullmatch(result.unique_id)


# --- strategies ---------------------------------------------------------------------------------

protocols = st.sampled_from(PROTOCOLS)
real_frames = st.sampled_from(corpus())


@st.composite
def mutated_frames(draw: st.DrawFn) -> tuple[str | bytes, str]:
    """A real frame bent 1 to 3 times, read as its own protocol or (a quarter of the time) another."""
    protocol, text = draw(real_frames)
    rnd = draw(st.randoms(use_true_random=False))
    data = mutate(text, rnd, draw(st.sampled_from([1, 1, 1, 2, 3])))
    if draw(st.integers(0, 3)) == 0:
        protocol = draw(protocols)
    return data, protocol


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
heads = st.sampled_from([2, 3, 4, 5, 6]) | st.integers(-3, 12) | json_values
ids = st.sampled_from(["", "-1", " ", "a b", "x" * 128, "x" * 129]) | st.text(max_size=40) | json_values
actions = st.sampled_from(["Heartbeat", "BootNotification", "DataTransfer", "Reset", "A" * 65, "No.Such"]) | json_values


@st.composite
def ocpp_shaped(draw: st.DrawFn) -> str:
    """An array that starts like an OCPP-J frame, with any elements after that."""
    frame = [
        draw(heads),
        draw(ids),
        draw(actions),
        draw(json_values | st.dictionaries(st.text(max_size=8), json_values)),
    ]
    return msgspec.json.encode(frame[: draw(st.integers(0, 4))] + draw(st.lists(json_values, max_size=2))).decode()


# --- properties ---------------------------------------------------------------------------------


@FUZZ
@given(sample=mutated_frames())
@example(sample=("[" * 5000 + "]" * 5000, "ocpp1.6"))  # nesting beyond the decoder's recursion limit
@example(sample=('[2,"n1","DataTransfer",{"data":' + "[" * 2000 + "]" * 2000 + "}]", "ocpp2.0.1"))
@example(sample=("[" + "9" * 5000 + ',"m","Heartbeat",{}]', "ocpp2.1"))  # past int's 4300-digit str limit
@example(sample=('[2,"a","Heartbeat",{"a":1,"a":2}]', "ocpp1.6"))  # duplicate keys: the last wins
@example(sample=(b'[2,"\xff","Heartbeat",{}]', "ocpp2.0.1"))  # invalid UTF-8
def test_mutated_real_frames(sample: tuple[str | bytes, str]) -> None:
    check(*sample)


@FUZZ
@given(data=st.text() | st.binary(), protocol=protocols)
def test_random_text_and_bytes(data: str | bytes, protocol: str) -> None:
    check(data, protocol)


@settings(FUZZ, max_examples=1000)  # generating these costs more than parsing them
@given(text=ocpp_shaped(), protocol=protocols)
def test_random_frames_of_the_right_shape(text: str, protocol: str) -> None:
    check(text, protocol)


@settings(FUZZ, max_examples=500)
@given(data=mutated_frames(), cut=st.integers(0, 300))
def test_a_frame_over_the_size_limit_is_answered_with_its_id(data: tuple[str | bytes, str], cut: int) -> None:
    """``too_large`` reads the id from the head of the frame only, and never raises."""
    TRIED["frames parsed (hypothesis)"] += 1
    frame, protocol = data
    result = ocpp_j.too_large(frame, cut, protocol)  # type: ignore[arg-type]
    assert isinstance(result, Malformed)
    assert result.answer is not None
    answer = msgspec.json.decode(result.answer)
    assert answer[:2] == [4, result.unique_id]
    assert answer[2] == ERROR_CODES[protocol].format
    if result.unique_id != UNREADABLE_ID:
        assert PRINTABLE_ID.fullmatch(result.unique_id)
        head = frame[:200] if isinstance(frame, str) else frame[:200].decode("utf-8", "replace")
        assert f'"{result.unique_id}"' in head


def test_the_corpus_is_real_traffic_of_every_protocol() -> None:
    frames = corpus()
    assert len(frames) > 1000
    assert {protocol for protocol, _ in frames} == {"ocpp1.6", "ocpp2.0.1"}
    rnd = random.Random(0)
    for protocol, text in rnd.sample(frames, 200):
        assert not isinstance(ocpp_j.parse(text, protocol), Malformed), text  # type: ignore[arg-type]
