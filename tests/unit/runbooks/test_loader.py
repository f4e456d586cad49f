"""A runbook is refused when loaded, with every problem naming the file, the line and the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from regionctl.errors import InputError
from regionctl.runbooks.actions import default_registry
from regionctl.runbooks.loader import DocumentError, RunbookCatalog, load_text
from regionctl.runbooks.model import Parameter, ParamType
from regionctl.runbooks.params import coerce, resolve_parameters
from regionctl.runbooks.templates import RenderContext, TemplateError, render
from regionctl.runbooks.yamlsrc import Problem

REGIONS = ("us-east-1", "us-west-2")


def problems(text: str, tmp_path: Path | None = None, file: str = "rb.yaml") -> list[Problem]:
    catalog = RunbookCatalog(default_registry(), [tmp_path] if tmp_path else [])
    with pytest.raises(DocumentError) as info:
        catalog.load_text(textwrap.dedent(text).lstrip("\n"), file)
    return info.value.problems


def one(text: str, tmp_path: Path | None = None) -> Problem:
    found = problems(text, tmp_path)
    assert len(found) == 1, found
    return found[0]


def test_yaml_syntax_error_names_the_line() -> None:
    found = one("""
        description: x
        steps: [
          {name: A, action: sleep
    """)
    assert found.file == "rb.yaml" and found.line == 4 and "invalid YAML" in found.message


def test_duplicate_key_is_refused_with_its_line() -> None:
    found = one("""
        description: x
        steps:
          - name: A
            action: sleep
            action: wait.until
    """)
    assert (found.line, found.message) == (5, "invalid YAML: duplicate key 'action'")


def test_unknown_field_names_the_step_and_line() -> None:
    found = one("""
        description: x
        steps:
          - name: Pause
            action: sleep
            inputs: {seconds: 1}
            maxattempts: 3
    """)
    assert str(found) == "rb.yaml:6: steps.Pause.maxattempts: unknown field 'maxattempts'"


def test_structural_errors_are_all_listed() -> None:
    found = problems("""
        description: x
        steps:
          - name: A
            action: sleep
            inputs: {seconds: 1}
            maxAttempts: 0
            onFailure: Retry
          - name: B
            action: sleep
            parallel: []
          - name: 9lives
            action: sleep
    """)
    by_field = {p.field: (p.line, p.message) for p in found}
    assert by_field["steps.A.maxAttempts"] == (6, "Input should be greater than or equal to 1")
    assert by_field["steps.A.onFailure"] == (7, "must be Abort, Continue or step:NAME, not 'Retry'")
    assert by_field["steps.B"][1] == "step 'B' needs exactly one of action, parallel or branch (has action, parallel)"
    assert by_field["steps.B"][0] == 8
    assert "is not a step name" in by_field["steps.9lives.name"][1]


def test_not_a_mapping_and_no_steps() -> None:
    assert one("- a\n- b\n").message.startswith("a runbook is a mapping")
    found = one("description: nothing to do\n")
    assert (found.field, found.message) == ("steps", "missing field 'steps'")


def test_unknown_action_and_unknown_step_references() -> None:
    found = problems("""
        description: x
        steps:
          - name: A
            action: db.promote
          - name: B
            action: sleep
            inputs: {seconds: 1}
            nextStep: Finish
            onFailure: step:Cleanup
          - name: C
            branch: {on: x, cases: {x: Nowhere}, default: A}
    """)
    by_field = {p.field: (p.line, p.message) for p in found}
    assert by_field["steps.A.action"][0] == 4
    assert by_field["steps.A.action"][1].startswith("unknown action 'db.promote'; known: approve, db.failover")
    assert by_field["steps.B.nextStep"] == (8, "unknown step 'Finish'; steps are A, B, C")
    assert by_field["steps.B.onFailure"] == (9, "unknown step 'Cleanup'; steps are A, B, C")
    assert by_field["steps.C.branch.cases.x"] == (11, "unknown step 'Nowhere'; steps are A, B, C")


def test_templates_must_reference_declared_parameters_and_outputs() -> None:
    found = problems("""
        description: x
        parameters:
          region: {type: region}
        steps:
          - name: A
            action: wait.until
            inputs:
              kind: db_writable
              database: orders
              region: "{{ params.regoin }}"
            outputs: {reason: reason}
          - name: B
            action: sleep
            inputs: {seconds: "{{ steps.A.outputs.checks }}"}
          - name: C
            action: sleep
            inputs: {seconds: "{{ steps.Z.outputs.x }}"}
          - name: D
            action: http.request
            inputs: {url: "http://{{ params.region | upper | nope }}"}
    """)
    by_field = {p.field: (p.line, p.message) for p in found}
    assert by_field["steps.A.inputs.region"] == (10, "'{{ params.regoin }}': undeclared parameter 'regoin' "
                                                     "(declared: region)")
    assert by_field["steps.B.inputs.seconds"] == (14, "'{{ steps.A.outputs.checks }}': step A declares no output "
                                                      "'checks' (outputs: reason)")
    assert by_field["steps.C.inputs.seconds"] == (17, "'{{ steps.Z.outputs.x }}': unknown step 'Z'")
    assert by_field["steps.D.inputs"][1].startswith("'{{ params.region | upper | nope }}' uses unknown filter")


def test_inputs_are_checked_against_the_action_schema() -> None:
    found = problems("""
        description: x
        parameters:
          region: {type: region}
          wait: {type: number, default: 2}
        steps:
          - name: A
            action: sleep
            inputs: {seconds: soon}
          - name: B
            action: sleep
            inputs: {seconds: "{{ params.region }}"}
          - name: C
            action: sleep
            inputs: {seconds: "{{ params.wait }}", jitter: 1}
          - name: D
            action: db.failover
            inputs: {database: orders}
          - name: E
            action: wait.until
            inputs: {kind: replication_caught_up, database: orders}
          - name: F
            action: routing.set
            inputs: {region: "{{ params.region }}", state: Dim}
    """)
    by_field = {p.field: (p.line, p.message) for p in found}
    assert by_field["steps.A.inputs.seconds"] == (8, "Input should be a valid number, unable to parse string as a "
                                                     "number")
    assert by_field["steps.B.inputs.seconds"][1].endswith("(from '{{ params.region }}')")
    assert by_field["steps.C.inputs.jitter"] == (14, "sleep has no input 'jitter'; inputs: seconds")
    assert by_field["steps.D.inputs.to_region"] == (17, "db.failover needs input 'to_region'")
    assert by_field["steps.E.inputs"] == (20, "kind replication_caught_up needs region")
    assert by_field["steps.F.inputs.state"] == (23, "Input should be 'On' or 'Off'")
    assert "steps.C.inputs.seconds" not in by_field  # a number parameter fits a number input


def test_outputs_must_select_something_the_action_returns() -> None:
    found = one("""
        description: x
        steps:
          - name: A
            action: db.failover
            inputs: {database: orders, to_region: us-west-2}
            outputs: {who: new_writer}
    """)
    assert found.field == "steps.A.outputs.who" and found.line == 6
    assert found.message == "db.failover has no result 'new_writer'; results: changed, database, details, reason, " \
                            "writer"


def test_loops_that_never_end_are_refused_but_branching_loops_are_not() -> None:
    found = one("""
        description: x
        steps:
          - name: A
            action: sleep
            inputs: {seconds: 1}
          - name: B
            action: sleep
            inputs: {seconds: 1}
            nextStep: A
    """)
    assert found.field == "steps.A" and found.line == 3
    assert found.message == "steps A -> B -> A loop forever (no isEnd, no branch out of the loop)"
    RunbookCatalog(default_registry(), []).load_text(textwrap.dedent("""
        description: polls until done
        parameters:
          done: {type: string, default: "no"}
        steps:
          - name: Look
            action: sleep
            inputs: {seconds: 1}
          - name: Decide
            branch: {on: "{{ params.done }}", cases: {"no": Look}, default: Finish}
          - name: Finish
            action: sleep
            inputs: {seconds: 0}
    """), "ok.yaml")


def test_parallel_blocks_and_names() -> None:
    found = problems("""
        description: x
        steps:
          - name: Both
            parallel:
              - name: One
                action: sleep
                inputs: {seconds: 1}
                nextStep: Both
              - name: Two
                action: sleep
                inputs: {seconds: 1}
                onFailure: step:Both
              - name: One
                action: sleep
                inputs: {seconds: 1}
    """)
    messages = {(p.field, p.message) for p in found}
    assert ("steps.Both.parallel.One", "step 'One' in a parallel block cannot use nextStep or isEnd") in messages
    assert ("steps.Both.parallel.Two.onFailure",
            "steps in a parallel block take Abort or Continue (the block jumps)") in messages
    assert ("steps.Both.parallel.One.name", "step name 'One' is used twice") in messages


def test_parameters_are_typed_and_defaults_checked() -> None:
    found = problems("""
        description: x
        parameters:
          count: {type: integer, default: many}
          mode: {type: choice}
          a: {type: region, default: "{{ params.b }}"}
          b: {type: region, default: "{{ params.a }}"}
        steps:
          - name: A
            action: sleep
            inputs: {seconds: 1}
    """)
    messages = {p.field: p.message for p in found}
    assert messages.get("parameters.mode") == "a choice parameter needs a non-empty 'choices' list"
    found = problems("""
        description: x
        parameters:
          count: {type: integer, default: many}
          a: {type: region, default: "{{ params.b }}"}
          b: {type: region, default: "{{ params.a }}"}
        steps:
          - name: A
            action: sleep
            inputs: {seconds: 1}
    """)
    messages = {p.field: p.message for p in found}
    assert messages["parameters"] == "parameters a, b: their defaults depend on each other in a cycle"


def test_nested_runbooks_are_checked(tmp_path: Path) -> None:
    (tmp_path / "Inner.yaml").write_text(textwrap.dedent("""
        description: inner
        parameters:
          region: {type: region}
        steps:
          - name: A
            action: sleep
            inputs: {seconds: 0}
    """))
    (tmp_path / "Middle.yaml").write_text(textwrap.dedent("""
        description: middle
        steps:
          - name: A
            action: runbook.run
            inputs: {runbook: Inner, parameters: {region: us-east-1}}
    """))
    found = problems("""
        description: outer
        steps:
          - name: A
            action: runbook.run
            inputs: {runbook: Inner, parameters: {zone: a}}
          - name: B
            action: runbook.run
            inputs: {runbook: Middle}
          - name: C
            action: runbook.run
            inputs: {runbook: Missing}
    """, tmp_path)
    messages = {(p.field, p.message) for p in found}
    assert ("steps.A.inputs.parameters.zone", "runbook 'Inner' has no parameter 'zone'") in messages
    assert ("steps.A.inputs.parameters", "runbook 'Inner' needs parameter 'region'") in messages
    assert ("steps.B.inputs.runbook", "runbook 'Middle' runs other runbooks itself; nesting is one level deep") \
        in messages
    assert ("steps.C.inputs.runbook", "no runbook 'Missing' (known: Inner, Middle)") in messages


def test_a_valid_document_loads_with_its_source() -> None:
    text = "description: ok\nsteps:\n  - name: A\n    action: sleep\n    inputs: {seconds: 0}\n"
    doc = load_text(text, "/x/Nap.yaml", default_registry())
    assert doc.runbook.name == "Nap" and doc.source == text and doc.runbook.steps[0].action == "sleep"


# --- templates and parameters ---------------------------------------------------------------------------------


def test_render_keeps_types_for_whole_templates_and_formats_embedded_ones() -> None:
    ctx = RenderContext(params={"n": 3, "on": True, "r": "us-east-1"}, steps={"S": {"out": {"k": [1, 2]}}},
                        regions=REGIONS, execution={"id": "e1", "runbook": "R"})
    assert render("{{ params.n }}", ctx) == 3
    assert render(" {{params.on}} ", ctx) is True
    assert render("n={{ params.n }} on={{ params.on }}", ctx) == "n=3 on=true"
    assert render({"x": ["{{ steps.S.outputs.out.k }}"]}, ctx) == {"x": [[1, 2]]}
    assert render("{{ params.r | other_region }}", ctx) == "us-west-2"
    assert render("{{ execution.id }}/{{ execution.runbook }}", ctx) == "e1/R"
    with pytest.raises(TemplateError, match="no parameter 'missing'"):
        render("{{ params.missing }}", ctx)
    with pytest.raises(TemplateError, match="step 'S' has no output 'out.z'"):
        render("{{ steps.S.outputs.out.z }}", ctx)
    with pytest.raises(TemplateError, match="'eu-west-1' is not one of the two regions"):
        render("{{ params.x | other_region }}", RenderContext(params={"x": "eu-west-1"}, regions=REGIONS))


def test_parameter_values_from_a_command_line_are_coerced() -> None:
    assert coerce("n", Parameter(type=ParamType.INTEGER), "42", REGIONS) == 42
    assert coerce("f", Parameter(type=ParamType.NUMBER), "0.5", REGIONS) == 0.5
    assert coerce("b", Parameter(type=ParamType.BOOLEAN), "yes", REGIONS) is True
    assert coerce("b", Parameter(type=ParamType.BOOLEAN), "off", REGIONS) is False
    for param, value, message in [(Parameter(type=ParamType.INTEGER), "4.5", "'4.5' is not a valid integer"),
                                  (Parameter(type=ParamType.BOOLEAN), "maybe", "'maybe' is not a valid boolean"),
                                  (Parameter(type=ParamType.REGION), "mars-1", "unknown region 'mars-1'")]:
        with pytest.raises(InputError, match=message):
            coerce("p", param, value, REGIONS)


def test_templated_defaults_resolve_in_dependency_order() -> None:
    runbook = RunbookCatalog(default_registry()).get("RegionFailover").runbook
    assert resolve_parameters(runbook, {"region": "us-west-2"}, REGIONS) == {
        "region": "us-west-2", "to_region": "us-east-1", "mode": "ungraceful", "approver": ""}
