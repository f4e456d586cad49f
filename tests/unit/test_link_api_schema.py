"""Schemathesis against the link emulator's control API, in process: no server error, every answer one the
schema documents (the error contract's body included). Half the cases carry an operator's token, half none.
Adding routes is left out: a fuzzed route would listen on whatever address the fuzzer picks."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from regionctl.operators.store import OperatorStore
from regionctl.runtime.link_api import create_app
from regionctl.runtime.link_engine import LinkEngine

TOKEN = "schemathesis-link-token-0123456789abcdef"
engine = LinkEngine(Path(tempfile.mkdtemp(prefix="link-schema-")), ("us-east-1", "us-west-2"), latency_ms=1.0,
                    jitter_ms=0.0)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(engine, OperatorStore(None, TOKEN))).exclude(
    path="/routes", method="POST")
_auth = itertools.cycle([True, False])


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_link_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"} if next(_auth) else {}
    case.call_and_validate(
        headers=headers,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
