"""botocore Stubber clients for scripted AWS conversations: each request is checked against the service model and
the parameters the script expects, each response against the model's output shape, and the order is enforced."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import botocore.session
from botocore.exceptions import ConnectTimeoutError
from botocore.stub import Stubber


class StubbedClients:
    """A client factory whose clients are Stubber-activated, one per (service, region, endpoint)."""

    def __init__(self) -> None:
        self._session = botocore.session.get_session()
        self.clients: dict[tuple[str, str, str | None], tuple[Any, Stubber]] = {}
        self.timed_out: list[str] = []  # endpoints called that never answered, in call order

    def stub(self, service: str, region: str, endpoint_url: str | None = None) -> Stubber:
        key = (service, region, endpoint_url)
        if key not in self.clients:
            client = self._session.create_client(service, region_name=region, endpoint_url=endpoint_url,
                                                 aws_access_key_id="testing", aws_secret_access_key="testing")
            stubber = Stubber(client)
            stubber.activate()
            self.clients[key] = (client, stubber)
        return self.clients[key][1]

    def timeout(self, service: str, region: str, endpoint_url: str) -> None:
        """The endpoint never answers (a connect timeout, as botocore raises it); an unactivated Stubber stands
        in its place so ``assert_done`` still covers it."""
        client = self._session.create_client(service, region_name=region, endpoint_url=endpoint_url,
                                             aws_access_key_id="testing", aws_secret_access_key="testing")

        def no_answer(**_: Any) -> None:
            self.timed_out.append(endpoint_url)
            raise ConnectTimeoutError(endpoint_url=endpoint_url)

        client.meta.events.register_first("before-call.*.*", no_answer)
        self.clients[(service, region, endpoint_url)] = (client, Stubber(client))

    def __call__(self, service: str, region: str, endpoint_url: str | None = None, attempts: int = 3) -> Any:
        del attempts
        self.stub(service, region, endpoint_url)
        return self.clients[(service, region, endpoint_url)][0]

    def assert_done(self) -> None:
        for _, stubber in self.clients.values():
            stubber.assert_no_pending_responses()


@contextmanager
def stubbed() -> Iterator[StubbedClients]:
    clients = StubbedClients()
    yield clients
    clients.assert_done()
