"""``regionctl up``, ``down``, ``status``: the whole deployment."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
