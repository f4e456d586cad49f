"""``regionctl routing``: routing controls, safety rules and their audit log (through the control API)."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.console import Group
from rich.table import Table

from regionctl.cli import context
from regionctl.cli.render import FormatOption, emit, err_console, rows_table
from regionctl.errors import ExternalError, InputError, RetryLater
from regionctl.operators.caller import caller_token
from regionctl.routing.client import ControlClient, entry_status
from regionctl.routing.model import parse_state

routing_app = typer.Typer(no_args_is_help=True, help="Routing controls, safety rules and the audit log.")
rules_app = typer.Typer(help="List (default), put or delete safety rules.", invoke_without_command=True)
routing_app.add_typer(rules_app, name="rules")

WAIT_MARGIN_S = 0.1  # retry just after the wait period ends
ActorOption = typer.Option(None, "--actor", help="on whose behalf (a ticket, say): recorded after your operator "
                           "name, which comes from your token ($REGIONCTL_TOKEN[_FILE])")
ReasonOption = typer.Option("", "--reason", help="why, for the audit log")


def register(app: typer.Typer) -> None:
    app.add_typer(routing_app, name="routing")


def _client() -> ControlClient:
    """As the caller: the control API records the token's operator as the actor of a change."""
    settings = context.settings()
    return ControlClient.from_settings(settings, caller_token(settings))


def parse_assignments(pairs: list[str]) -> dict[str, bool]:
    """``us-east-1=off us-west-2=on`` -> {name: On?}; names the first malformed pair."""
    if not pairs:
        raise InputError("name at least one control, e.g. us-east-1=off")
    result: dict[str, bool] = {}
    for pair in pairs:
        name, sep, state = pair.partition("=")
        if not sep or not name:
            raise InputError(f"{pair!r} is not CONTROL=on|off")
        if name in result:
            raise InputError(f"control {name!r} is named twice")
        result[name] = parse_state(state)
    return result


def _status_table(status: dict[str, Any]) -> Group:
    regions = rows_table([
        {"region": r["region"], "control": r["control"] or "unknown", "health": r["health"]["detail"],
         "routable": "yes" if r["routable"] else "NO", "reason": r["reason"]} for r in status["regions"]
    ], title=status["routing"])
    regions.caption = status.get("note")  # set when the control API is down and the entry's view is shown
    controls = rows_table([{"control": c["name"], "state": c["state"]} for c in status["controls"]])
    return Group(regions, controls, _rules_table(status["rules"]))


def _rules_table(rules: list[dict[str, Any]]) -> Table:
    return rows_table([
        {"rule": r["name"], "kind": r["kind"], "rule says": r["description"], "wait": f"{r['wait_period_s']:g} s",
         "now": r["status"]} for r in rules
    ], title="safety rules")


def _change_table(result: dict[str, Any]) -> Table:
    return rows_table([{"rule": v["rule"], "verdict": v["outcome"], "reason": v["reason"]}
                       for v in result["verdicts"]], title=f"{result['outcome']}: {result['reason']}")


@routing_app.command("status")
def status(fmt: str = FormatOption) -> None:
    """Which regions receive traffic and why: controls, health checks, rules. While the control API is down, what
    the global entry routes by (its last known state)."""
    try:
        result: dict[str, Any] | None = _client().status()
    except ExternalError as exc:
        result = entry_status(context.settings(), str(exc))
        if result is None:
            raise
    emit(result, fmt, table=_status_table)


@routing_app.command("set")
def set_controls(
    assignments: list[str] = typer.Argument(..., help="CONTROL=on|off, e.g. us-east-1=off"),  # noqa: B008
    actor: str | None = ActorOption,
    reason: str = ReasonOption,
    wait: bool = typer.Option(False, "--wait", help="when only a rule's wait period refuses it, wait and retry"),
    fmt: str = FormatOption,
) -> None:
    """Set routing controls in one transaction, checked against every safety rule."""
    controls = parse_assignments(assignments)
    while True:
        try:
            result = _client().change(controls, actor=actor, reason=reason)
            break
        except RetryLater as exc:
            if not wait:
                raise RetryLater(f"{exc} (or add --wait to wait it out)", exc.retry_after_s) from None
            err_console.print(f"waiting {exc.retry_after_s:.1f} s for a wait period to end")
            time.sleep(exc.retry_after_s + WAIT_MARGIN_S)
    emit(result, fmt, table=_change_table)


@routing_app.command("override")
def override(
    assignments: list[str] = typer.Argument(..., help="CONTROL=on|off"),  # noqa: B008
    rule: list[str] = typer.Option(..., "--rule", help="a safety rule to bypass for this change (repeatable)"),  # noqa: B008
    yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
    actor: str | None = ActorOption,
    reason: str = ReasonOption,
    fmt: str = FormatOption,
) -> None:
    """Set routing controls bypassing the named safety rules (audited as an override)."""
    controls = parse_assignments(assignments)
    if not yes and not typer.confirm(f"Bypass {', '.join(rule)} to set {', '.join(assignments)}?"):
        raise typer.Abort()
    emit(_client().change(controls, override=rule, actor=actor, reason=reason), fmt, table=_change_table)


@rules_app.callback()
def rules(ctx: typer.Context, fmt: str = FormatOption) -> None:
    """List the safety rules and how each reads the panel now."""
    if ctx.invoked_subcommand is None:
        emit(_client().rules(), fmt, table=_rules_table)


@rules_app.command("put")
def put_rule(
    name: str,
    kind: str = typer.Option(..., "--kind", help="assertion or gating"),
    controls: str = typer.Option(..., "--controls", help="asserted (or gating) controls, comma-separated"),
    targets: str = typer.Option("", "--targets", help="gating rules: the controls it guards, comma-separated"),
    rule_type: str = typer.Option("ATLEAST", "--type", help="ATLEAST, AND or OR"),
    threshold: int = typer.Option(1, "--threshold", help="ATLEAST n"),
    inverted: bool = typer.Option(False, "--inverted"),
    wait: float = typer.Option(5.0, "--wait", help="wait period in seconds"),
    actor: str | None = ActorOption,
    fmt: str = FormatOption,
) -> None:
    """Create or replace a safety rule."""
    body = {"kind": kind, "controls": [c for c in controls.split(",") if c],
            "targets": [t for t in targets.split(",") if t], "type": rule_type.upper(), "threshold": threshold,
            "inverted": inverted, "wait_period_s": wait, "actor": actor}
    emit(_client().put_rule(name, body), fmt)


@rules_app.command("delete")
def delete_rule(
    name: str,
    yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
    actor: str | None = ActorOption,
    fmt: str = FormatOption,
) -> None:
    """Delete a safety rule."""
    if not yes and not typer.confirm(f"Delete safety rule {name}?"):
        raise typer.Abort()
    emit(_client().delete_rule(name, actor=actor), fmt)


@routing_app.command("audit")
def audit(
    limit: int = typer.Option(20, "--limit", min=1, max=1000),
    before: int | None = typer.Option(None, "--before", help="entries older than this id"),
    fmt: str = FormatOption,
) -> None:
    """Every change and refusal: who, what, before, after, each rule's verdict."""
    entries = _client().audit(limit=limit, before_id=before)
    emit(entries, fmt, table=lambda rows: rows_table([
        {"id": e["id"], "time": e["time"], "actor": e["actor"], "action": e["action"], "outcome": e["outcome"],
         "summary": e["summary"]} for e in rows]))
