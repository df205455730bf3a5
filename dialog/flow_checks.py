"""Checking flow files against each other and the engine: what a schema cannot see.

Every action is registered and every slot known (declared by a flow, set by an action, or one
of `BUILTIN_SLOTS`), with a type a `collect` can hear; every target, `call` and role names
something that exists; branches end with `else`; steps are reachable and loops ask the
caller; no template reads out a URL and no transcriber hint holds an example number.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dialog import understanding
from dialog.actions import ACTIONS
from dialog.expressions import Condition, ExpressionError, template_fields
from dialog.flow_files import CONVERSATION_FILE, FAQ_FILE, FlowFiles
from dialog.flow_paths import (
    arms,
    busy_loops,
    confirms,
    covered_by_confirmation,
    cycles,
    targets,
    unreachable,
)
from dialog.schema import (
    END,
    ActionStep,
    BranchStep,
    CallStep,
    CollectStep,
    EndStep,
    FlowFile,
    HandoffStep,
    SayStep,
    SetStep,
    SlotDecl,
    Step,
)
from dialog.slots import SLOT_TYPES
from dialog.wording import Worded
from dialog.yaml_lines import LineDict, line_of

__all__ = ["BUILTIN_SLOTS", "SMS_FIELDS", "FlowChecker"]

BUILTIN_SLOTS: dict[str, str] = {
    "shop": "text",
    "customer": "value",
    "customer_name": "text",
    "first_name": "text",
    "known_caller": "bool",
    "direction": "text",
    "purpose": "text",
    "order": "order",
    "order_number": "order_number",
    "item": "items",
    "it": "text",
    "they": "text",
    "its": "text",
    "was": "text",
    "is": "text",
    "has": "text",
    "carrier": "text",
    "payment_method": "payment",
    "order_total": "money",
    "order_delivered": "bool",
    "order_filter": "text",
    "order_choices": "orders",
    "product_names": "value",
    "active_codes": "value",
    "upset": "bool",
    "verified": "bool",
    "owns_order": "bool",
    "handoff_reason": "text",
    "escalation_reason": "text",
    "trigger_intent": "text",
    "confirmed": "yes_no",
    "next_topic": "text",
    "resume_topic": "text",
    "heard_value": "text",
    "guess_topic": "text",
    "misses": "number",
    "too_many_misses": "bool",
    "courtesy_reason": "text",
    "ticket_reason": "text",
    "claim_kind": "text",
    "refund_reason": "text",
    "status_told": "bool",  # the order's status was just said (a flow called next goes on)
}
"""Slots the engine itself keeps (who is calling, which order, how the call is going)."""

SMS_FIELDS: dict[str, frozenset[str]] = {
    name: frozenset({"shop", *fields})
    for name, fields in {
        "tracking": {"order", "item", "url"},
        "return_label": {"order", "item", "rma", "url", "amount", "method"},
        "exchange_label": {"order", "item", "rma", "url", "size"},
        "store_credit_label": {"order", "item", "rma", "url", "amount"},
        "replacement": {"order", "item", "rma"},
        "ticket": {"order", "ticket"},
        "refund_created": {"order", "item", "amount", "method"},
        "refund_pending": {"order", "item", "amount", "ticket"},
        "courtesy": {"code", "description"},
        "rescheduled": {"order", "item", "carrier", "day"},
        "address_changed": {"order", "item", "address"},
        "photo_link": {"order", "item", "url", "days", "max_photos"},
        "photos_received": {"order", "item", "rma"},
        "photos_kept": {"order", "item", "ticket"},
        "photos_already": {"order", "item"},
        "photos_refused": {"order", "problem", "max_photos", "max_mb"},
    }.items()
}
"""The SMS templates `conversation.yaml` may define, and the fields each may use."""

_URL = re.compile(r"https?://|www\.|\.(com|org|net|io)\b", re.IGNORECASE)
_ROLE_INTENTS = {"human", "goodbye", "yes", "no", "unknown"}


class FlowChecker:
    """Checks what the schema cannot across the files read: slot types, step targets and
    reachability, templates and conditions, calls between flows, the conversation and the
    FAQ. Mistakes go to `read.errors`; the slot types and intents it gathers are the ones a
    loaded `Flows` keeps."""

    def __init__(self, read: FlowFiles) -> None:
        self.read = read
        self.errors = read.errors
        self.slot_types: dict[str, str] = dict(BUILTIN_SLOTS)
        self.slot_types.update(ACTIONS.slot_types())
        self.slot_origin: dict[str, str] = {}
        self.by_intent: dict[str, str] = {}

    def err(self, path: Path, line: int, message: str) -> None:
        self.errors.append(f"{path}:{line}: {message}")

    # Slots declared by flows must agree with each other and with the engine and actions.
    def collect_slot_types(self) -> None:
        for name, (path, spec) in self.read.flows.items():
            raw_slots = self.read.raw[name].get("slots")
            for slot, decl in spec.slot_decls().items():
                line = raw_slots.line_for(slot) if isinstance(raw_slots, LineDict) else spec.line
                where = f"{path}:{line}"
                if decl.type not in SLOT_TYPES:
                    known = ", ".join(sorted(SLOT_TYPES))
                    self.errors.append(f"{where}: slot {slot!r}: unknown type {decl.type!r} "
                                       f"(known: {known})")  # fmt: skip
                    continue
                if SLOT_TYPES[decl.type].needs_options and not decl.options:
                    self.errors.append(f"{where}: slot {slot!r}: a {decl.type} slot needs options")
                if (decl.yes_when or decl.no_when) and decl.type != "yes_no":
                    self.errors.append(
                        f"{where}: slot {slot!r}: yes_when/no_when are for yes_no slots"
                    )
                for word in ("yes", "no"):
                    value = getattr(decl, word)
                    if value is not None and value not in (decl.options or {}):
                        self.errors.append(
                            f"{where}: slot {slot!r}: {word}: {value!r} is not one of its options"
                        )
                known = self.slot_types.get(slot)
                if known is not None and known != decl.type:
                    origin = self.slot_origin.get(slot, "the engine or an action")
                    self.errors.append(
                        f"{where}: slot {slot!r} is {decl.type} here but {known} in {origin}"
                    )
                    continue
                self.slot_types[slot] = decl.type
                self.slot_origin.setdefault(slot, f"flow {name}")

    def check_template(self, path: Path, line: int, text: str | None, what: str) -> None:
        if isinstance(text, Worded):  # each wording on its own; a text message may hold a link
            self._check_wording(path, line, text.voice, f"{what}.voice", aloud=True)
            self._check_wording(path, line, text.text, f"{what}.text", aloud=False)
            return
        self._check_wording(path, line, text, what, aloud=True)

    def _check_wording(
        self, path: Path, line: int, text: str | None, what: str, *, aloud: bool
    ) -> None:
        if not text:
            return
        if aloud and _URL.search(text):
            self.err(path, line, f"{what}: never read a URL aloud; send it by SMS")
        try:
            fields = template_fields(text)
        except ExpressionError as exc:
            self.err(path, line, f"{what}: {exc}")
            return
        for name in fields:
            if name not in self.slot_types:
                self.err(path, line, f"{what}: unknown slot {{{name}}}")

    def check_condition(self, path: Path, line: int, source: str | None) -> None:
        if source is None:
            return
        try:
            cond = Condition.parse(source)
        except ExpressionError as exc:
            self.err(path, line, f"condition {source!r}: {exc}")
            return
        for name in sorted(cond.names - self.slot_types.keys()):
            self.err(path, line, f"condition {source!r}: unknown slot {name!r}")

    def check_flow(self, name: str, path: Path, spec: FlowFile) -> None:
        steps = spec.steps
        ids: dict[str, int] = {}
        for i, step in enumerate(steps):
            if step.id is None:
                continue
            if step.id == END:
                self.err(path, step.line, "step id 'end' is reserved (it finishes the flow)")
            elif step.id in ids:
                self.err(path, step.line, f"step id {step.id!r} is used twice")
            ids[step.id] = i
        declared = spec.slot_decls()
        raw = self.read.raw.get(name)
        line = raw.line_for("intents") if raw is not None else spec.line
        for intent in spec.intents:
            if intent not in understanding.INTENTS or intent in _ROLE_INTENTS:
                self.err(path, line, f"intent {intent!r} cannot start a flow")
            elif intent in self.by_intent:
                owner = self.by_intent[intent]
                self.err(path, line, f"intent {intent!r} already starts flow {owner!r}")
            else:
                self.by_intent[intent] = name
        for i, step in enumerate(steps):
            self.check_step(name, path, step, declared, ids)
            for target in targets(step, i, len(steps)):
                if isinstance(target, str) and target != END and target not in ids:
                    self.err(path, step.line, f"goes to unknown step {target!r}")
            step_arms = arms(step)
            for k, arm in enumerate(step_arms):
                self.check_condition(path, arm.line or step.line, arm.if_)
                if arm.else_ is not None and k != len(step_arms) - 1:
                    self.err(path, arm.line or step.line, "`else` must be the last arm")
            if step_arms and step_arms[-1].else_ is None:
                self.err(path, step.line, "branch has no `else`: a caller could fall through")
        self.check_reachable(path, spec, ids)
        self.check_loops(path, spec, ids)
        if not spec.unattended:
            self.check_confirmed(path, spec, ids)
        elif any(isinstance(st, ActionStep) and st.confirm for st in steps):
            self.err(path, spec.line, "confirm: nobody is on the line in an unattended flow")

    def check_step(
        self, flow: str, path: Path, step: Step, declared: dict[str, SlotDecl], ids: dict
    ) -> None:
        line = step.line
        match step:
            case SayStep():
                self.check_template(path, line, step.say, "say")
                self.check_template(path, line, step.empathetic, "empathetic")
            case CollectStep():
                slot_type = self.slot_types.get(step.collect)
                if slot_type is None:
                    self.err(path, line, f"collect: unknown slot {step.collect!r} "
                                         "(declare it under `slots:`)")  # fmt: skip
                elif not SLOT_TYPES[slot_type].collectable:
                    self.err(path, line, f"collect: a {slot_type} slot cannot be asked for")
                for what in ("ask", "reprompt", "empathetic"):
                    self.check_template(path, line, getattr(step, what), what)
                if step.hint and re.search(r"\d", step.hint):
                    self.err(path, line, "hint: no example values in a transcriber hint "
                                         "(tiny.en drops digits after one)")  # fmt: skip
                if step.keypad and slot_type and SLOT_TYPES[slot_type].keypad is None:
                    self.err(path, line, f"keypad: a {slot_type} slot cannot be typed")
                self.check_answers(path, line, step, slot_type, declared.get(step.collect))
            case ActionStep():
                if step.action not in ACTIONS:
                    self.err(path, line, f"unknown action {step.action!r}")
                self.check_template(path, line, step.say_first, "say_first")
                self.check_template(path, line, step.confirm, "confirm")
                if step.on_decline is not None and step.confirm is None:
                    self.err(path, line, "on_decline: only a step with `confirm` can be declined")
            case SetStep():
                for slot in step.set:
                    if slot not in self.slot_types:
                        self.err(path, line, f"set: unknown slot {slot!r}")
            case CallStep():
                if step.call not in self.read.flows:
                    self.err(path, line, f"call: unknown flow {step.call!r}")
                elif step.call == flow:
                    self.err(path, line, "call: a flow cannot call itself")
            case HandoffStep() | EndStep() | BranchStep():
                pass

    def check_answers(
        self, path: Path, line: int, step: CollectStep, slot_type: str | None, decl: Any
    ) -> None:
        """`yes`/`no` name options of the choice asked; `also` names slots that can be heard."""
        if slot_type == "choice" and decl is None:
            self.err(path, line, f"collect: declare the options of {step.collect!r} in this flow")
        options = set(decl.options or {}) if decl is not None else set()
        for word, value in (("yes", step.yes), ("no", step.no)):
            if value is None:
                continue
            if slot_type != "choice":
                self.err(path, line, f"{word}: only a choice slot maps yes or no to an option")
            elif value not in options:
                self.err(path, line, f"{word}: {value!r} is not an option of {step.collect!r}")
        for other in step.also:
            other_type = self.slot_types.get(other)
            if other_type is None or not SLOT_TYPES[other_type].collectable:
                self.err(path, line, f"also: {other!r} is not a slot that can be heard")

    def check_reachable(self, path: Path, spec: FlowFile, ids: dict[str, int]) -> None:
        for i in unreachable(spec.steps, ids):
            step = spec.steps[i]
            label = step.id or f"step {i + 1}"
            self.err(path, step.line, f"step {label!r} can never be reached")

    def check_loops(self, path: Path, spec: FlowFile, ids: dict[str, int]) -> None:
        """A cycle of steps that never waits for the caller would spin forever."""
        steps = spec.steps
        for cycle in busy_loops(steps, ids):
            first = min(cycle)
            names = " → ".join(steps[k].id or f"step {k + 1}" for k in [*cycle, cycle[0]])
            self.err(path, steps[first].line, f"loops forever without asking the caller: {names}")

    def check_confirmed(self, path: Path, spec: FlowFile, ids: dict[str, int]) -> None:
        """Every action that changes the world is confirmed by the caller: it has `confirm`,
        or every way to it passes a confirmed step with no question in between."""
        covered = covered_by_confirmation(spec.steps, ids)
        for i, step in enumerate(spec.steps):
            if not isinstance(step, ActionStep) or step.action not in ACTIONS:
                continue
            if ACTIONS[step.action].changes_world and not confirms(step) and not covered[i]:
                self.err(
                    path,
                    step.line,
                    f"action {step.action!r} changes the world: give it `confirm:` "
                    "(what it will do, asked yes or no)",
                )

    def check_calls(self) -> None:
        graph: dict[str, list[str]] = {}
        for name, (_path, spec) in self.read.flows.items():
            graph[name] = [s.call for s in spec.steps if isinstance(s, CallStep)]
        index = {name: k for k, name in enumerate(graph)}
        names = list(graph)
        edges = {index[n]: [index[c] for c in calls if c in index] for n, calls in graph.items()}
        for cycle in cycles(edges):
            flow_names = [names[k] for k in cycle]
            path, spec = self.read.flows[flow_names[0]]
            chain = " → ".join([*flow_names, flow_names[0]])
            self.err(path, spec.line, f"flows call each other in a loop: {chain}")

    def check_conversation(self) -> None:
        conv = self.read.conversation
        if conv is None:
            return
        path = self.read.directory / CONVERSATION_FILE
        data = self.read.conversation_data
        roles = conv.conversation.roles
        for role in ("start", "goodbye", "handoff", "fallback", "escalation"):
            flow = getattr(roles, role)
            if flow not in self.read.flows:
                line = line_of(data, ["conversation", "roles", role])
                self.err(path, line, f"roles.{role}: unknown flow {flow!r}")
        texts = conv.conversation.model_dump(exclude={"roles", "line", "max_silences"})
        for key, text in texts.items():
            line = line_of(data, ["conversation", key])
            self.check_template(path, line, text, key)
        for intent, text in conv.topics.items():
            line = line_of(data, ["topics", intent])
            if intent not in understanding.TASKS:
                self.err(path, line, f"topics.{intent}: not an intent that starts a procedure")
            self.check_template(path, line, text, f"topics.{intent}")
        for name, text in self.read.sms.items():
            line = self.read.sms_lines.get(name, 0)
            if name not in SMS_FIELDS:
                self.err(path, line, f"sms.{name}: unknown template (known: "
                                     f"{', '.join(sorted(SMS_FIELDS))})")  # fmt: skip
                continue
            try:
                fields = template_fields(text)
            except ExpressionError as exc:
                self.err(path, line, f"sms.{name}: {exc}")
                continue
            for f in fields:
                if f not in SMS_FIELDS[name]:
                    allowed = ", ".join(sorted(SMS_FIELDS[name]))
                    self.err(path, line, f"sms.{name}: unknown field {{{f}}} (use {allowed})")

    def check_faq(self) -> None:
        faq = self.read.faq
        if faq is None:
            return
        path = self.read.directory / FAQ_FILE
        seen: set[str] = set()
        for entry in faq.faq:
            if entry.id in seen:
                self.err(path, entry.line, f"faq {entry.id!r} is defined twice")
            seen.add(entry.id)
            self.check_template(path, entry.line, entry.answer, f"faq {entry.id}: answer")
            for phrase in entry.when:
                if not understanding.normalize(phrase.replace("*", "")):
                    self.err(path, entry.line, f"faq {entry.id}: when: {phrase!r} has no words")
