"""Schemathesis against the control API's own OpenAPI, in-process: no server error, responses as documented.

Half the cases carry the token (so the mutation paths run), the other half none (so 401 is exercised).
"""

from __future__ import annotations

import itertools

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from regionctl.operators.store import OperatorStore
from regionctl.routing.api import create_app
from regionctl.routing.model import default_spec
from regionctl.routing.service import ControlService
from regionctl.routing.store import MemoryControlStore

TOKEN = "schemathesis-token-0123456789abcdef"
_ticks = itertools.count()


def _clock() -> float:
    return 1_000_000.0 + 3.0 * next(_ticks)  # time moves on, so wait periods both block and expire


app = create_app(ControlService(MemoryControlStore(default_spec(["us-east-1", "us-west-2"])), clock=_clock),
                 OperatorStore(None, TOKEN),
                 ["us-east-1", "us-west-2"])
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
_auth = itertools.cycle([True, False])


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_control_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"} if next(_auth) else {}
    case.call_and_validate(
        headers=headers,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
