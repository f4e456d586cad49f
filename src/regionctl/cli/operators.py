"""``regionctl operators`` and ``regionctl audit``: who may call the control plane, and what they did.

The CLI acts as the caller whose token is in ``$REGIONCTL_TOKEN`` (or the file ``$REGIONCTL_TOKEN_FILE`` names),
else as the deployment's admin (its control token); managing operators needs the admin permission. A new or
rotated token is printed once and never stored.
"""

from __future__ import annotations

import time
from typing import Any

import typer

from regionctl.cli import context
from regionctl.cli.render import FormatOption, check_format, emit, err_console
from regionctl.errors import InputError
from regionctl.operators.caller import audit_log, cli_caller, operator_store
from regionctl.operators.roles import ADMIN, ROLES
from regionctl.operators.store import Operator, OperatorStore

operators_app = typer.Typer(no_args_is_help=True, help="Operators: a token and a role each (viewer, operator, "
                                                      "approver, admin).")


def register(app: typer.Typer) -> None:
    app.add_typer(operators_app, name="operators")
    app.command("audit")(audit)


def _as_admin(action: str) -> tuple[OperatorStore, Operator]:
    settings = context.settings()
    return operator_store(settings), cli_caller(settings, ADMIN, action, "operators")


def _record(who: Operator, action: str, name: str, params: dict[str, Any]) -> None:
    audit_log(context.settings()).append(who.name, who.role, action, f"operators/{name}", params, "ok", 200)


@operators_app.command("add")
def add(name: str, role: str = typer.Option(..., "--role", help=", ".join(ROLES)), fmt: str = FormatOption) -> None:
    """A new operator; its token is printed once (give it to them through a channel you trust)."""
    check_format(fmt)
    store, who = _as_admin("operators add")
    token = store.add(name, role)
    _record(who, "operators add", name, {"role": role})
    if fmt != "json":
        err_console.print("the token is shown once and not stored; keep it in a file only its owner reads and "
                          "point $REGIONCTL_TOKEN_FILE at it")
    emit({"name": name, "role": role, "token": token}, fmt)


@operators_app.command("rotate")
def rotate(name: str, fmt: str = FormatOption) -> None:
    """A new token for the operator; the old one stops working at once."""
    check_format(fmt)
    store, who = _as_admin("operators rotate")
    token = store.rotate(name)
    _record(who, "operators rotate", name, {})
    emit({"name": name, "token": token}, fmt)


@operators_app.command("revoke")
def revoke(name: str, fmt: str = FormatOption) -> None:
    """The operator's token stops working at once (the entry stays, for the audit log)."""
    check_format(fmt)
    store, who = _as_admin("operators revoke")
    store.revoke(name)
    _record(who, "operators revoke", name, {})
    emit({"name": name, "revoked": True}, fmt)


@operators_app.command("list")
def list_cmd(fmt: str = FormatOption) -> None:
    """Every operator, role and dates (never a token)."""
    check_format(fmt)
    store = operator_store(context.settings())
    rows = [{**row, **{k: _when(row.get(k)) for k in ("created_at", "rotated_at", "revoked_at")}}
            for row in store.list()] if fmt != "json" else store.list()
    emit(rows, fmt)


def audit(since: str = typer.Option(None, "--since", help="seconds ago (600) or epoch seconds"),
          operator: str = typer.Option(None, "--operator"), fmt: str = FormatOption) -> None:
    """Every mutating call on the control plane: who, with which role, what, the parameters (secrets removed),
    the answer, when."""
    check_format(fmt)
    after = None
    if since is not None:
        try:
            value = float(since)
        except ValueError:
            raise InputError(f"--since {since!r}: seconds ago, or epoch seconds") from None
        after = value if value > 1e9 else time.time() - value
    rows = audit_log(context.settings()).read(after, operator)
    emit(rows if fmt == "json" else [{**r, "at": _when(r["at"])} for r in rows], fmt)


def _when(at: float | None) -> str:
    return "" if at is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) + "Z"
