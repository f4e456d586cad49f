"""``regionctl aws check`` and ``aws policy`` against the simulated AWS: findings with reasons, a failure of one
part never hiding the others, and a policy that grants every call the runbooks were seen to make."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regionctl.cli import aws as aws_cli
from regionctl.cli.main import app
from regionctl.errors import ConflictError
from regionctl.providers.aws.check import ReadinessCheck
from regionctl.providers.aws.policy import policy_document
from tests.support.aws_world import ARC_ENDPOINTS, ArcRule, AwsWorld
from tests.unit.aws.test_runbooks_on_aws import harness

EAST, WEST = "us-east-1", "us-west-2"
DOCS = Path(__file__).resolve().parents[3] / "docs" / "aws.md"
NEEDS_NO_PERMISSION = {"sts:GetCallerIdentity"}


def rule_world() -> AwsWorld:
    return AwsWorld(arc_rules=[ArcRule("min-one-on", f"arn:aws:route53-recovery-control::123456789012:controlpanel/"
                                       f"0123456789abcdef0123456789abcdef/safetyrule/{'b' * 32}", lambda _: True)])


def failing(findings: list[object]) -> dict[str, str]:
    return {f.what: f.reason for f in findings if not f.ok}  # type: ignore[attr-defined]


def test_a_deployment_as_named_passes_every_check(tmp_path: Path) -> None:
    world = rule_world()
    findings = ReadinessCheck(world.settings(tmp_path), world.factory).run()
    assert failing(findings) == {}
    whats = {f.what for f in findings}
    assert {"routing control us-east-1", "ARC safety rule min-one-on", "global database orders member us-west-2",
            "health check 00000000-0000-0000-0000-000000000001 (us-east-1)", "ECS service ui (us-west-2)"} <= whats
    assert any(w.startswith("IAM: ") for w in whats)


def test_each_problem_is_its_own_finding_with_its_reason(tmp_path: Path) -> None:
    world = rule_world()
    world.global_clusters["catalog-global-db-cluster"].members.pop()  # the west cluster left the global cluster
    world.ecs_running[WEST] = 1
    world.denied_actions.add("rds:FailoverGlobalCluster")
    problems = failing(ReadinessCheck(world.settings(tmp_path), world.factory).run())
    assert problems["global database catalog member us-west-2"] == \
        "catalog-dbcluster-02 is not a member of catalog-global-db-cluster"
    assert problems["ECS service ui (us-west-2)"] == "1 of 2 tasks running"
    assert "denied rds:FailoverGlobalCluster" in problems[
        "IAM: read the Aurora global databases; switch over or fail over to a member"]
    assert len(problems) == 4  # orders is fine; the two ECS services of the west each count


def test_arc_answering_nowhere_fails_its_findings_and_the_rest_are_still_read(tmp_path: Path) -> None:
    world = rule_world()
    world.down_endpoints.update(ARC_ENDPOINTS.values())
    findings = ReadinessCheck(world.settings(tmp_path), world.factory).run()
    problems = failing(findings)
    assert list(problems) == ["ARC routing controls"] and "no ARC cluster endpoint answered" in problems[
        "ARC routing controls"]
    assert any(f.what == "global database orders writer" and f.ok for f in findings)


def test_the_policy_grants_every_call_the_runbooks_made_and_the_check_made(tmp_path: Path) -> None:
    world = rule_world()
    h = harness(tmp_path / "run", world)
    assert h.run("RegionFailover", {"region": EAST}).status == "succeeded"
    assert h.run("Failback", {"region": EAST}).status == "succeeded"
    settings = world.settings(tmp_path)
    ReadinessCheck(settings, world.factory).run()
    prefixes = {"rds": "rds", "cloudwatch": "cloudwatch", "route53": "route53", "ecs": "ecs", "sts": "sts",
                "iam": "iam", "route53-recovery-cluster": "route53-recovery-cluster",
                "route53-recovery-control-config": "route53-recovery-control-config"}
    called = {f"{prefixes[service]}:{operation}" for service, _, operation, _ in world.calls}
    assert settings.aws is not None
    granted = {a for s in policy_document(settings.aws)["Statement"] for a in s["Action"]}
    assert called - granted - NEEDS_NO_PERMISSION == {"iam:SimulatePrincipalPolicy"}  # the check's own, optional
    assert "rds:FailoverGlobalCluster" in called and "rds:DeleteDBCluster" in called


def test_the_docs_show_the_policy_the_code_builds(tmp_path: Path) -> None:
    text = DOCS.read_text()
    block = re.search(r"## The IAM policy.*?```json\n(.*?)```", text, re.S)
    assert block is not None, "docs/aws.md lost its policy example"
    settings = AwsWorld().settings(tmp_path)
    assert settings.aws is not None
    assert json.loads(block.group(1)) == policy_document(settings.aws)


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AwsWorld:
    world = AwsWorld()
    settings = world.settings(tmp_path)
    assert settings.aws is not None
    monkeypatch.setenv("REGIONCTL_PROVIDER", "aws")
    monkeypatch.setenv("REGIONCTL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REGIONCTL_AWS", settings.aws.model_dump_json())
    monkeypatch.setattr(aws_cli, "client_factory", lambda _: world.factory)
    return world


def test_the_check_command_prints_findings_as_json_and_fails_on_a_problem(cli_env: AwsWorld) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["aws", "check", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    assert all(f["ok"] for f in json.loads(ok.stdout))
    cli_env.health[EAST] = False
    bad = runner.invoke(app, ["aws", "check"])  # main() prints the error and exits with its code (3)
    assert isinstance(bad.exception, ConflictError) and "FAIL" in bad.output
    assert "health check 00000000-0000-0000-0000-000000000001 (us-east-1)" in str(bad.exception)


def test_the_policy_command_prints_the_document(cli_env: AwsWorld) -> None:
    out = CliRunner().invoke(app, ["aws", "policy"])
    assert out.exit_code == 0 and json.loads(out.stdout)["Version"] == "2012-10-17"


def test_the_docs_settings_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from regionctl.config import load_settings

    example = re.search(r"## Settings.*?```toml\n(.*?)```", DOCS.read_text(), re.S)
    assert example is not None
    (tmp_path / "regionctl.toml").write_text(example.group(1))
    monkeypatch.setenv("REGIONCTL_CONFIG", str(tmp_path / "regionctl.toml"))
    settings = load_settings(data_dir=tmp_path)
    assert settings.provider == "aws" and settings.aws is not None
    assert set(settings.aws.databases) == {"orders", "catalog"} and settings.aws.safety_rules
