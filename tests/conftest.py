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
    """The one real deployment of the session (what `regionctl up` starts); tests that break it heal it."""
    with running_deployment() as running:
        yield running


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
