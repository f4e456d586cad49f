"""Resume after a crash at each step boundary: the engine dies (an injected crash point: nothing after it is
journaled, every task stops), a new engine opens the same journal, and the execution completes with every
completed step run exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from regionctl.runbooks import journal as J
from regionctl.runbooks.journal import Journal
from tests.unit.runbooks.harness import Harness, crash_at

FLOW = """
description: every kind of step
parameters:
  go: {type: string, default: right}
steps:
  - name: A
    action: test.record
    inputs: {key: A, value: 1}
    outputs: {v: value}
  - name: Both
    parallel:
      - name: Left
        action: test.record
        inputs: {key: Left, value: "{{ steps.A.outputs.v }}"}
      - name: Right
        action: test.record
        inputs: {key: Right}
  - name: Choose
    branch: {on: "{{ params.go }}", cases: {right: Nested}, default: Never}
  - name: Nested
    action: runbook.run
    inputs: {runbook: Child}
    outputs: {got: outputs.got}
  - name: Last
    action: test.record
    inputs: {key: Last, value: "{{ steps.Nested.outputs.got }}"}
    outputs: {v: value}
    isEnd: true
  - name: Never
    action: test.record
    inputs: {key: Never}
outputs:
  last: "{{ steps.Last.outputs.v }}"
"""

CHILD = """
description: child
steps:
  - name: C1
    action: test.record
    inputs: {key: C1, value: child}
    outputs: {v: value}
  - name: C2
    action: test.record
    inputs: {key: C2}
outputs:
  got: "{{ steps.C1.outputs.v }}"
"""

KEYS = ("A", "Left", "Right", "C1", "C2", "Last")


def _harness(root: Path) -> Harness:
    h = Harness(root)
    h.write("Flow", FLOW)
    h.write("Child", CHILD)
    return h


def _boundaries(tmp_path: Path) -> list[tuple[str, str | None]]:
    h = _harness(tmp_path / "clean")
    hook, seen = crash_at(-1)
    ex = h.session(lambda engine: _start_and_wait(engine), crash_hook=hook)
    assert ex.status == J.SUCCEEDED
    return seen


async def _start_and_wait(engine):  # type: ignore[no-untyped-def]
    ex = await engine.start("Flow", {}, "tester")
    return await engine.wait(ex.id, 30)


def _succeeded_keys(h: Harness) -> set[str]:
    journal = Journal(h.journal_path)
    try:
        executions = journal.executions(top_level=False)
        return {r.step for e in executions for r in journal.runs(e.id) if r.status == J.SUCCEEDED}
    finally:
        journal.close()


def test_resume_after_a_crash_at_every_boundary(tmp_path: Path) -> None:
    boundaries = _boundaries(tmp_path)
    points = {p for p, _ in boundaries}
    assert points == {"execution.created", "step.pending", "step.running", "step.acted", "step.finished",
                      "execution.finished"}
    for nth, (point, step) in enumerate(boundaries):
        h = _harness(tmp_path / f"crash{nth}")
        hook, _ = crash_at(nth)
        h.session(lambda engine: _start_and_wait(engine), crash_hook=hook)
        done_before = _succeeded_keys(h)
        calls_before = {k: h.recorder.count(k) for k in KEYS}

        resumed = h.resume()
        where = f"crash at {point} {step} (boundary {nth})"
        if nth == len(boundaries) - 1:
            assert point == "execution.finished"
            assert resumed == [], where  # the top-level execution had finished: nothing left to do
            continue
        (ex,) = resumed
        assert ex.status == J.SUCCEEDED, where
        assert ex.outputs == {"last": "child"}, where
        for key in KEYS:
            assert h.recorder.effects.get(key) == 1, f"{where}: {key} applied {h.recorder.effects.get(key)}"
            if key in done_before:
                assert h.recorder.count(key) == calls_before[key], f"{where}: completed step {key} ran again"
            assert h.recorder.count(key) <= 2, where
        assert h.recorder.count("Never") == 0
        if point == "step.acted" and step in KEYS:
            assert h.recorder.count(step) == 2, f"{where}: the in-flight attempt runs again"


def test_a_crash_between_attempts_keeps_the_attempts_already_used(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.write("Flaky", """
        description: fails twice
        steps:
          - name: Flaky
            action: test.record
            inputs: {key: flaky, fail_first: 2}
            maxAttempts: 3
    """)
    hook, seen = crash_at(-1)

    def crash_on_second_attempt(point: str, execution_id: str, step: str | None) -> None:
        hook(point, execution_id, step)
        if point == "step.running" and h.recorder.count("flaky") == 1:
            from tests.unit.runbooks.harness import Crash

            raise Crash("second attempt")

    async def start(engine):  # type: ignore[no-untyped-def]
        ex = await engine.start("Flaky", {}, "tester")
        return await engine.wait(ex.id, 10)

    h.session(start, crash_hook=crash_on_second_attempt)
    (ex,) = h.resume()
    assert ex.status == J.SUCCEEDED
    # attempt 2 was journaled as running when the engine died: it is re-run as attempt 2, not a fresh round
    assert h.recorder.calls == [("flaky", 1), ("flaky", 2), ("flaky", 3)]


@pytest.mark.parametrize("point", ["step.running", "step.acted", "step.finished"])
def test_crash_inside_a_nested_runbook_reattaches_to_the_same_child(tmp_path: Path, point: str) -> None:
    h = _harness(tmp_path)
    hook, _ = crash_at(-1)

    def crash_in_child(p: str, execution_id: str, step: str | None) -> None:
        if p == point and step == "C2":
            from tests.unit.runbooks.harness import Crash

            raise Crash(p)

    h.session(lambda engine: _start_and_wait(engine), crash_hook=crash_in_child)
    (ex,) = h.resume()
    assert ex.status == J.SUCCEEDED
    journal = Journal(h.journal_path)
    assert len(journal.children(ex.id)) == 1
    assert h.recorder.count("C1") == 1
