"""Suite-wide configuration: shared fixtures, and browser tests last.

The sync Playwright of the browser tests keeps an event loop in the main thread for the rest of the session,
after which a plain ``asyncio.run`` in another test fails; running them last keeps every other test independent
of that.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.deploy import RunningDeployment, running_deployment


@pytest.fixture(scope="session")
def deployment() -> Iterator[RunningDeployment]:
    """The one real deployment of the session (what `regionctl up` starts); tests that break it heal it. Its lag
    alert holds 5 s at 2 MB (the defaults, 15 s and 16 MiB, would make the alert test write and wait longer)."""
    with running_deployment(metrics={"lag_bytes_above": 2_000_000, "for_s": 5}) as running:
        yield running


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
