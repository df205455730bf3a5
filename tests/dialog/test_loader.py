"""Loading flow files: every kind of mistake is reported with its file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dialog.loader import DEFAULT_FLOWS, FlowError, check_flows, load_flows
from dialog.yaml_lines import load_yaml


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def errors_for(directory: Path, name: str, text: str) -> list[str]:
    path = write(directory, name, text)
    found = check_flows(directory)
    return [e.removeprefix(f"{path}:") for e in found if e.startswith(str(path))]


def test_shipped_flows_are_sound():
    assert check_flows() == []
    flows = load_flows()
    assert {"start", "order_status", "returns", "handoff", "goodbye", "fallback"} <= set(
        flows.flows
    )
    assert flows.for_intent("return_request").name == "returns"
    assert flows.for_intent("coupon_question").name == "coupons"
    assert flows.for_intent("yes") is None


def test_every_procedure_of_the_issue_has_its_own_file():
    names = {p.stem for p in DEFAULT_FLOWS.glob("*.yaml")}
    for procedure in (
        "identify_order",
        "verify_caller",
        "order_status",
        "returns",
        "refunds",
        "refund_on_receipt",
        "coupons",
        "delivery_failed",
        "address_change",
        "damaged",
        "lost",
        "not_received",
        "delivery_confirmation",
        "handoff",
        "goodbye",
        "fallback",
        "escalation",
    ):
        assert procedure in names


def test_a_valid_new_flow_adds_no_errors(flows_dir):
    assert (
        errors_for(
            flows_dir,
            "thanks.yaml",
            """
        flow: thanks
        steps:
          - say: "Thank you, {first_name}."
          - end: flow
        """,
        )
        == []
    )


def test_not_yaml_names_the_line(flows_dir):
    assert errors_for(
        flows_dir,
        "bad.yaml",
        """
        flow: bad
        steps:
          - say: "one"
          - say: [unclosed
        """,
    ) == ["5: not valid YAML: expected ',' or ']', but got '<stream end>'"]


def test_duplicate_keys_are_caught(flows_dir):
    errors = errors_for(
        flows_dir,
        "dup.yaml",
        """
        flow: dup
        steps:
          - say: "one"
            say: "two"
        """,
    )
    assert errors == ["4: duplicate key 'say'"]


def test_a_step_must_be_exactly_one_kind(flows_dir):
    errors = errors_for(
        flows_dir,
        "kinds.yaml",
        """
        flow: kinds
        steps:
          - say: "hello"
          - say: "hi"
            end: flow
          - wait: 3
        """,
    )
    message = "a step needs exactly one of: say, collect, action, branch, set, call, end, handoff"
    assert errors == [f"4: steps.1: {message}", f"6: steps.2: {message}"]


def test_unknown_fields_are_named(flows_dir):
    errors = errors_for(
        flows_dir,
        "extra.yaml",
        """
        flow: extra
        steps:
          - say: "hello"
            colour: blue
        """,
    )
    assert errors == ["3: steps.0.colour: Extra inputs are not permitted"]


def test_unknown_action(flows_dir):
    errors = errors_for(
        flows_dir,
        "act.yaml",
        """
        flow: act
        steps:
          - action: refund_everything
        """,
    )
    assert errors == ["3: unknown action 'refund_everything'"]


def test_unknown_slots_anywhere(flows_dir):
    errors = errors_for(
        flows_dir,
        "slots.yaml",
        """
        flow: slots
        steps:
          - say: "Hello {nickname}."
          - set: {mood: happy}
          - collect: colour
            ask: "Which colour?"
          - branch:
              - if: shoe_size > 40
                then: done
              - else: done
          - id: done
            end: flow
        """,
    )
    assert errors == [
        "3: say: unknown slot {nickname}",
        "4: set: unknown slot 'mood'",
        "5: collect: unknown slot 'colour' (declare it under `slots:`)",
        "8: condition 'shoe_size > 40': unknown slot 'shoe_size'",
    ]


def test_unknown_slot_type_and_choice_without_options(flows_dir):
    errors = errors_for(
        flows_dir,
        "types.yaml",
        """
        flow: types
        slots:
          colour: rainbow
          pick:
            type: choice
        steps:
          - collect: pick
            ask: "Which?"
        """,
    )
    assert errors[0].startswith("3: slot 'colour': unknown type 'rainbow' (known: ")
    assert errors[1] == "4: slot 'pick': a choice slot needs options"


def test_a_slot_has_one_type_across_flows(flows_dir):
    write(
        flows_dir,
        "zz_clash.yaml",
        """
        flow: clash
        slots:
          return_reason: yes_no
        steps:
          - end: flow
        """,
    )
    assert check_flows(flows_dir) == [
        f"{flows_dir / 'zz_clash.yaml'}:3: slot 'return_reason' is yes_no here "
        "but return_reason in flow returns"
    ]


def test_unreachable_step(flows_dir):
    errors = errors_for(
        flows_dir,
        "island.yaml",
        """
        flow: island
        steps:
          - say: "hello"
          - end: flow
          - id: lonely
            say: "nobody comes here"
        """,
    )
    assert errors == ["5: step 'lonely' can never be reached"]


def test_branch_without_else_is_a_missing_branch(flows_dir):
    errors = errors_for(
        flows_dir,
        "fall.yaml",
        """
        flow: fall
        steps:
          - branch:
              - if: verified
                then: yes_
              - if: not verified
                then: no_
          - id: yes_
            say: "yes"
          - id: no_
            say: "no"
        """,
    )
    assert errors == ["3: branch has no `else`: a caller could fall through"]


def test_else_must_come_last(flows_dir):
    errors = errors_for(
        flows_dir,
        "order.yaml",
        """
        flow: order_of_arms
        steps:
          - say: "hi"
            next:
              - else: end
              - if: verified
                then: end
        """,
    )
    assert "5: `else` must be the last arm" in errors
    assert "3: branch has no `else`: a caller could fall through" in errors


def test_unknown_targets(flows_dir):
    errors = errors_for(
        flows_dir,
        "goto.yaml",
        """
        flow: goto
        steps:
          - say: "hi"
            next: nowhere
          - call: no_such_flow
          - collect: wants_text
            ask: "Text?"
            on_fail: nowhere_either
        """,
    )
    assert [e for e in errors if "reached" not in e] == [
        "3: goes to unknown step 'nowhere'",
        "5: call: unknown flow 'no_such_flow'",
        "6: goes to unknown step 'nowhere_either'",
    ]


def test_a_loop_that_never_asks_the_caller(flows_dir):
    errors = errors_for(
        flows_dir,
        "spin.yaml",
        """
        flow: spin
        steps:
          - id: again
            action: track_order
            next: tell
          - id: tell
            say: "{status_text}"
            next: again
        """,
    )
    assert errors == ["3: loops forever without asking the caller: again → tell → again"]


def test_a_loop_through_a_question_is_fine(flows_dir):
    assert (
        errors_for(
            flows_dir,
            "ask_loop.yaml",
            """
        flow: ask_loop
        steps:
          - id: ask
            collect: wants_text
            ask: "Text?"
            next:
              - if: wants_text
                then: end
              - else: ask
        """,
        )
        == []
    )


def test_flows_calling_each_other_forever(flows_dir):
    write(flows_dir, "ping.yaml", "flow: ping\nsteps:\n  - call: pong\n")
    write(flows_dir, "pong.yaml", "flow: pong\nsteps:\n  - call: ping\n")
    errors = check_flows(flows_dir)
    assert f"{flows_dir / 'ping.yaml'}:1: flows call each other in a loop: ping → pong → ping" in (
        errors
    )


def test_a_url_is_never_read_aloud(flows_dir):
    errors = errors_for(
        flows_dir,
        "url.yaml",
        """
        flow: url
        steps:
          - say: "See https://example.com/track for details."
        """,
    )
    assert errors == ["3: say: never read a URL aloud; send it by SMS"]


def test_a_hint_never_holds_an_example_number(flows_dir):
    errors = errors_for(
        flows_dir,
        "hint.yaml",
        """
        flow: hint
        steps:
          - collect: order_number
            ask: "Which order?"
            hint: "Order number 1001."
        """,
    )
    assert errors == [
        "3: hint: no example values in a transcriber hint (tiny.en drops digits after one)"
    ]


def test_an_intent_starts_one_flow_only(flows_dir):
    errors = errors_for(
        flows_dir,
        "twice.yaml",
        """
        flow: twice
        intents: [return_request, teleport]
        steps:
          - end: flow
        """,
    )
    assert errors == [
        "2: intent 'return_request' already starts flow 'returns'",
        "2: intent 'teleport' cannot start a flow",
    ]


def test_conversation_roles_and_sms_are_checked(flows_dir):
    conversation = (flows_dir / "conversation.yaml").read_text()
    conversation = conversation.replace("handoff: handoff", "handoff: operator")
    conversation = conversation.replace("{ticket}.", "{ticket} {secret}.")
    path = flows_dir / "conversation.yaml"
    path.write_text(conversation)
    errors = [e for e in check_flows(flows_dir) if e.startswith(str(path))]
    assert any("roles.handoff: unknown flow 'operator'" in e for e in errors)
    assert any("sms.ticket: unknown field {secret}" in e for e in errors)
    assert all(e.split(":")[1].isdigit() and int(e.split(":")[1]) > 0 for e in errors)


def test_load_flows_raises_with_every_error(flows_dir):
    write(flows_dir, "act.yaml", "flow: act\nsteps:\n  - action: nope\n")
    with pytest.raises(FlowError) as raised:
        load_flows(flows_dir)
    assert raised.value.errors == [f"{flows_dir / 'act.yaml'}:3: unknown action 'nope'"]


def test_missing_directory():
    assert check_flows(Path("/nonexistent/flows")) == [
        "/nonexistent/flows:0: not a directory of flows"
    ]


def test_yes_and_no_stay_words(tmp_path):
    path = write(tmp_path, "a.yaml", "yes: exchange\nno: refund\nflag: true\n")
    assert load_yaml(path) == {"yes": "exchange", "no": "refund", "flag": True}


def test_yes_and_no_answers_must_be_options(flows_dir):
    errors = errors_for(
        flows_dir,
        "answers.yaml",
        """
        flow: answers
        slots:
          pick:
            type: choice
            options: {tea: [tea], coffee: [coffee]}
            yes: water
        steps:
          - collect: pick
            ask: "Tea?"
            yes: tea
            no: juice
            also: [nickname]
          - collect: wants_text
            ask: "Text?"
            yes: tea
        """,
    )
    assert errors == [
        "3: slot 'pick': yes: 'water' is not one of its options",
        "8: no: 'juice' is not an option of 'pick'",
        "8: also: 'nickname' is not a slot that can be heard",
        "13: yes: only a choice slot maps yes or no to an option",
    ]
