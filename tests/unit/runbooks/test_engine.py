"""The engine with fake actions: flow, failure handling, retries, templating, nesting, parallel steps, branches,
approvals and the operator's controls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from regionctl.errors import ConflictError, Forbidden, InputError
from regionctl.runbooks import journal as J
from regionctl.runbooks.engine import Engine
from tests.unit.runbooks.harness import Harness


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def step_status(engine: Engine, execution_id: str, step: str) -> str | None:
    runs = [r for r in engine.journal.runs(execution_id) if r.step == step]
    return runs[-1].status if runs else None


def visited(h: Harness, execution_id: str) -> list[tuple[str, str]]:
    journal = h.journal()
    try:
        return [(r.step, r.status) for r in journal.runs(execution_id) if r.parent_seq is None]
    finally:
        journal.close()


THREE = """
description: three steps
steps:
  - name: A
    action: test.record
    inputs: {key: a}
  - name: B
    action: test.record
    inputs: {key: b, fail_always: {fail}}
    onFailure: {on_failure}
  - name: C
    action: test.record
    inputs: {key: c}
    isEnd: true
  - name: Recover
    action: test.record
    inputs: {key: recover}
"""


def three(h: Harness, fail: bool, on_failure: str) -> str:
    h.write("Three", THREE.replace("{fail}", "true" if fail else "false").replace("{on_failure}", on_failure))
    return "Three"


# --- onFailure ------------------------------------------------------------------------------------------------


def test_abort_stops_the_execution_at_the_failed_step(h: Harness) -> None:
    ex = h.run(three(h, True, "Abort"))
    assert ex.status == J.FAILED
    assert "B failed: b failed on attempt 1" in (ex.error or "")
    assert visited(h, ex.id) == [("A", "succeeded"), ("B", "failed")]
    assert h.recorder.count("c") == 0


def test_continue_goes_on_with_the_next_step(h: Harness) -> None:
    ex = h.run(three(h, True, "Continue"))
    assert ex.status == J.SUCCEEDED
    assert visited(h, ex.id) == [("A", "succeeded"), ("B", "failed"), ("C", "succeeded")]


def test_on_failure_step_jumps_to_the_named_step(h: Harness) -> None:
    ex = h.run(three(h, True, "step:Recover"))
    assert ex.status == J.SUCCEEDED
    assert visited(h, ex.id) == [("A", "succeeded"), ("B", "failed"), ("Recover", "succeeded")]
    assert h.recorder.count("c") == 0


def test_success_ignores_on_failure_and_is_end_ends(h: Harness) -> None:
    ex = h.run(three(h, False, "step:Recover"))
    assert ex.status == J.SUCCEEDED
    assert visited(h, ex.id) == [("A", "succeeded"), ("B", "succeeded"), ("C", "succeeded")]
    assert h.recorder.count("recover") == 0


def test_a_loop_through_on_failure_is_stopped_by_the_transition_guard(h: Harness) -> None:
    h.write("Loop", """
        description: retries forever through onFailure
        steps:
          - name: A
            action: test.record
            inputs: {key: a, fail_always: true}
            onFailure: step:B
            isEnd: true
          - name: B
            action: test.record
            inputs: {key: b}
            nextStep: A
    """)

    async def body(engine: Engine) -> J.Execution:
        engine.max_transitions = 9
        ex = await engine.start("Loop", {}, "tester")
        return await engine.wait(ex.id, 10)

    ex = h.session(body)
    assert ex.status == J.FAILED
    assert "more than 9 step transitions" in (ex.error or "")


# --- retries and timeouts -------------------------------------------------------------------------------------


def test_max_attempts_retries_until_success(h: Harness) -> None:
    h.write("Retry", """
        description: retry
        steps:
          - name: Flaky
            action: test.record
            inputs: {key: flaky, fail_first: 2}
            maxAttempts: 3
            outputs: {calls: calls}
    """)
    ex = h.run("Retry")
    assert ex.status == J.SUCCEEDED
    assert h.recorder.calls == [("flaky", 1), ("flaky", 2), ("flaky", 3)]
    journal = h.journal()
    assert [e.message for e in journal.events(ex.id) if e.kind == "step.attempt_failed"] == [
        "Flaky: attempt 1/3: flaky failed on attempt 1", "Flaky: attempt 2/3: flaky failed on attempt 2"]


def test_attempts_run_out(h: Harness) -> None:
    h.write("Retry", """
        description: retry
        steps:
          - name: Flaky
            action: test.record
            inputs: {key: flaky, fail_first: 5}
            maxAttempts: 2
    """)
    ex = h.run("Retry")
    assert ex.status == J.FAILED
    assert h.recorder.count("flaky") == 2


def test_a_non_retryable_error_fails_at_once(h: Harness) -> None:
    h.write("NoRetry", """
        description: no retry
        steps:
          - name: Broken
            action: test.record
            inputs: {key: broken, fail_always: true, retryable: false}
            maxAttempts: 5
    """)
    ex = h.run("NoRetry")
    assert ex.status == J.FAILED
    assert h.recorder.count("broken") == 1


def test_each_attempt_times_out_and_is_retried(h: Harness) -> None:
    h.write("Slow", """
        description: times out
        steps:
          - name: Slow
            action: test.record
            inputs: {key: slow, sleep: 5}
            timeoutSeconds: 0.05
            maxAttempts: 3
    """)
    ex = h.run("Slow")
    assert ex.status == J.FAILED
    assert ex.error is not None and "timed out after 0.05s" in ex.error
    assert h.recorder.count("slow") == 3
    assert "slow" not in h.recorder.effects


def test_retry_delay_and_a_retry_that_succeeds_within_the_timeout(h: Harness) -> None:
    h.write("Delay", """
        description: delay
        steps:
          - name: Flaky
            action: test.record
            inputs: {key: flaky, fail_first: 1, sleep: 0.01}
            timeoutSeconds: 5
            maxAttempts: 2
            retryDelaySeconds: 0.05
    """)
    ex = h.run("Delay")
    assert ex.status == J.SUCCEEDED
    journal = h.journal()
    starts = [e.at for e in journal.events(ex.id) if e.kind == "step.running"]
    assert len(starts) == 2 and starts[1] - starts[0] >= 0.05


# --- templating -----------------------------------------------------------------------------------------------


def test_templates_carry_parameters_and_outputs_with_their_types(h: Harness) -> None:
    h.write("Tpl", """
        description: templating
        parameters:
          region: {type: region}
          count: {type: integer, default: 2}
          other: {type: region, default: "{{ params.region | other_region }}"}
        steps:
          - name: First
            action: test.record
            inputs: {key: first, value: {n: "{{ params.count }}", to: "{{ params.other }}"}}
            outputs: {n: value.n, to: value.to, whole: value}
          - name: Second
            action: test.record
            inputs:
              key: second
              value: "{{ steps.First.outputs.n }} to {{ steps.First.outputs.to }} in {{ execution.runbook }}"
            outputs: {text: value}
        outputs:
          n: "{{ steps.First.outputs.n }}"
          text: "{{ steps.Second.outputs.text }}"
          whole: "{{ steps.First.outputs.whole }}"
    """)
    ex = h.run("Tpl", {"region": "us-west-2", "count": "7"})
    assert ex.status == J.SUCCEEDED, ex.error
    assert ex.parameters == {"region": "us-west-2", "count": 7, "other": "us-east-1"}
    assert ex.outputs == {"n": 7, "text": "7 to us-east-1 in Tpl", "whole": {"n": 7, "to": "us-east-1"}}


def test_bad_parameters_are_refused_before_anything_runs(h: Harness) -> None:
    h.write("P", """
        description: params
        parameters:
          region: {type: region}
          mode: {type: choice, choices: [a, b], default: a}
        steps:
          - name: A
            action: test.record
            inputs: {key: a}
    """)
    for params, message in [({}, "needs parameter region"),
                            ({"region": "eu-north-7"}, "unknown region 'eu-north-7'"),
                            ({"region": "us-east-1", "mode": "c"}, "'c' is not one of a, b"),
                            ({"region": "us-east-1", "speed": 1}, "has no parameter speed")]:
        with pytest.raises(InputError, match=message):
            h.run("P", params)
    assert h.recorder.calls == []


def test_a_reference_to_a_step_that_did_not_run_fails_that_step_by_name(h: Harness) -> None:
    h.write("Skip", """
        description: skip path
        parameters:
          go: {type: boolean, default: false}
        steps:
          - name: Choose
            branch: {on: "{{ params.go }}", cases: {"true": Produce}, default: Consume}
          - name: Produce
            action: test.record
            inputs: {key: p, value: 1}
            outputs: {v: value}
          - name: Consume
            action: test.record
            inputs: {key: c, value: "{{ steps.Produce.outputs.v }}"}
    """)
    ex = h.run("Skip")
    assert ex.status == J.FAILED
    assert "step 'Produce' has not produced outputs" in (ex.error or "")


# --- branch, parallel, nested ---------------------------------------------------------------------------------


def test_branch_picks_the_case_or_the_default_or_fails(h: Harness) -> None:
    h.write("Br", """
        description: branch
        parameters:
          mode: {type: string}
        steps:
          - name: Choose
            branch: {on: "{{ params.mode }}", cases: {fast: Fast, slow: Slow}}
          - name: Fast
            action: test.record
            inputs: {key: fast}
            isEnd: true
          - name: Slow
            action: test.record
            inputs: {key: slow}
    """)
    assert visited(h, h.run("Br", {"mode": "slow"}).id) == [("Choose", "succeeded"), ("Slow", "succeeded")]
    assert visited(h, h.run("Br", {"mode": "fast"}).id) == [("Choose", "succeeded"), ("Fast", "succeeded")]
    ex = h.run("Br", {"mode": "medium"})
    assert ex.status == J.FAILED and "no case for 'medium'" in (ex.error or "")


def test_parallel_steps_run_together_and_the_block_fails_if_one_aborts(h: Harness) -> None:
    h.write("Par", """
        description: parallel
        steps:
          - name: Both
            parallel:
              - name: Left
                action: test.record
                inputs: {key: left, gate: g}
              - name: Right
                action: test.record
                inputs: {key: right, gate: g}
              - name: Optional
                action: test.record
                inputs: {key: optional, fail_always: true}
                onFailure: Continue
          - name: After
            action: test.record
            inputs: {key: after}
    """)

    async def body(engine: Engine) -> J.Execution:
        ex = await engine.start("Par", {}, "tester")
        # both gated steps have started before either may finish: they run together
        await until(lambda: {"left", "right"} <= {k for k, _ in h.recorder.calls})
        h.recorder.gates.setdefault("g", asyncio.Event()).set()
        return await engine.wait(ex.id, 10)

    ex = h.session(body)
    assert ex.status == J.SUCCEEDED
    assert h.recorder.count("after") == 1

    h.write("ParFail", """
        description: parallel failure
        steps:
          - name: Both
            parallel:
              - name: Good
                action: test.record
                inputs: {key: good}
              - name: Bad
                action: test.record
                inputs: {key: bad, fail_always: true}
            onFailure: step:Cleanup
          - name: After
            action: test.record
            inputs: {key: after2}
          - name: Cleanup
            action: test.record
            inputs: {key: cleanup}
    """)
    ex = h.run("ParFail")
    assert ex.status == J.SUCCEEDED
    assert visited(h, ex.id) == [("Both", "failed"), ("Cleanup", "succeeded")]
    assert h.recorder.count("good") == 1 and h.recorder.count("after2") == 0


def test_nested_runbook_runs_as_a_child_and_returns_its_outputs(h: Harness) -> None:
    h.write("Child", """
        description: child
        parameters:
          x: {type: integer}
        steps:
          - name: Work
            action: test.record
            inputs: {key: child, value: "{{ params.x }}"}
            outputs: {v: value}
        outputs:
          doubled: "{{ steps.Work.outputs.v }}"
    """)
    h.write("Parent", """
        description: parent
        steps:
          - name: Call
            action: runbook.run
            inputs: {runbook: Child, parameters: {x: 21}}
            outputs: {got: outputs.doubled, child: execution_id}
          - name: Use
            action: test.record
            inputs: {key: use, value: "{{ steps.Call.outputs.got }}"}
    """)
    ex = h.run("Parent")
    assert ex.status == J.SUCCEEDED
    journal = h.journal()
    (child,) = journal.children(ex.id)
    assert child.runbook == "Child" and child.status == J.SUCCEEDED and child.outputs == {"doubled": 21}
    assert h.recorder.calls == [("child", 1), ("use", 1)]


def test_a_failing_child_fails_the_parent_step(h: Harness) -> None:
    h.write("Child", """
        description: child
        steps:
          - name: Work
            action: test.record
            inputs: {key: child, fail_always: true}
    """)
    h.write("Parent", """
        description: parent
        steps:
          - name: Call
            action: runbook.run
            inputs: {runbook: Child}
    """)
    ex = h.run("Parent")
    assert ex.status == J.FAILED
    assert "runbook Child" in (ex.error or "") and "child failed on attempt 1" in (ex.error or "")


# --- approvals ------------------------------------------------------------------------------------------------

APPROVAL = """
description: approval gate
steps:
  - name: Gate
    action: approve
    inputs: {approvers: [alice, bob], message: go?}
    outputs: {who: approver, why: comment}
    onFailure: step:Declined
  - name: Go
    action: test.record
    inputs: {key: go, value: "{{ steps.Gate.outputs.who }}: {{ steps.Gate.outputs.why }}"}
    outputs: {said: value}
    isEnd: true
  - name: Declined
    action: test.record
    inputs: {key: declined}
"""


def test_approval_waits_for_a_named_approver(h: Harness) -> None:
    h.write("Appr", APPROVAL)

    async def body(engine: Engine) -> J.Execution:
        ex = await engine.start("Appr", {}, "tester")
        await until(lambda: step_status(engine, ex.id, "Gate") == J.WAITING)
        assert h.recorder.calls == []
        with pytest.raises(Forbidden, match="'mallory' may not decide step Gate; approvers: alice, bob"):
            engine.decide(ex.id, "mallory", True, "me")
        engine.decide(ex.id, "bob", True, "looks fine")
        with pytest.raises(ConflictError, match="step Gate of execution .* is already decided"):
            engine.decide(ex.id, "alice", True, "late")
        ex = await engine.wait(ex.id, 10)
        with pytest.raises(ConflictError, match="not waiting for an approval"):
            engine.decide(ex.id, "alice", True, "later")
        return ex

    ex = h.session(body)
    assert ex.status == J.SUCCEEDED
    assert h.recorder.calls == [("go", 1)]
    journal = h.journal()
    assert [r.outputs for r in journal.runs(ex.id) if r.step == "Go"] == [{"said": "bob: looks fine"}]
    assert any(e.kind == "approval.approved" and "bob: looks fine" in e.message for e in journal.events(ex.id))


def test_a_decline_fails_the_step_and_follows_on_failure(h: Harness) -> None:
    h.write("Appr", APPROVAL)

    async def body(engine: Engine) -> J.Execution:
        ex = await engine.start("Appr", {}, "tester")
        await until(lambda: step_status(engine, ex.id, "Gate") == J.WAITING)
        engine.decide(ex.id, "alice", False, "not during peak")
        return await engine.wait(ex.id, 10)

    ex = h.session(body)
    assert ex.status == J.SUCCEEDED
    assert h.recorder.calls == [("declined", 1)]
    journal = h.journal()
    gate = next(r for r in journal.runs(ex.id) if r.step == "Gate")
    assert gate.status == J.FAILED and gate.error == "declined by alice: not during peak"


def test_an_approval_survives_an_engine_restart(h: Harness) -> None:
    h.write("Appr", APPROVAL)

    async def first(engine: Engine) -> str:
        ex = await engine.start("Appr", {}, "tester")
        await until(lambda: step_status(engine, ex.id, "Gate") == J.WAITING)
        engine.decide(ex.id, "alice", True, "ok")
        return ex.id  # the engine stops before the step sees the decision

    async def first_no_wake(engine: Engine) -> str:
        engine.signal = lambda _eid: _Never()  # type: ignore[method-assign,assignment]
        return await first(engine)

    execution_id = h.session(first_no_wake)
    (ex,) = h.resume()
    assert ex.id == execution_id and ex.status == J.SUCCEEDED
    assert h.recorder.calls == [("go", 1)]


class _Never:
    def set(self) -> None:
        return None

    async def wait_for(self, timeout: float) -> None:
        await asyncio.sleep(3600)


# --- pause, resume, cancel, retry, skip -----------------------------------------------------------------------

GATED = """
description: gated
steps:
  - name: A
    action: test.slow
    inputs: {key: a, gate: a}
  - name: B
    action: test.wait
    inputs: {key: b, gate: b}
  - name: C
    action: test.record
    inputs: {key: c}
"""


def test_pause_waits_for_a_running_action_then_stops_at_the_boundary(h: Harness) -> None:
    h.write("Gated", GATED)

    async def body(engine: Engine) -> None:
        ex = await engine.start("Gated", {}, "tester")
        await until(lambda: h.recorder.count("a") == 1)
        assert engine.pause(ex.id, "op").status == J.PAUSING
        h.recorder.gates["a"].set()  # the non-interruptible step finishes...
        ex = await engine.wait(ex.id, 10)
        assert ex.status == J.PAUSED  # ...and the execution stops before B
        assert step_status(engine, ex.id, "A") == J.SUCCEEDED and step_status(engine, ex.id, "B") is None
        assert h.recorder.count("b") == 0
        with pytest.raises(ConflictError, match="only a running one can pause"):
            engine.pause(ex.id, "op")
        engine.resume(ex.id, "op")
        await until(lambda: h.recorder.count("b") == 1)
        h.recorder.gates["b"].set()
        ex = await engine.wait(ex.id, 10)
        assert ex.status == J.SUCCEEDED
        assert h.recorder.count("a") == 1 and h.recorder.count("c") == 1

    h.session(body)


def test_pause_interrupts_a_waiting_action_which_runs_again_on_resume(h: Harness) -> None:
    h.write("Gated", GATED)

    async def body(engine: Engine) -> None:
        ex = await engine.start("Gated", {}, "tester")
        h.recorder.gates.setdefault("a", asyncio.Event()).set()
        await until(lambda: h.recorder.count("b") == 1)
        engine.pause(ex.id, "op")
        ex = await engine.wait(ex.id, 10)
        assert ex.status == J.PAUSED
        run_b = next(r for r in engine.journal.runs(ex.id) if r.step == "B")
        assert run_b.status == J.PENDING and run_b.attempt == 0  # the interrupted attempt does not count
        h.recorder.gates["b"].set()
        engine.resume(ex.id, "op")
        ex = await engine.wait(ex.id, 10)
        assert ex.status == J.SUCCEEDED
        assert h.recorder.calls == [("a", 1), ("b", 1), ("b", 1), ("c", 1)]

    h.session(body)


def test_cancel_stops_a_running_execution_and_a_paused_one(h: Harness) -> None:
    h.write("Gated", GATED)

    async def body(engine: Engine) -> None:
        ex = await engine.start("Gated", {}, "tester")
        h.recorder.gates.setdefault("a", asyncio.Event()).set()
        await until(lambda: h.recorder.count("b") == 1)
        engine.cancel(ex.id, "op")
        ex = await engine.wait(ex.id, 10)
        assert ex.status == J.CANCELLED
        assert step_status(engine, ex.id, "B") == J.CANCELLED and h.recorder.count("c") == 0
        with pytest.raises(ConflictError, match="already cancelled"):
            engine.cancel(ex.id, "op")

        h.recorder.gates.clear()
        ex2 = await engine.start("Gated", {}, "tester")
        await until(lambda: h.recorder.count("a") == 2)
        engine.pause(ex2.id, "op")
        h.recorder.gates["a"].set()
        assert (await engine.wait(ex2.id, 10)).status == J.PAUSED
        assert engine.cancel(ex2.id, "op").status == J.CANCELLED

    h.session(body)


def test_retry_runs_the_failed_step_again_and_carries_on(h: Harness) -> None:
    h.write("Flaky", """
        description: fails twice then works
        steps:
          - name: A
            action: test.record
            inputs: {key: a}
          - name: B
            action: test.record
            inputs: {key: b, fail_first: 2}
            maxAttempts: 1
          - name: C
            action: test.record
            inputs: {key: c}
    """)

    async def body(engine: Engine) -> J.Execution:
        ex = await engine.start("Flaky", {}, "tester")
        ex = await engine.wait(ex.id, 10)
        assert ex.status == J.FAILED
        with pytest.raises(InputError, match="stopped at step B, not A"):
            engine.retry(ex.id, "op", step="A")
        engine.retry(ex.id, "op", step="B")
        ex = await engine.wait(ex.id, 10)
        assert ex.status == J.FAILED  # attempt 2 fails too
        engine.retry(ex.id, "op")
        return await engine.wait(ex.id, 10)

    ex = h.session(body)
    assert ex.status == J.SUCCEEDED and ex.error is None
    assert h.recorder.calls == [("a", 1), ("b", 1), ("b", 2), ("b", 3), ("c", 1)]


def test_retry_of_a_parallel_block_reruns_only_its_failed_steps(h: Harness) -> None:
    h.write("Par", """
        description: parallel retry
        steps:
          - name: Both
            parallel:
              - name: Good
                action: test.record
                inputs: {key: good}
              - name: Bad
                action: test.record
                inputs: {key: bad, fail_first: 1}
    """)

    async def body(engine: Engine) -> J.Execution:
        ex = await engine.wait((await engine.start("Par", {}, "tester")).id, 10)
        assert ex.status == J.FAILED
        engine.retry(ex.id, "op")
        return await engine.wait(ex.id, 10)

    ex = h.session(body)
    assert ex.status == J.SUCCEEDED
    assert h.recorder.count("good") == 1 and h.recorder.count("bad") == 2


def test_skip_treats_the_failed_step_as_done(h: Harness) -> None:
    h.write("Broken", """
        description: broken step
        steps:
          - name: A
            action: test.record
            inputs: {key: a, fail_always: true}
          - name: B
            action: test.record
            inputs: {key: b}
    """)

    async def body(engine: Engine) -> J.Execution:
        ex = await engine.wait((await engine.start("Broken", {}, "tester")).id, 10)
        with pytest.raises(ConflictError, match="is failed; only a paused one resumes"):
            engine.resume(ex.id, "op")
        engine.skip(ex.id, "op")
        ex = await engine.wait(ex.id, 10)
        with pytest.raises(ConflictError, match="retry and skip apply to a failed execution"):
            engine.skip(ex.id, "op")
        return ex

    ex = h.session(body)
    assert ex.status == J.SUCCEEDED
    assert visited(h, ex.id) == [("A", "skipped"), ("B", "succeeded")]


def test_pause_of_a_parent_pauses_its_child_and_resume_continues_both(h: Harness) -> None:
    h.write("Child", """
        description: child
        steps:
          - name: Wait
            action: test.wait
            inputs: {key: child, gate: child}
          - name: Then
            action: test.record
            inputs: {key: child_then}
    """)
    h.write("Parent", """
        description: parent
        steps:
          - name: Call
            action: runbook.run
            inputs: {runbook: Child}
          - name: After
            action: test.record
            inputs: {key: after}
    """)

    async def body(engine: Engine) -> J.Execution:
        ex = await engine.start("Parent", {}, "tester")
        await until(lambda: h.recorder.count("child") == 1)
        engine.pause(ex.id, "op")
        ex = await engine.wait(ex.id, 10)
        (child,) = engine.journal.children(ex.id)
        assert ex.status == J.PAUSED and child.status == J.PAUSED
        with pytest.raises(InputError, match="is a child of"):
            engine.resume(child.id, "op")
        h.recorder.gates["child"].set()
        engine.resume(ex.id, "op")
        ex = await engine.wait(ex.id, 10)
        assert [c.id for c in engine.journal.children(ex.id)] == [child.id]  # re-attached, not restarted
        return ex

    ex = h.session(body)
    assert ex.status == J.SUCCEEDED
    assert h.recorder.count("child_then") == 1 and h.recorder.count("after") == 1
