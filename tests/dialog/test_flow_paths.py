"""Where control goes in a flow, by position: what the loader's graph checks stand on."""

from __future__ import annotations

from dialog.flow_paths import busy_loops, covered_by_confirmation, cycles, unreachable
from dialog.schema import FlowFile


def steps_of(*steps: dict) -> tuple[list, dict[str, int]]:
    spec = FlowFile.model_validate({"flow": "f", "steps": list(steps)})
    ids = {s.id: i for i, s in enumerate(spec.steps) if s.id}
    return spec.steps, ids


def test_a_step_after_an_end_is_unreachable():
    steps, ids = steps_of({"say": "Hi."}, {"end": "flow"}, {"say": "Never.", "id": "lost"})
    assert unreachable(steps, ids) == [2]


def test_a_loop_through_a_question_is_not_busy():
    steps, ids = steps_of(
        {"say": "Hi.", "id": "top"},
        {"collect": "order_number", "ask": "Which order?"},
        {"set": {"misses": 1}, "next": "top"},
    )
    assert busy_loops(steps, ids) == []
    steps, ids = steps_of({"say": "Hi.", "id": "top"}, {"set": {"misses": 1}, "next": "top"})
    assert busy_loops(steps, ids) == [[0, 1]]


def test_only_steps_straight_after_a_confirmed_action_are_covered():
    steps, ids = steps_of(
        {"action": "a", "confirm": "Shall I?"},
        {"action": "b"},
        {"collect": "order_number", "ask": "Which order?"},
        {"action": "c"},
    )
    assert covered_by_confirmation(steps, ids) == [False, True, True, False]


def test_cycles_include_a_step_that_goes_to_itself():
    assert cycles({0: [0], 1: [2], 2: [1], 3: []}) == [[0], [1, 2]]
