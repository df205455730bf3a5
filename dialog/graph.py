"""A flow as a graph: its steps as nodes, every way control can go as a labelled edge.

Text only (no drawing, no HTTP): `voice.dashboard.flowsvg` lays it out. `flow_graph` turns
one validated flow file into a `FlowGraph`; `read_flows` does it for every file of a flows
directory and attaches the loader's mistakes ("file:line: message") to the file they are in, so
a directory with one broken file still shows every other flow — and the broken one's errors.

The edges follow the engine exactly (`dialog.loader` checks the same targets): a `branch`'s
arms and a `next:` list are edges labelled with their condition (`else` for the last arm); a
plain `next` or the following step is an unlabelled edge; `on_fail` of a `collect` and
`on_error` of an `action` are edges when they name a step (by default a failing `collect` hands
the caller to a person and a failing `action` apologises and hands over — said in the node).
`end` and `handoff` steps have no edge out; `call` and `handoff` steps link to the flow they run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from dialog.flow_files import CONVERSATION_FILE, FAQ_FILE
from dialog.loader import DEFAULT_FLOWS, read_and_check
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
    Step,
)
from dialog.yaml_lines import LineDict, YamlError, load_yaml

_NOT_FLOWS = (CONVERSATION_FILE, FAQ_FILE)  # beside the flows, but not procedures

__all__ = [
    "DONE",
    "START",
    "Edge",
    "FlowGraph",
    "FlowSource",
    "FlowsOverview",
    "Node",
    "Problem",
    "flow_graph",
    "read_flows",
]

START = "@start"
"""The key of the node every graph starts from (the flow itself, with its intents)."""

DONE = "@end"
"""The key of the node `next: end` (and the last step) goes to: the flow is finished."""

_END_WORDS = {
    "flow": "flow done: anything else?",
    "listen": "wait for a new request",
    "call": "hang up",
}


@dataclass(frozen=True)
class Node:
    """One step (or the start, the end, a missing target) of a flow."""

    key: str  # unique in its graph: the step id, "#3" for the third step without one, "@end"
    kind: str  # a step kind (say, collect, …), or start, done, missing
    title: str  # the step id, or "step 3"
    detail: str  # what it does, in a few words: "collect order_number", "call identify_order"
    text: str = ""  # the longer story for a tooltip: words said, the question asked, …
    line: int = 0
    link: str | None = None  # the flow this step runs or hands the caller to


@dataclass(frozen=True)
class Edge:
    """Control can go from `source` to `target`; `label` is the condition, if any."""

    source: str
    target: str
    label: str = ""
    kind: str = "next"  # next, branch, else, fail, error


@dataclass(frozen=True)
class FlowGraph:
    """One flow's nodes (the start first, then the steps in file order) and edges."""

    name: str
    description: str
    intents: list[str]
    path: Path
    nodes: list[Node]
    edges: list[Edge]

    def node(self, key: str) -> Node:
        """The node with this key."""
        for node in self.nodes:
            if node.key == key:
                return node
        raise KeyError(key)

    @property
    def links(self) -> list[str]:
        """The other flows this one runs or hands over to, in order, once each."""
        return list(dict.fromkeys(n.link for n in self.nodes if n.link))


def _key(step: Step, i: int) -> str:
    return step.id or f"#{i + 1}"


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _step_node(step: Step, i: int, handoff_flow: str) -> Node:
    key, title = _key(step, i), step.id or f"step {i + 1}"
    match step:
        case SayStep():
            text = step.say + (f"\nWhen upset: {step.empathetic}" if step.empathetic else "")
            return Node(key, "say", title, f'say "{_clip(step.say, 60)}"', text, step.line)
        case CollectStep():
            how = " (voice or keypad)" if step.keypad else ""
            fails = "a person takes over" if step.on_fail == "handoff" else f"go to {step.on_fail}"
            text = (
                f"Ask: {step.ask}\n"
                + (f"Again: {step.reprompt}\n" if step.reprompt else "")
                + f"After {step.max_attempts} tries without an answer: {fails}"
            )
            return Node(key, "collect", title, f"collect {step.collect}{how}", text, step.line)
        case ActionStep():
            fails = (
                "apologise, a person takes over"
                if step.on_error in (None, "handoff")
                else f"go to {step.on_error}"
            )
            text = (f"First says: {step.say_first}\n" if step.say_first else "") + (
                f"If a service fails: {fails}"
            )
            return Node(key, "action", title, f"action {step.action}", text, step.line)
        case BranchStep():
            arms = "\n".join(
                f"if {arm.if_} → {arm.target}" if arm.if_ else f"else → {arm.target}"
                for arm in step.branch
            )
            return Node(key, "branch", title, f"branch ({len(step.branch)} ways)", arms, step.line)
        case SetStep():
            pairs = ", ".join(f"{k} = {v}" for k, v in step.set.items())
            return Node(key, "set", title, f"set {_clip(pairs, 60)}", pairs, step.line)
        case CallStep():
            text = f"Runs the flow {step.call}, then carries on here."
            return Node(key, "call", title, f"call {step.call}", text, step.line, link=step.call)
        case EndStep():
            words = _END_WORDS[step.end]
            if step.end == "call":
                words = f"{words} ({step.reason})"
            return Node(key, "end", title, f"end: {words}", words, step.line)
        case HandoffStep():
            text = f"Hands the caller to a person (reason: {step.handoff}) through {handoff_flow}."
            return Node(
                key, "handoff", title, f"handoff: {step.handoff}", text, step.line, handoff_flow
            )
    raise TypeError(f"not a step: {step!r}")  # pragma: no cover - the schema has no other kind


def flow_graph(spec: FlowFile, path: Path, *, handoff_flow: str = "handoff") -> FlowGraph:
    """The graph of one flow file that passed the schema (its targets may still be wrong:
    a step that does not exist becomes a `missing` node)."""
    steps = spec.steps
    ids = {s.id: i for i, s in enumerate(steps) if s.id}
    intents = ", ".join(spec.intents)
    start = Node(
        START,
        "start",
        spec.flow,
        f"intents: {intents}" if intents else "run by other flows",
        spec.description,
        spec.line,
    )
    nodes = [start] + [_step_node(step, i, handoff_flow) for i, step in enumerate(steps)]
    edges = [Edge(START, _key(steps[0], 0))]
    extra: dict[str, Node] = {}

    def target(name: str) -> str:
        if name == END:
            extra.setdefault(DONE, Node(DONE, "done", "end", "flow done", "The flow is finished."))
            return DONE
        if name in ids:
            return _key(steps[ids[name]], ids[name])
        key = f"?{name}"
        extra.setdefault(key, Node(key, "missing", name, "no such step", f"No step {name!r}."))
        return key

    for i, step in enumerate(steps):
        source = _key(step, i)
        arms = step.branch if isinstance(step, BranchStep) else None
        if arms is None and isinstance(step.next, list):
            arms = step.next
        if isinstance(step, CollectStep) and step.on_fail != "handoff":
            edges.append(Edge(source, target(step.on_fail), "no answer", "fail"))
        if isinstance(step, ActionStep) and step.on_error not in (None, "handoff"):
            edges.append(Edge(source, target(step.on_error), "service failed", "error"))
        if isinstance(step, EndStep | HandoffStep):
            continue
        if arms is not None:
            for arm in arms:
                if arm.if_ is not None:
                    edges.append(Edge(source, target(arm.target), arm.if_, "branch"))
                else:
                    edges.append(Edge(source, target(arm.target), "else", "else"))
        elif isinstance(step.next, str):
            edges.append(Edge(source, target(step.next)))
        elif i + 1 < len(steps):
            edges.append(Edge(source, _key(steps[i + 1], i + 1)))
        else:
            edges.append(Edge(source, target(END)))
    return FlowGraph(
        name=spec.flow,
        description=spec.description,
        intents=list(spec.intents),
        path=path,
        nodes=nodes + list(extra.values()),
        edges=edges,
    )


# --- a whole directory ---------------------------------------------------------------------------


_WHERE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<message>.*)$", re.DOTALL)


@dataclass(frozen=True)
class Problem:
    """One mistake the loader found: the file (relative to the flows directory when inside
    it), the line (0 when it is about the whole file) and what is wrong."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"

    @classmethod
    def parse(cls, error: str, directory: Path) -> Problem:
        """From the loader's "file:line: message"."""
        match = _WHERE.match(error)
        if match is None:
            return cls("", 0, error)
        file = Path(match["file"])
        try:
            shown = str(file.relative_to(directory)) if file != directory else str(file)
        except ValueError:
            shown = str(file)
        return cls(shown, int(match["line"]), match["message"])


@dataclass(frozen=True)
class FlowSource:
    """One flow file: its graph when it could be read, and the mistakes found in it."""

    path: Path
    name: str  # the flow's name; the file's stem when the file says none
    graph: FlowGraph | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """Whether the loader found nothing wrong in this file."""
        return not self.problems and self.graph is not None


@dataclass(frozen=True)
class FlowsOverview:
    """Every flow file of a directory, and the mistakes that are in no flow file (the
    conversation file, a missing directory)."""

    directory: Path
    flows: list[FlowSource]
    other_problems: list[Problem]
    handoff_flow: str

    @property
    def problems(self) -> list[Problem]:
        """Every mistake, in the files' order."""
        return [p for f in self.flows for p in f.problems] + self.other_problems

    @property
    def valid(self) -> bool:
        """Whether the directory loads: no mistake anywhere."""
        return not self.problems


def _declared_name(path: Path) -> str:
    """The `flow:` a file declares, even when the rest of it is wrong; else its stem."""
    try:
        data = load_yaml(path)
    except YamlError:
        return path.stem
    name = data.get("flow") if isinstance(data, LineDict) else None
    return name if isinstance(name, str) and re.fullmatch(r"[a-z][a-z0-9_]*", name) else path.stem


def read_flows(directory: Path | None = None) -> FlowsOverview:
    """Every flow of `directory` (the shipped flows by default) as a graph, with the mistakes
    `postvoice flows check` would print, each attached to its file. Never raises for a broken
    file: that file has no graph, and its problems say why."""
    directory = Path(directory) if directory else DEFAULT_FLOWS
    try:
        read, _checker = read_and_check(directory)
    except Exception as exc:  # the loader gave up on the directory: say so, never crash
        return _unchecked(directory, exc)
    roles = read.conversation.conversation.roles if read.conversation else None
    handoff_flow = roles.handoff if roles else "handoff"
    problems = [Problem.parse(e, directory) for e in dict.fromkeys(read.errors)]
    specs = {path.resolve(): spec for path, spec in read.flows.values()}
    flows: list[FlowSource] = []
    seen: set[str] = set()
    paths = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    for path in paths:
        if path.name in _NOT_FLOWS:
            continue
        shown = path.name
        mine = [p for p in problems if p.file == shown]
        seen.add(shown)
        spec = specs.get(path.resolve())
        graph = flow_graph(spec, path, handoff_flow=handoff_flow) if spec is not None else None
        name = spec.flow if spec is not None else _declared_name(path)
        flows.append(FlowSource(path=path, name=name, graph=graph, problems=mine))
    other = [p for p in problems if p.file not in seen]
    return FlowsOverview(
        directory=directory, flows=flows, other_problems=other, handoff_flow=handoff_flow
    )


def _unchecked(directory: Path, exc: Exception) -> FlowsOverview:
    """What can be said of a directory the loader could not check: which files are not
    text it can read (the usual cause), else the loader's own complaint."""
    paths = sorted(p for p in directory.glob("*.yaml") if p.name not in _NOT_FLOWS)
    problems: list[Problem] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            problems.append(Problem(path.name, 0, f"cannot be read as UTF-8 text: {error}"))
    if not problems:
        problems.append(Problem(str(directory), 0, f"the flows could not be checked: {exc!r}"))
    flows = [
        FlowSource(path, path.stem, None, [p for p in problems if p.file == path.name])
        for path in paths
    ]
    named = {path.name for path in paths}
    return FlowsOverview(
        directory=directory,
        flows=flows,
        other_problems=[p for p in problems if p.file not in named],
        handoff_flow="handoff",
    )
