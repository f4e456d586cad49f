"""A service whose database is down when it starts waits, unready but alive, and becomes ready by itself when
the database appears (no restart): the order `up` starts things in, or a writer still recovering, never matters."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from regionctl.runtime.process import python_module
from tests.integration.shop.pg import TEST_SETTINGS, destroy, dsn, free_port, new_instance, scratch_dir
from tests.support.poll import eventually

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def ready(url: str) -> None:
    try:
        response = httpx.get(url, timeout=3)
    except httpx.HTTPError as exc:
        raise AssertionError(str(exc)) from None
    assert response.status_code == 200, response.text


def test_a_service_whose_writer_is_down_at_start_becomes_ready_by_itself() -> None:
    root = scratch_dir("regionctl-shop-late-")
    late = new_instance(root, "late")
    late.initdb()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "REGION": "us-west-2", "HOST": "127.0.0.1", "PORT": str(port), "PYTHONPATH": str(REPO),
           "CATALOG_WRITER_DSN": dsn(late, "postgres"), "CATALOG_READER_DSN": dsn(late, "postgres")}
    with open(root / "logs" / "catalog.log", "ab") as log:
        proc = subprocess.Popen(python_module("regionctl.shop", "catalog"), env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        eventually(lambda: ready(url + "/livez"), 30)
        unready = httpx.get(url + "/health").json()
        assert unready["status"] == "DOWN" and "catalog-db" in unready["reason"]
        time.sleep(1)
        late.start(TEST_SETTINGS)
        eventually(lambda: ready(url + "/health"), 30)
        assert len(httpx.get(url + "/catalogue").json()) == 6
        assert proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        destroy([late], root)
