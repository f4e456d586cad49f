"""``regionctl aws``: the AWS provider's read-only readiness check and the IAM policy its runbooks need."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from regionctl.cli import context
from regionctl.cli.render import FormatOption, check_format, emit
from regionctl.config import AwsSettings, Settings
from regionctl.errors import ConfigError, ConflictError
from regionctl.providers.aws.clients import ClientFactory, boto3_factory

aws_app = typer.Typer(no_args_is_help=True, help="The AWS provider (provider = \"aws\"): check and policy.")


def _aws_settings() -> tuple[Settings, AwsSettings]:
    settings = context.settings()
    if settings.aws is None:
        raise ConfigError("no [aws] settings: name the reference deployment's resources first (docs/aws.md)")
    return settings, settings.aws


def client_factory(aws: AwsSettings) -> ClientFactory:
    """boto3's standard credential chain (a seam for the CLI's tests)."""
    return boto3_factory(aws.call_timeout_s)


def findings_table(findings: list[dict[str, Any]]) -> Table:
    table = Table("", "what", "reason", box=None, pad_edge=False)
    for f in findings:
        table.add_row("[green]ok[/green]" if f["ok"] else "[red]FAIL[/red]", f["what"], f["reason"])
    return table


@aws_app.command("check")
def check(fmt: str = FormatOption) -> None:
    """Read (never change) everything the [aws] settings name: routing controls and safety rules, global
    clusters and their members, endpoint health checks and ECS services, and the IAM actions the runbooks need.
    Exits non-zero when any finding fails."""
    from regionctl.providers.aws.check import ReadinessCheck

    check_format(fmt)
    settings, aws = _aws_settings()
    findings = [{"what": f.what, "ok": f.ok, "reason": f.reason}
                for f in ReadinessCheck(settings, client_factory(aws)).run()]
    emit(findings, fmt, table=findings_table)
    failed = [str(f["what"]) for f in findings if not f["ok"]]
    if failed:
        raise ConflictError(f"{len(failed)} of {len(findings)} checks failed: {', '.join(failed)}")


@aws_app.command("policy")
def policy() -> None:
    """The IAM policy (JSON) the runbooks need, scoped to the resources the settings name."""
    from regionctl.providers.aws.policy import policy_document

    _, aws = _aws_settings()
    emit(policy_document(aws), "json")


def register(app: typer.Typer) -> None:
    app.add_typer(aws_app, name="aws")
