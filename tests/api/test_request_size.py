"""Request bodies over ``EVBUS_API_MAX_BODY_BYTES`` get a JSON 413 before they are read; the
largest legitimate body, 10 000 tokens with every field at its longest, fits twice over."""

from __future__ import annotations

import msgspec
import pytest

from api.state import MAX_TOKENS
from evbus.settings import Settings
from tests.conftest import running

pytestmark = pytest.mark.nats


def longest_tokens(prefix: str) -> bytes:
    return msgspec.json.encode(
        [
            {
                "idTag": f"{prefix}{n:06d}".ljust(36, "X"),
                "status": "Accepted",
                "expiryDate": "2027-12-31T23:59:59.999999+00:00",
                "parentIdTag": "P" * 36,
            }
            for n in range(MAX_TOKENS)
        ]
    )


async def test_the_largest_token_upload_fits_and_a_larger_body_is_a_json_413(settings: Settings) -> None:
    body = longest_tokens("T")
    assert 2 * len(body) <= settings.api_max_body_bytes
    async with running(settings, gateway=False, processor=False, api=True) as stack, stack.http() as api:
        accepted = await api.put("/api/tokens", content=body, headers={"Content-Type": "application/json"})
        assert accepted.status_code == 200, accepted.text
        assert accepted.json() == {"upserted": MAX_TOKENS}

        too_large = b"[" + b" " * settings.api_max_body_bytes + b"]"
        for method, path in [("PUT", "/api/tokens"), ("POST", "/api/stations/CP-1/call")]:
            refused = await api.request(method, path, content=too_large, headers={"Content-Type": "application/json"})
            assert refused.status_code == 413, refused.text
            assert refused.headers["content-type"].startswith("application/json")
            assert refused.json()["error"]


async def test_the_limit_is_a_setting(settings: Settings) -> None:
    small = settings.with_(api_max_body_bytes=1000)
    async with running(small, gateway=False, processor=False, api=True) as stack, stack.http() as api:
        one = await api.put("/api/tokens", json={"idTag": "SMALL-1", "status": "Accepted"})
        assert one.status_code == 200, one.text
        tokens = [{"idTag": f"TAG-{n}", "status": "Accepted"} for n in range(50)]
        assert (await api.put("/api/tokens", json=tokens)).status_code == 413
