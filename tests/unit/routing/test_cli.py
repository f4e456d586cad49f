"""``regionctl routing`` against the control API in-process: commands return data, errors are one clear line."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from regionctl.cli import routing as routing_cli
from regionctl.cli.main import app
from regionctl.config import load_settings
from regionctl.errors import InputError
from regionctl.operators.store import OperatorStore
from regionctl.routing.api import create_app
from regionctl.routing.client import ControlClient
from regionctl.routing.model import AT_LEAST_ONE_REGION_RULE, default_spec
from regionctl.routing.service import ControlService
from regionctl.routing.store import MemoryControlStore
from regionctl.runtime.secrets import control_token

TOKEN = "cli-test-token-0123456789abcdef"
runner = CliRunner()


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    ticks = iter(range(0, 10_000_000, 100))  # every read of the clock is 100 s later: no wait period in the way
    service = ControlService(MemoryControlStore(default_spec(["us-east-1", "us-west-2"])),
                             clock=lambda: float(next(ticks)))
    with TestClient(create_app(service, OperatorStore(None, TOKEN), ["us-east-1", "us-west-2"])) as http:
        monkeypatch.setattr(routing_cli, "_client", lambda: ControlClient("http://testserver", TOKEN, http=http))
        yield http


def run(*args: str) -> tuple[int, str]:
    """Exit code and output; our own errors (printed as one line by ``main``) come back as code 99 + message."""
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return 99, str(result.exception)
    return result.exit_code, result.output


def test_set_then_status_as_json(api: TestClient) -> None:
    code, out = run("routing", "set", "us-east-1=off", "--reason", "drill", "--format", "json")
    assert code == 0, out
    assert json.loads(out)["after"]["us-east-1"] == "Off"
    code, out = run("routing", "status", "--format", "json")
    regions = {r["region"]: r for r in json.loads(out)["regions"]}
    assert regions["us-east-1"]["control"] == "Off"
    for command in (["status"], ["rules"], ["audit"]):
        code, out = run("routing", *command)
        assert code == 0 and out.strip(), command


def test_last_region_off_is_refused_naming_the_rule(api: TestClient) -> None:
    assert run("routing", "set", "us-east-1=off")[0] == 0
    code, message = run("routing", "set", "us-west-2=off")
    assert code == 99 and AT_LEAST_ONE_REGION_RULE in message
    code, out = run("routing", "override", "us-west-2=off", "--rule", AT_LEAST_ONE_REGION_RULE, "--yes",
                    "--format", "json")
    assert code == 0 and json.loads(out)["outcome"] == "applied"
    code, out = run("routing", "audit", "--format", "json", "--limit", "3")
    assert [e["outcome"] for e in json.loads(out)] == ["applied", "refused", "applied"]


def test_rules_list_put_delete(api: TestClient) -> None:
    code, out = run("routing", "rules", "--format", "json")
    assert code == 0 and {r["name"] for r in json.loads(out)} >= {AT_LEAST_ONE_REGION_RULE}
    code, _ = run("routing", "rules", "put", "both-on", "--kind", "assertion", "--controls", "us-east-1,us-west-2",
                  "--type", "and", "--wait", "0")
    assert code == 0
    code, message = run("routing", "set", "us-east-1=off")
    assert code == 99 and "both-on" in message
    assert run("routing", "rules", "delete", "both-on", "--yes")[0] == 0


@pytest.mark.parametrize(("pairs", "message"), [
    ([], "name at least one control"),
    (["us-east-1"], "is not CONTROL=on|off"),
    (["us-east-1=maybe"], "neither On nor Off"),
    (["us-east-1=on", "us-east-1=off"], "named twice"),
])
def test_bad_assignments_name_the_problem(pairs: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        routing_cli.parse_assignments(pairs)


def test_generated_token_is_private_and_stable(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    first = control_token(settings)
    path = tmp_path / "secrets" / "control-token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first) >= 32 and control_token(settings) == first
    configured = load_settings(data_dir=tmp_path, control_token="a-configured-token-0123456789")
    assert control_token(configured) == "a-configured-token-0123456789"


def test_set_inside_a_wait_period_says_how_long_and_can_wait_it_out(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    service = ControlService(MemoryControlStore(default_spec(["us-east-1", "us-west-2"])), clock=lambda: now[0])
    slept: list[float] = []

    test_thread, real_sleep = threading.get_ident(), time.sleep

    def sleep(seconds: float) -> None:  # time passes for the control API's clock, not for the test
        if threading.get_ident() != test_thread:  # time.sleep is patched for every thread: leave the others alone
            real_sleep(seconds)
            return
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(routing_cli.time, "sleep", sleep)
    with TestClient(create_app(service, OperatorStore(None, TOKEN), ["us-east-1", "us-west-2"])) as http:
        monkeypatch.setattr(routing_cli, "_client", lambda: ControlClient("http://testserver", TOKEN, http=http))
        assert run("routing", "set", "us-east-1=off")[0] == 0
        now[0] += 2
        code, out = run("routing", "set", "us-east-1=on")
        assert code == 99 and "3.0 s left" in out and "--wait" in out and slept == []
        code, out = run("routing", "set", "us-east-1=on", "--wait", "--format", "json")
        assert code == 0, out
        assert slept and 3.0 <= sum(slept) < 3.5 and "waiting 3.0 s for a wait period to end" in out
        assert json.loads(out[out.index("{"):])["after"]["us-east-1"] == "On"
