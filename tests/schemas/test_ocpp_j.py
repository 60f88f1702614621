"""OCPP-J framing: every malformed class gets the CALLERROR of its protocol version (docs/adr/0003)."""

from __future__ import annotations

import msgspec
import pytest

from schemas import ocpp_j
from schemas.ocpp_j import Call, CallError, CallResult, Malformed, MessageType


def answer_of(result: object) -> list:
    assert isinstance(result, Malformed)
    assert result.answer is not None
    return msgspec.json.decode(result.answer)


def test_a_call_parses() -> None:
    call = ocpp_j.parse('[2,"1","Heartbeat",{}]', "ocpp1.6")
    assert call == Call(unique_id="1", action="Heartbeat", payload={})


def test_results_and_errors_parse() -> None:
    assert ocpp_j.parse('[3,"1",{"a":1}]', "ocpp2.0.1") == CallResult(unique_id="1", payload={"a": 1})
    error = ocpp_j.parse('[4,"1","NotSupported","no",{}]', "ocpp2.0.1")
    assert isinstance(error, CallError)
    assert error.code == "NotSupported"


def test_21_send_and_callresulterror_parse_only_in_21() -> None:
    send = ocpp_j.parse('[6,"9","NotifyPeriodicEventStream",{}]', "ocpp2.1")
    assert isinstance(send, Call)
    assert send.type == MessageType.SEND
    crerror = ocpp_j.parse('[5,"9","FormatViolation","bad",{}]', "ocpp2.1")
    assert isinstance(crerror, CallError)
    assert crerror.type == MessageType.CALLRESULTERROR
    assert answer_of(ocpp_j.parse('[6,"9","X",{}]', "ocpp2.0.1"))[2] == "MessageTypeNotSupported"


@pytest.mark.parametrize(
    ("frame", "protocol", "unique_id", "code"),
    [
        ("not json", "ocpp1.6", "-1", "FormationViolation"),
        ("not json", "ocpp2.0.1", "-1", "RpcFrameworkError"),
        ("not json", "ocpp2.1", "-1", "RpcFrameworkError"),
        ('{"a":1}', "ocpp1.6", "-1", "FormationViolation"),
        ("[]", "ocpp2.0.1", "-1", "RpcFrameworkError"),
        ('["2","x","Heartbeat",{}]', "ocpp2.0.1", "x", "RpcFrameworkError"),
        ('[2,7,"Heartbeat",{}]', "ocpp1.6", "-1", "FormationViolation"),
        ('[2,"x","Heartbeat"]', "ocpp1.6", "x", "FormationViolation"),
        ('[2,"x","Heartbeat",{},1]', "ocpp2.0.1", "x", "RpcFrameworkError"),
        ('[2,"x","Heartbeat",[]]', "ocpp1.6", "x", "FormationViolation"),
        ('[2,"x","Heartbeat",[]]', "ocpp2.0.1", "x", "FormatViolation"),
        ('[2,"x","Heart.beat>",{}]', "ocpp2.0.1", "x", "NotImplemented"),
        ('[2,"x","",{}]', "ocpp1.6", "x", "NotImplemented"),
        ('[7,"x","Heartbeat",{}]', "ocpp1.6", "x", "FormationViolation"),
        ('[7,"x","Heartbeat",{}]', "ocpp2.0.1", "x", "MessageTypeNotSupported"),
        ('[5,"x","E","d",{}]', "ocpp2.0.1", "x", "MessageTypeNotSupported"),
        ('[2,"line\\nbreak","Heartbeat",{}]', "ocpp2.0.1", "-1", "RpcFrameworkError"),
    ],
)
def test_malformed_frames_get_the_versions_error_code(frame: str, protocol: str, unique_id: str, code: str) -> None:
    answer = answer_of(ocpp_j.parse(frame, protocol))  # type: ignore[arg-type]
    assert answer[0] == 4
    assert answer[1] == unique_id
    assert answer[2] == code
    assert answer[3]  # a description says what was wrong
    assert answer[4] == {}


def test_21_ignores_unknown_message_types_silently() -> None:
    result = ocpp_j.parse('[7,"x","Heartbeat",{}]', "ocpp2.1")
    assert isinstance(result, Malformed)
    assert result.answer is None


@pytest.mark.parametrize("frame", ['[3,"x"]', '[3,"x",{},1]', '[4,"x"]', '[4,"x",1,"d",{}]', '[4,"x","E","d",{},1]'])
def test_malformed_results_are_never_answered(frame: str) -> None:
    result = ocpp_j.parse(frame, "ocpp1.6")
    assert isinstance(result, Malformed)
    assert result.answer is None


def test_too_large_frames_keep_their_id_when_readable() -> None:
    big = '[2, "abc-1", "DataTransfer", {"data": "' + "x" * 100 + '"}]'
    assert answer_of(ocpp_j.too_large(big, 50, "ocpp1.6"))[1:3] == ["abc-1", "FormationViolation"]
    assert answer_of(ocpp_j.too_large(big, 50, "ocpp2.0.1"))[1:3] == ["abc-1", "FormatViolation"]
    assert answer_of(ocpp_j.too_large("x" * 100, 50, "ocpp2.1"))[1] == "-1"


def test_built_frames_are_compact_json() -> None:
    assert ocpp_j.call_result("1", {"status": "Accepted"}) == '[3,"1",{"status":"Accepted"}]'
    assert ocpp_j.call_error("1", "NotImplemented", "x") == '[4,"1","NotImplemented","x",{}]'
    assert ocpp_j.call("1", "Reset", {"type": "Hard"}) == '[2,"1","Reset",{"type":"Hard"}]'


def test_answers_to_our_calls_are_read_leniently() -> None:
    # seen from a real simulator: CALLERROR details as a JSON string
    error = ocpp_j.parse('[4,"p26","TypeConstraintViolation","invalid","[{\\"path\\":1}]"]', "ocpp2.0.1")
    assert isinstance(error, CallError)
    assert error.code == "TypeConstraintViolation"
    assert error.details == {"value": '[{"path":1}]'}
    short = ocpp_j.parse('[4,"p27","GenericError"]', "ocpp1.6")
    assert isinstance(short, CallError)
    assert short.description == ""
    assert ocpp_j.parse('[3,"p28",null]', "ocpp1.6") == CallResult(unique_id="p28", payload=None)
