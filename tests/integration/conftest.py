from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.deploy import RunningDeployment, running_deployment


@pytest.fixture(scope="session")
def deployment() -> Iterator[RunningDeployment]:
    with running_deployment() as running:
        yield running
