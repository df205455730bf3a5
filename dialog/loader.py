"""Loading and checking flow files: schema first, then the graph, every error at file:line.

`load_flows(dir)` reads `conversation.yaml` and every other `*.yaml` in the directory (one
procedure each), validates each against `dialog.schema`, then checks what a schema cannot:

- every action is registered and every slot is known (declared by a flow, set by an action,
  or provided by the engine), with a type a `collect` can hear;
- every `next`, branch arm, `on_fail`, `on_error` and `call` names something that exists;
- every branch ends with `else` (a caller can never fall through);
- every step is reachable from the first;
- no loop runs without asking the caller something, and no flows call each other in a circle;
- no reply template reads out a URL, and no transcriber hint holds an example number.

`check_flows(dir)` returns the errors as "file:line: message" strings instead of raising.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dialog import understanding
from dialog.actions import ACTIONS
from dialog.expressions import Condition, ExpressionError, template_fields
from dialog.schema import (
    END,
    ActionStep,
    BranchStep,
    CallStep,
    CollectStep,
    Conversation,
    ConversationFile,
    EndStep,
    FaqEntry,
    FaqFile,
    FlowFile,
    HandoffStep,
    SayStep,
    SetStep,
    SlotDecl,
    Step,
)
from dialog.slots import SLOT_TYPES
from dialog.yaml_lines import LineDict, LineList, YamlError, line_of, load_yaml

__all__ = [
    "BUILTIN_SLOTS",
    "DEFAULT_FLOWS",
    "SMS_FIELDS",
    "Flow",
    "FlowError",
    "Flows",
    "check_flows",
    "load_flows",
    "read_and_check",
]

DEFAULT_FLOWS = Path(__file__).with_name("flows")
"""The flows shipped with postvoice."""

CONVERSATION_FILE = "conversation.yaml"
FAQ_FILE = "faq.yaml"

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
    "misses": "number",
    "too_many_misses": "bool",
    "courtesy_reason": "text",
    "ticket_reason": "text",
    "claim_kind": "text",
    "refund_reason": "text",
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
    }.items()
}
"""The SMS templates `conversation.yaml` may define, and the fields each may use."""

_URL = re.compile(r"https?://|www\.|\.(com|org|net|io)\b", re.IGNORECASE)
_ROLE_INTENTS = {"human", "goodbye", "yes", "no", "unknown"}


class FlowError(ValueError):
    """Flow files with mistakes; `errors` are "file:line: message" strings."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Flow:
    """One loaded procedure: its file, its steps, and where each step id points."""

    name: str
    path: Path
    spec: FlowFile
    index: dict[str, int]

    @property
    def steps(self) -> list[Step]:
        """The steps in order."""
        return self.spec.steps

    @cached_property
    def slots(self) -> dict[str, SlotDecl]:
        """The slots this flow declares."""
        return self.spec.slot_decls()

    def step_id(self, i: int) -> str:
        """A step's id, or its position ("step 3") when it has none."""
        return self.spec.steps[i].id or f"step {i + 1}"

    def where(self, i: int) -> str:
        """ "file:line" of step `i`."""
        return f"{self.path}:{self.spec.steps[i].line}"


@dataclass(frozen=True)
class Flows:
    """Every flow of a directory, the conversation's words, and the slot types in use."""

    directory: Path
    flows: dict[str, Flow]
    conversation: Conversation
    sms: dict[str, str]
    slot_types: dict[str, str]
    by_intent: dict[str, str] = field(default_factory=dict)
    faq: tuple[FaqEntry, ...] = ()
    topics: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Flow:
        return self.flows[name]

    def __contains__(self, name: object) -> bool:
        return name in self.flows

    def for_intent(self, intent: str) -> Flow | None:
        """The flow an intent starts, if any."""
        name = self.by_intent.get(intent)
        return self.flows[name] if name else None


# --- reading -----------------------------------------------------------------------------------


def _mark_lines(data: Any) -> None:
    """Copy each mapping's line into a `__line__` key where the schema expects one."""
    if isinstance(data, LineDict):
        data["__line__"] = data.line


def _prepare_flow(data: LineDict) -> None:
    _mark_lines(data)
    steps = data.get("steps")
    if isinstance(steps, LineList):
        for step in steps:
            _mark_lines(step)
            if isinstance(step, LineDict):
                for key in ("branch", "next"):
                    arms = step.get(key)
                    if isinstance(arms, LineList):
                        for arm in arms:
                            _mark_lines(arm)
    slots = data.get("slots")
    if isinstance(slots, LineDict):
        for decl in slots.values():
            _mark_lines(decl)


def _schema_errors(path: Path, data: Any, exc: ValidationError) -> list[str]:
    errors = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p[:1].isupper())]
        where = ".".join(str(p) for p in loc if p not in ("say", "collect", "action", "branch"))
        msg = err["msg"].removeprefix("Value error, ")
        line = line_of(data, loc)
        errors.append(f"{path}:{line}: {where + ': ' if where else ''}{msg}")
    return errors


@dataclass
class _Read:
    directory: Path
    flows: dict[str, tuple[Path, FlowFile]] = field(default_factory=dict)
    raw: dict[str, LineDict] = field(default_factory=dict)
    conversation: ConversationFile | None = None
    conversation_data: Any = None
    sms: dict[str, str] = field(default_factory=dict)
    sms_lines: dict[str, int] = field(default_factory=dict)
    faq: FaqFile | None = None
    faq_data: Any = None
    errors: list[str] = field(default_factory=list)


def _read_mapping(path: Path, key: str, what: str, read: _Read) -> LineDict | None:
    """A YAML file that must be a mapping starting with `key:`; its mistakes go to `read`."""
    try:
        data = load_yaml(path)
    except YamlError as exc:
        read.errors.append(f"{path}:{exc.line}: {exc}")
        return None
    if not isinstance(data, LineDict) or key not in data:
        read.errors.append(f"{path}:1: the {what} file starts with `{key}:`")
        return None
    return data


def _read_conversation(path: Path, read: _Read) -> None:
    data = _read_mapping(path, "conversation", "conversation", read)
    if data is None:
        return
    sms = data.pop("sms", None)
    if isinstance(sms, LineDict):
        for name, text in sms.items():
            if not isinstance(text, str):
                read.errors.append(f"{path}:{sms.line_for(name)}: sms.{name}: must be text")
                continue
            read.sms[name] = text
            read.sms_lines[name] = sms.line_for(name)
    elif sms is not None:
        read.errors.append(f"{path}:{data.line}: sms: must map template names to text")
    _mark_lines(data)
    _mark_lines(data.get("conversation"))
    try:
        read.conversation = ConversationFile.model_validate(data)
        read.conversation_data = data
    except ValidationError as exc:
        read.errors.extend(_schema_errors(path, data, exc))


def _read_faq(path: Path, read: _Read) -> None:
    data = _read_mapping(path, "faq", "FAQ", read)
    if data is None:
        return
    _mark_lines(data)
    entries = data.get("faq")
    if isinstance(entries, LineList):
        for entry in entries:
            _mark_lines(entry)
    try:
        read.faq = FaqFile.model_validate(data)
        read.faq_data = data
    except ValidationError as exc:
        read.errors.extend(_schema_errors(path, data, exc))


def _read_dir(directory: Path) -> _Read:
    read = _Read(directory)
    if not directory.is_dir():
        read.errors.append(f"{directory}:0: not a directory of flows")
        return read
    for path in sorted(directory.glob("*.yaml")):
        if path.name == CONVERSATION_FILE:
            _read_conversation(path, read)
            continue
        if path.name == FAQ_FILE:
            _read_faq(path, read)
            continue
        try:
            data = load_yaml(path)
        except YamlError as exc:
            read.errors.append(f"{path}:{exc.line}: {exc}")
            continue
        if not isinstance(data, LineDict):
            read.errors.append(f"{path}:1: a flow file is a mapping starting with `flow:`")
            continue
        _prepare_flow(data)
        try:
            spec = FlowFile.model_validate(data)
        except ValidationError as exc:
            read.errors.extend(_schema_errors(path, data, exc))
            continue
        if spec.flow in read.flows:
            other = read.flows[spec.flow][0]
            read.errors.append(f"{path}:{spec.line}: flow {spec.flow!r} is also defined in {other}")
            continue
        read.flows[spec.flow] = (path, spec)
        read.raw[spec.flow] = data
    if read.conversation is None and not any(CONVERSATION_FILE in e for e in read.errors):
        read.errors.append(f"{directory / CONVERSATION_FILE}:0: missing conversation file")
    return read


# --- graph checks ------------------------------------------------------------------------------


def _targets(step: Step, i: int, count: int) -> Iterator[str | int]:
    """Where control can go after step `i`: step ids, END, or the next position."""
    if isinstance(step, BranchStep):
        for arm in step.branch:
            yield arm.target
        return
    if isinstance(step, EndStep | HandoffStep):
        return
    if isinstance(step, CollectStep) and step.on_fail != "handoff":
        yield step.on_fail
    if isinstance(step, ActionStep) and step.on_error not in (None, "handoff"):
        yield step.on_error  # type: ignore[misc]
    if isinstance(step, ActionStep) and step.on_decline is not None:
        yield step.on_decline
    if isinstance(step.next, list):
        for arm in step.next:
            yield arm.target
    elif isinstance(step.next, str):
        yield step.next
    else:
        yield i + 1 if i + 1 < count else END


def _arms(step: Step) -> list[Any]:
    if isinstance(step, BranchStep):
        return list(step.branch)
    return list(step.next) if isinstance(step.next, list) else []


class _Checker:
    def __init__(self, read: _Read) -> None:
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
        if not text:
            return
        if _URL.search(text):
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
            for target in _targets(step, i, len(steps)):
                if isinstance(target, str) and target != END and target not in ids:
                    self.err(path, step.line, f"goes to unknown step {target!r}")
            arms = _arms(step)
            for k, arm in enumerate(arms):
                self.check_condition(path, arm.line or step.line, arm.if_)
                if arm.else_ is not None and k != len(arms) - 1:
                    self.err(path, arm.line or step.line, "`else` must be the last arm")
            if arms and arms[-1].else_ is None:
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
        steps = spec.steps
        seen = {0}
        todo = [0]
        while todo:
            i = todo.pop()
            for target in _targets(steps[i], i, len(steps)):
                j = ids.get(target) if isinstance(target, str) else target
                if j is not None and j != END and j not in seen and j < len(steps):
                    seen.add(j)
                    todo.append(j)
        for i, step in enumerate(steps):
            if i not in seen:
                label = step.id or f"step {i + 1}"
                self.err(path, step.line, f"step {label!r} can never be reached")

    def check_loops(self, path: Path, spec: FlowFile, ids: dict[str, int]) -> None:
        """A cycle of steps that never waits for the caller would spin forever."""
        steps = spec.steps
        edges: dict[int, list[int]] = {}
        for i, step in enumerate(steps):
            if isinstance(step, CollectStep):
                continue  # waiting for the caller breaks any loop through here
            out = []
            for target in _targets(step, i, len(steps)):
                j = ids.get(target) if isinstance(target, str) else target
                if isinstance(j, int) and j < len(steps) and not isinstance(steps[j], CollectStep):
                    out.append(j)
            edges[i] = out
        for cycle in _cycles(edges):
            first = min(cycle)
            names = " → ".join(steps[k].id or f"step {k + 1}" for k in [*cycle, cycle[0]])
            self.err(path, steps[first].line, f"loops forever without asking the caller: {names}")

    def check_confirmed(self, path: Path, spec: FlowFile, ids: dict[str, int]) -> None:
        """Every action that changes the world is confirmed by the caller: it has `confirm`,
        or every way to it passes a confirmed step with no question in between."""
        steps = spec.steps
        preds: dict[int, list[int]] = {i: [] for i in range(len(steps))}
        for i, step in enumerate(steps):
            for target in _targets(step, i, len(steps)):
                j = ids.get(target) if isinstance(target, str) else target
                if isinstance(j, int) and j < len(steps):
                    preds[j].append(i)

        def confirms(step: Step) -> bool:
            return isinstance(step, ActionStep) and step.confirm is not None

        # Greatest fixpoint: covered[i] holds when control arrives at step i only through
        # confirmed steps with no question since.
        covered = [True] * len(steps)
        covered[0] = False
        changed = True
        while changed:
            changed = False
            for i in range(1, len(steps)):
                value = bool(preds[i]) and all(
                    confirms(steps[p]) or (covered[p] and not isinstance(steps[p], CollectStep))
                    for p in preds[i]
                )
                if value != covered[i]:
                    covered[i] = value
                    changed = True
        for i, step in enumerate(steps):
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
        for cycle in _cycles(edges):
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


def _cycles(edges: dict[int, list[int]]) -> list[list[int]]:
    """Strongly connected components that form a cycle (Tarjan), each in visiting order."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    found: list[list[int]] = []
    counter = [0]

    def visit(v: int) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, []):
                found.append(sorted(component))

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def read_and_check(directory: Path) -> tuple[_Read, _Checker]:
    """Read every file of a flows directory and check it; never raises for a mistake in a file
    (they are in `read.errors`). For tools that show flows as they are, broken ones included."""
    read = _read_dir(directory)
    checker = _Checker(read)
    checker.collect_slot_types()
    for name, (path, spec) in read.flows.items():
        checker.check_flow(name, path, spec)
    checker.check_calls()
    checker.check_conversation()
    checker.check_faq()
    return read, checker


def check_flows(directory: Path | None = None) -> list[str]:
    """Every mistake in a flows directory, as "file:line: message"; empty when all is sound."""
    read, _checker = read_and_check(Path(directory) if directory else DEFAULT_FLOWS)
    return list(dict.fromkeys(read.errors))


def load_flows(directory: Path | None = None) -> Flows:
    """Load and check a flows directory (the shipped one by default); raises `FlowError`."""
    path = Path(directory) if directory else DEFAULT_FLOWS
    read, checker = read_and_check(path)
    if read.errors or read.conversation is None:
        raise FlowError(list(dict.fromkeys(read.errors)) or [f"{path}:0: no conversation file"])
    flows = {}
    for name, (file, spec) in read.flows.items():
        index = {s.id: i for i, s in enumerate(spec.steps) if s.id}
        flows[name] = Flow(name, file, spec, index)
    return Flows(
        directory=path,
        flows=flows,
        conversation=read.conversation.conversation,
        sms=dict(read.sms),
        slot_types=checker.slot_types,
        by_intent=dict(checker.by_intent),
        faq=tuple(read.faq.faq) if read.faq else (),
        topics=dict(read.conversation.topics),
    )
