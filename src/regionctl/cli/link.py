"""``regionctl link``: the emulated network between regions."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
