"""The load generator's pieces that need no shop: percentiles, the ack log, the default endpoint, bad input."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from regionctl.config import Paths, load_settings
from regionctl.errors import InputError, NotFoundError
from regionctl.runtime.ports import PortRegistry
from regionctl.shop.loadgen import Ack, latency_summary, percentile, purchase, read_acks, run_load
from tests.offloop import off_loop


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile([], 0.5)) == (50.0, 99.0, 0.0)
    assert latency_summary([3.0, 1.0, 2.0]) == {"p50": 2.0, "p90": 3.0, "p99": 3.0, "max": 3.0}


def test_the_ack_log_survives_a_torn_last_line(tmp_path: Path) -> None:
    log = tmp_path / "acks.jsonl"
    ack = Ack("id-1", "2026-01-01T00:00:00.000Z", 1.0, "http://x", "us-east-1", 12.5, 1)
    log.write_text(ack.line() + "\n" + '{"order_id": "id-2", "ack')
    assert read_acks(log) == [ack]
    assert read_acks(tmp_path / "missing.jsonl") == []


def test_bad_rates_and_endpoints_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="rate"):
        off_loop(lambda: asyncio.run(run_load("http://127.0.0.1:1", 0, 1, tmp_path / "a")))
    with pytest.raises(InputError, match="endpoint"):
        off_loop(lambda: asyncio.run(run_load("127.0.0.1:1", 1, 1, tmp_path / "a")))


def test_an_unreachable_ui_means_no_acks_and_errors_by_step(tmp_path: Path) -> None:
    report = off_loop(lambda: asyncio.run(run_load("http://127.0.0.1:9", 4, 0.5, tmp_path / "acks.jsonl", timeout_s=1)))
    assert report.acknowledged == 0 and report.failed == report.attempted == 2
    assert report.errors == {"add to cart: ConnectError": 2}


def test_the_default_endpoint_is_the_registered_ui_and_never_a_new_port(tmp_path: Path) -> None:
    from regionctl.cli.load import default_endpoint

    settings = load_settings(data_dir=tmp_path)
    with pytest.raises(NotFoundError, match="us-east-1"):
        default_endpoint(settings, None)
    PortRegistry(Paths(settings.root).state / "ports.json", settings.base_port).get("us-west-2/ui", "127.0.2.1")
    assert default_endpoint(settings, "us-west-2").startswith("http://127.0.2.1:")


class RoundRobinEntry:
    """Like the global entry: a request without the region cookie goes to the next region and gets the cookie."""

    def __init__(self) -> None:
        self.turn = itertools.count()
        self.seen: dict[str, list[str]] = defaultdict(list)  # session -> regions that served it, in order

    def __call__(self, request: httpx.Request) -> httpx.Response:
        cookies = dict(part.strip().split("=", 1) for part in request.headers.get("cookie", "").split(";") if part)
        region = cookies.get("regionctl-region") or ("us-east-1", "us-west-2")[next(self.turn) % 2]
        self.seen[cookies["SESSIONID"]].append(region)
        headers = {"X-Region": region}
        if "regionctl-region" not in cookies:
            headers["Set-Cookie"] = f"regionctl-region={region}; Path=/; Max-Age=3600"
        if request.url.path == "/cart":
            return httpx.Response(303, headers={**headers, "Location": "/cart"})
        body = f'<span id="order-id">{uuid.uuid4()}</span>' if request.url.path == "/checkout/confirm" else ""
        return httpx.Response(200, headers=headers, text=body)


def test_each_visitor_keeps_the_region_the_global_entry_gave_it(tmp_path: Path) -> None:
    entry = RoundRobinEntry()

    async def two_visitors() -> list[tuple[str, str, int]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(entry), base_url="http://entry") as client:
            return list(await asyncio.gather(*(purchase(client, "p1", f"v{i}@example.com") for i in range(2))))

    bought = off_loop(lambda: asyncio.run(two_visitors()))
    assert len(entry.seen) == 2  # a session of its own each
    assert all(len(steps) == 6 and len(set(steps)) == 1 for steps in entry.seen.values()), dict(entry.seen)
    assert {region for _, region, _ in bought} == {"us-east-1", "us-west-2"}
