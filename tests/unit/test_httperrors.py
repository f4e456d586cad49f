"""The one error contract: every kind of error answers with its status and the ``{code, message, field?}`` body,
and the client function raises the same kind again (one table either side, so they cannot drift)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from regionctl.errors import (
    ConflictError,
    DatabaseError,
    Forbidden,
    InputError,
    NotFoundError,
    OperationTimeout,
    RegionctlError,
    RetryLater,
    Unauthorized,
    Unreachable,
)
from regionctl.runtime import httperrors
from regionctl.runtime.httperrors import raise_for_error
from regionctl.shop.kit.http import ServiceCallError

ROUND_TRIP = [
    (InputError("speed: too fast", "speed"), 400, InputError),
    (Unauthorized("who are you"), 401, Unauthorized),
    (Forbidden("viewers read"), 403, Forbidden),
    (NotFoundError("no such report"), 404, NotFoundError),
    (ConflictError("already the writer"), 409, ConflictError),
    (RetryLater("wait period running", 2.5), 409, RetryLater),
    (OperationTimeout("no promotion in 30 s"), 504, OperationTimeout),
    (DatabaseError("connection refused"), 503, RegionctlError),
    (Unreachable("agent of us-west-2"), 503, RegionctlError),
    (ServiceCallError("orders", "refused", 409), 502, RegionctlError),
    (ServiceCallError("orders", "down"), 503, RegionctlError),
]


class Body(BaseModel):
    speed: int = Field(ge=0)


def _app(exc: BaseException) -> FastAPI:
    app = FastAPI()
    httperrors.install(app)

    @app.post("/fail")
    def fail(body: Body) -> None:
        raise exc

    return app


@pytest.mark.parametrize(("exc", "status", "kind"), ROUND_TRIP, ids=lambda v: type(v).__name__)
def test_an_error_answers_with_its_status_and_comes_back_as_its_kind(exc: RegionctlError, status: int,
                                                                     kind: type[RegionctlError]) -> None:
    answer = TestClient(_app(exc)).post("/fail", json={"speed": 1})
    assert answer.status_code == status
    body = answer.json()
    assert body["code"] == status and body["message"] == str(exc)
    assert body.get("field") == exc.field
    with pytest.raises(kind) as raised:
        raise_for_error(httpx.Response(answer.status_code, json=body), "engine: ")
    assert str(raised.value) == f"engine: {exc}"
    assert raised.value.field == exc.field
    if isinstance(exc, RetryLater):
        assert isinstance(raised.value, RetryLater) and raised.value.retry_after_s == 2.5
        assert answer.headers["retry-after"] == "3"
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"


def test_a_request_the_schema_refuses_is_400_naming_every_field() -> None:
    client = TestClient(_app(ValueError("never reached")))
    answer = client.post("/fail", json={"speed": -1, "extra": 1})
    assert answer.status_code == 400
    assert answer.json() == {"code": 400, "field": "speed",
                             "message": "speed: Input should be greater than or equal to 0"}
    not_json = client.post("/fail", content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["code"] == 400


def test_an_unexpected_error_is_500_without_its_text() -> None:
    answer = TestClient(_app(ValueError("secret internals")), raise_server_exceptions=False).post(
        "/fail", json={"speed": 1})
    assert answer.status_code == 500 and answer.json() == {"code": 500, "message": "internal error"}


def test_the_openapi_schema_documents_400_where_fastapi_says_422() -> None:
    schema = _app(ValueError()).openapi()
    responses = schema["paths"]["/fail"]["post"]["responses"]
    assert "422" not in responses and "400" in responses
    assert set(schema["components"]["schemas"]["ErrorBody"]["properties"]) == {"code", "message", "field"}


def test_a_success_raises_nothing() -> None:
    raise_for_error(httpx.Response(204))
