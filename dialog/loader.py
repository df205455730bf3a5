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

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from dialog.flow_checks import FlowChecker
from dialog.flow_files import FlowFiles, read_dir
from dialog.schema import Conversation, FaqEntry, FlowFile, SlotDecl, Step
from dialog.wording import for_screen

__all__ = [
    "DEFAULT_FLOWS",
    "Flow",
    "FlowError",
    "Flows",
    "check_flows",
    "load_flows",
    "read_and_check",
]

DEFAULT_FLOWS = Path(__file__).with_name("flows")
"""The flows shipped with postvoice."""


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

    @cached_property
    def on_screen(self) -> Flows:
        """The same flows with every line in its text wording, for text messages
        (`dialog.wording`)."""
        return for_screen(self)

    def for_intent(self, intent: str) -> Flow | None:
        """The flow an intent starts, if any."""
        name = self.by_intent.get(intent)
        return self.flows[name] if name else None


def read_and_check(directory: Path) -> tuple[FlowFiles, FlowChecker]:
    """Read every file of a flows directory and check it; never raises for a mistake in a file
    (they are in `read.errors`). For tools that show flows as they are, broken ones included."""
    read = read_dir(directory)
    checker = FlowChecker(read)
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
