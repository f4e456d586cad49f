"""Stored drills: ids are checked before any path is built, and the page draws what the record holds."""

from __future__ import annotations

import pytest

from regionctl.drill.records import load, page
from regionctl.errors import InputError


def _record() -> dict[str, object]:
    return {"id": "drill-20261202-050000-abcd", "verdict": "FAIL", "reason": "1 lost <without> a trace",
            "region": "us-east-1", "to_region": "us-west-2", "figures": {"recovery_s": 3.2},
            "spec": {"fault": "partition", "runbook": "RegionFailover", "mode": "ungraceful", "failback": True},
            "check": {"counts": {"present": 3, "unreported": 1}, "unreported": ["order o9"], "reported_present": []},
            "timeline": {"load_started": 100.0, "fault_at": 103.0, "steps": [
                {"what": "runbook", "step": "FailoverDatabases", "ended_at": 105.5}]},
            "series": {"us-east-1": {"surviving": [2, 3, 1], "lost": [0, 0, 2]}},
            "error_series": [0, 0, 0, 4], "lag_series": {"orders": [[1.0, 0, 1.0], [2.0, 4096, 30.0]]}}


def test_the_page_draws_acks_losses_errors_lag_and_marks_and_escapes_text() -> None:
    html = page(_record())  # type: ignore[arg-type]
    assert "1 lost &lt;without&gt; a trace" in html and "<li>order o9</li>" in html
    assert 'fill="#d62728"><title>us-east-1 lost: 2 at +2s' in html
    assert "<title>4 failed purchases at +3s</title>" in html
    assert "<polyline" in html and "orders standby lag (max 4096 B)" in html
    assert "runbook: FailoverDatabases at +5.50s" in html and "fault at +3.00s" in html


def test_a_drill_id_that_could_name_another_file_is_refused(tmp_path: object) -> None:
    for bad in ("../secrets/control-token", "drill-1", "drill-20261202-050000-ABCD"):
        with pytest.raises(InputError, match="is not a drill id"):
            load(None, bad)  # type: ignore[arg-type]
