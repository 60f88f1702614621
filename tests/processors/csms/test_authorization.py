"""Whether an idTag / idToken may charge: a pure function of the token store's record and the clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from evbus.settings import Policy
from processors.csms.authorization import id_tag_info, id_token_info, status_of
from schemas import payloads
from schemas.ocpp_j import Protocol
from schemas.records import TokenRecord

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
PAST = "2026-11-21T09:59:59Z"
FUTURE = "2026-11-21T10:00:01Z"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (TokenRecord(id_tag="T"), "Accepted"),
        (TokenRecord(id_tag="T", status="Blocked"), "Blocked"),
        (TokenRecord(id_tag="T", status="Expired"), "Expired"),
        (TokenRecord(id_tag="T", status="Invalid"), "Invalid"),
        (TokenRecord(id_tag="T", expiry_date=PAST), "Expired"),
        (TokenRecord(id_tag="T", expiry_date=NOW.isoformat()), "Expired"),  # valid until, not through, expiry
        (TokenRecord(id_tag="T", expiry_date=FUTURE), "Accepted"),
        (TokenRecord(id_tag="T", expiry_date="2026-11-21T09:59:59"), "Expired"),  # no offset: taken as UTC
        (TokenRecord(id_tag="T", expiry_date="next tuesday"), "Expired"),  # unreadable: no licence to charge
        (TokenRecord(id_tag="T", status="Blocked", expiry_date=FUTURE), "Blocked"),
        (TokenRecord(id_tag="T", status="Blocked", expiry_date=PAST), "Blocked"),
    ],
    ids=[
        "accepted",
        "blocked",
        "expired-status",
        "invalid-status",
        "past-expiry",
        "expiry-now",
        "future-expiry",
        "past-expiry-no-offset",
        "unreadable-expiry",
        "blocked-future-expiry",
        "blocked-past-expiry",
    ],
)
@pytest.mark.parametrize("policy", ["accept", "reject"])
def test_status_of_a_known_token(record: TokenRecord, expected: str, policy: Policy) -> None:
    assert status_of(record, NOW, policy) == expected
    assert id_tag_info(record, NOW, policy)["status"] == expected
    assert id_token_info(record, NOW, policy)["status"] == expected


@pytest.mark.parametrize(
    ("policy", "v16", "v2"),
    [("reject", "Invalid", "Unknown"), ("accept", "Accepted", "Accepted")],
)
def test_unknown_token_follows_the_policy(policy: Policy, v16: str, v2: str) -> None:
    assert id_tag_info(None, NOW, policy) == {"status": v16}
    assert id_token_info(None, NOW, policy) == {"status": v2}


def test_expiry_and_parent_are_passed_on() -> None:
    record = TokenRecord(id_tag="CHILD", expiry_date=FUTURE, parent_id_tag="FLEET")

    assert id_tag_info(record, NOW, "reject") == {"status": "Accepted", "expiryDate": FUTURE, "parentIdTag": "FLEET"}
    assert id_token_info(record, NOW, "reject") == {
        "status": "Accepted",
        "cacheExpiryDateTime": FUTURE,
        "groupIdToken": {"idToken": "FLEET", "type": "Central"},
    }


def test_a_bare_record_adds_nothing() -> None:
    record = TokenRecord(id_tag="T")

    assert id_tag_info(record, NOW, "reject") == {"status": "Accepted"}
    assert id_token_info(record, NOW, "reject") == {"status": "Accepted"}


RECORDS = [
    None,
    TokenRecord(id_tag="T", status="Blocked"),
    TokenRecord(id_tag="T", expiry_date=PAST, parent_id_tag="FLEET"),
    TokenRecord(id_tag="T", expiry_date=FUTURE, parent_id_tag="FLEET"),
]


@pytest.mark.parametrize("record", RECORDS)
@pytest.mark.parametrize("policy", ["accept", "reject"])
def test_id_tag_info_is_a_valid_16_authorize_answer(record: TokenRecord | None, policy: Policy) -> None:
    answer = {"idTagInfo": id_tag_info(record, NOW, policy)}
    assert payloads.validate("ocpp1.6", "Authorize", answer, "response") is None


@pytest.mark.parametrize("protocol", ["ocpp2.0.1", "ocpp2.1"])
@pytest.mark.parametrize("record", RECORDS)
@pytest.mark.parametrize("policy", ["accept", "reject"])
def test_id_token_info_is_a_valid_2x_authorize_answer(
    protocol: Protocol, record: TokenRecord | None, policy: Policy
) -> None:
    answer = {"idTokenInfo": id_token_info(record, NOW, policy)}
    assert payloads.validate(protocol, "Authorize", answer, "response") is None


@pytest.mark.parametrize("expiry", ["2026-11-21T09:59:59", "next tuesday"])
def test_expiry_sent_to_the_station_is_an_rfc3339_date_time(expiry: str) -> None:
    record = TokenRecord(id_tag="T", expiry_date=expiry)
    sent = [
        id_tag_info(record, NOW, "reject").get("expiryDate"),
        id_token_info(record, NOW, "reject").get("cacheExpiryDateTime"),
    ]

    for value in sent:
        assert value is None or RFC3339.fullmatch(value), value


@pytest.mark.parametrize("token_type", ["NoAuthorization"])
@pytest.mark.parametrize("policy", ["accept", "reject"])
def test_no_authorization_tokens_are_always_accepted(token_type: str, policy: Policy) -> None:
    assert id_token_info(None, NOW, policy, token_type) == {"status": "Accepted"}
