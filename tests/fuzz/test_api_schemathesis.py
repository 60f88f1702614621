"""Schemathesis against the API's own OpenAPI document (``/schema/openapi.json``), authenticated
with the admin token: every operation, inputs that fit the schema and inputs that do not; no
answer may be a 5xx.

The API runs in this test's event loop (``running(settings, api=True)``), so schemathesis's
synchronous client runs in a thread. Deterministic (``derandomize``), bounded per operation.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

from evbus.settings import Settings
from tests.api.test_sessions import session_16
from tests.conftest import API_TOKEN, running
from tests.fuzz.tally import TRIED

pytestmark = pytest.mark.nats

EXAMPLES_PER_OPERATION = 25  # per generation mode
REQUEST_TIMEOUT_S = 15.0


@dataclass
class Run:
    calls: int = 0
    operations: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)


def fuzz(base_url: str) -> Run:
    """Every operation in both generation modes; the 5xx answers, each with a curl line to repeat it."""
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json", headers=auth)
    session = requests.Session()
    session.headers.update(auth)
    run = Run()
    for result in schema.get_all_operations():
        operation = result.ok()
        run.operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: schemathesis.Case) -> None:
                if case.operation.path.endswith("/stream"):  # an accepted SSE stream never ends: the status tells
                    request = case.as_transport_kwargs(base_url=base_url)
                    with session.request(**request, stream=True, timeout=REQUEST_TIMEOUT_S) as answer:
                        run.calls += 1
                        run.statuses[answer.status_code] = run.statuses.get(answer.status_code, 0) + 1
                        if answer.status_code >= 500:
                            run.server_errors.append(f"{answer.status_code} {case.as_curl_command()}")
                    return
                response = case.call(base_url=base_url, session=session, timeout=REQUEST_TIMEOUT_S)
                run.calls += 1
                run.statuses[response.status_code] = run.statuses.get(response.status_code, 0) + 1
                try:
                    case.validate_response(response, checks=[not_a_server_error])
                except FailureGroup:
                    body = response.text[:300]
                    run.server_errors.append(f"{response.status_code} {case.as_curl_command()}\n    {body}")

            try:
                call()
            except Unsatisfiable:  # negative mode of an operation without inputs: nothing to break
                assert mode == GenerationMode.NEGATIVE, operation.label
    return run


async def test_no_api_call_is_answered_with_a_server_error(settings: Settings) -> None:
    async with running(settings, api=True) as stack:
        await session_16(stack, f"CP-{uuid.uuid4().hex[:10]}")  # something in every read model
        await stack.projected()
        run = await asyncio.to_thread(fuzz, stack.api_url)
    TRIED["API calls (schemathesis)"] += run.calls
    print(f"schemathesis: {run.calls} calls over {run.operations} operations, statuses {sorted(run.statuses.items())}")
    assert run.operations >= 30
    assert not run.server_errors, "\n".join(run.server_errors)
