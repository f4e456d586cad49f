"""The load generator behind ``regionctl load``: buys watches through a ui (or the global entry) the way a
browser does, at a fixed rate, and appends every acknowledged order to a JSON-lines ack log.

An order is acknowledged when the confirmation page shows its id. Drills compare the ack log with the orders
database after a failover (every acknowledged order must be on the new writer or in the missing-transaction
report); benchmarks read latencies from it. A lost confirmation is retried with the same session, which the
checkout service turns into the same order, never a second one.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from regionctl.errors import InputError
from regionctl.shop.catalog.seed import PRODUCTS

ORDER_ID = re.compile(r'id="order-id">([0-9a-f-]{36})<')
CUSTOMER = {"firstName": "Load", "lastName": "Generator", "address1": "1 Main St", "address2": "",
            "city": "Springfield", "state": "IL", "zip": "62701"}
CONFIRM_ATTEMPTS = 4
MAX_IN_FLIGHT = 256


class PurchaseError(Exception):
    """One purchase failed; ``kind`` groups failures in the report (the step and what went wrong)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass(frozen=True)
class Ack:
    order_id: str
    acked_at: str
    ts: float
    endpoint: str
    region: str
    latency_ms: float
    attempts: int

    def line(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))


@dataclass(frozen=True)
class LoadReport:
    endpoint: str
    rate: float
    duration_s: float
    attempted: int
    acknowledged: int
    failed: int
    errors: dict[str, int]
    purchases_per_s: float
    latency_ms: dict[str, float]
    regions: dict[str, int]
    ack_log: str


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


def latency_summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 0.50), 1), "p90": round(percentile(values, 0.90), 1),
            "p99": round(percentile(values, 0.99), 1), "max": round(max(values, default=0.0), 1)}


class Visitor:
    """One visitor's cookies, as a browser keeps them: the shop's session, plus whatever the responses set (the
    global entry's region cookie keeps every step of one purchase in the region that holds its cart)."""

    def __init__(self) -> None:
        self.cookies = {"SESSIONID": str(uuid.uuid4())}

    def headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items())}

    def remember(self, response: httpx.Response) -> None:
        self.cookies.update({name: response.cookies[name] for name in response.cookies})


async def _step(client: httpx.AsyncClient, visitor: Visitor, kind: str, method: str, path: str, expect: int,
                **kwargs: object) -> httpx.Response:
    try:
        response = await client.request(method, path, headers=visitor.headers(), **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        raise PurchaseError(f"{kind}: {type(exc).__name__}") from None
    visitor.remember(response)
    if response.status_code != expect:
        raise PurchaseError(f"{kind}: HTTP {response.status_code}")
    return response


async def purchase(client: httpx.AsyncClient, product_id: str, email: str) -> tuple[str, str, int]:
    """One visitor buying one watch: (order id, serving region, confirm attempts). Raises PurchaseError."""
    visitor = Visitor()
    await _step(client, visitor, "add to cart", "POST", "/cart", 303, data={"productId": product_id})
    await _step(client, visitor, "checkout", "GET", "/checkout", 200)
    await _step(client, visitor, "customer", "POST", "/checkout", 200, data={**CUSTOMER, "email": email})
    await _step(client, visitor, "delivery", "POST", "/checkout/delivery", 200, data={"token": "priority-mail"})
    await _step(client, visitor, "payment", "POST", "/checkout/payment", 200)
    last: PurchaseError | None = None
    for attempt in range(1, CONFIRM_ATTEMPTS + 1):
        try:
            response = await _step(client, visitor, "confirm", "POST", "/checkout/confirm", 200)
        except PurchaseError as exc:  # the order may exist already: asking again with this session is safe
            last = exc
            await asyncio.sleep(0.5 * attempt)
            continue
        found = ORDER_ID.search(response.text)
        if not found:
            raise PurchaseError("confirm: no order id on the page")
        return found.group(1), response.headers.get("X-Region", "?"), attempt
    raise last or PurchaseError("confirm")


@dataclass
class _Run:
    endpoint: str
    log: Path
    error_log: Path | None = None
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    regions: Counter[str] = field(default_factory=Counter)
    acked: int = 0
    in_flight: int = 0

    async def one(self, client: httpx.AsyncClient, product_id: str) -> None:
        started = time.monotonic()
        self.in_flight += 1
        try:
            order_id, region, attempts = await purchase(client, product_id, f"load-{uuid.uuid4().hex[:12]}@example.com")
        except PurchaseError as exc:
            self.errors[exc.kind] += 1
            if self.error_log is not None:  # when each failed purchase started, and why: a drill's timeline
                with open(self.error_log, "a") as handle:
                    handle.write(json.dumps({"started": round(time.time() - (time.monotonic() - started), 3),
                                             "ts": round(time.time(), 3), "kind": exc.kind}) + "\n")
            return
        finally:
            self.in_flight -= 1
        now = time.time()
        latency = (time.monotonic() - started) * 1000
        ack = Ack(order_id, datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"), round(now, 3), self.endpoint, region, round(latency, 1), attempts)
        with open(self.log, "a") as handle:  # one line per ack, written at once: a killed run keeps its acks
            handle.write(ack.line() + "\n")
        self.acked += 1
        self.latencies.append(latency)
        self.regions[region] += 1


async def run_load(endpoint: str, rate: float, duration_s: float, ack_log: Path, timeout_s: float = 30.0,
                   seed: int | None = None, error_log: Path | None = None) -> LoadReport:
    """Start ``rate`` purchases per second for ``duration_s`` seconds (open loop), wait for them, report; with
    ``error_log``, every failed purchase is logged there too (when it started, when it failed, why)."""
    if rate <= 0 or duration_s <= 0:
        raise InputError(f"--rate and --duration must be positive (got {rate} and {duration_s})")
    if not endpoint.startswith(("http://", "https://")):
        raise InputError(f"--endpoint {endpoint!r} is not an http(s) URL")
    ack_log.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    run = _Run(endpoint.rstrip("/"), ack_log, error_log)
    total = max(1, round(rate * duration_s))
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=run.endpoint, timeout=timeout_s, limits=limits) as client:
        started = time.monotonic()
        tasks = []
        for n in range(total):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if run.in_flight >= MAX_IN_FLIGHT:
                run.errors["skipped: too many purchases in flight"] += 1
                continue
            tasks.append(asyncio.create_task(run.one(client, rng.choice(PRODUCTS).id)))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
    failed = sum(run.errors.values())
    return LoadReport(run.endpoint, rate, duration_s, total, run.acked, failed, dict(run.errors),
                      round(run.acked / elapsed, 2) if elapsed > 0 else 0.0, latency_summary(run.latencies),
                      dict(run.regions), str(ack_log))


def read_acks(path: Path) -> list[Ack]:
    """The acknowledged orders in an ack log (torn last lines from a killed run are skipped)."""
    acks: list[Ack] = []
    if not path.exists():
        return acks
    for line in path.read_text().splitlines():
        try:
            acks.append(Ack(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return acks
