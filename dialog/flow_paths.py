"""Where control can go in a flow, and what that means: unreachable steps, loops that never
wait for the caller, and which steps are only ever reached straight from a confirmed action.

Positions only, no wording: `dialog.flow_checks` turns what these find into "file:line:
message" mistakes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from dialog.schema import (
    END,
    ActionStep,
    BranchStep,
    CollectStep,
    EndStep,
    HandoffStep,
    Step,
)

__all__ = [
    "arms",
    "busy_loops",
    "confirms",
    "covered_by_confirmation",
    "cycles",
    "targets",
    "unreachable",
]


def targets(step: Step, i: int, count: int) -> Iterator[str | int]:
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


def arms(step: Step) -> list[Any]:
    """The conditional arms of a step: a `branch`'s, or a `next:` list's."""
    if isinstance(step, BranchStep):
        return list(step.branch)
    return list(step.next) if isinstance(step.next, list) else []


def _next_positions(steps: Sequence[Step], i: int, ids: dict[str, int]) -> Iterator[int]:
    """The positions control can go to after step `i` (ids resolved; END and unknown ids,
    which lead nowhere in the flow, left out)."""
    for target in targets(steps[i], i, len(steps)):
        j = ids.get(target) if isinstance(target, str) else target
        if isinstance(j, int) and j < len(steps):
            yield j


def unreachable(steps: Sequence[Step], ids: dict[str, int]) -> list[int]:
    """The positions of the steps no way from the first step leads to, in order."""
    seen = {0}
    todo = [0]
    while todo:
        i = todo.pop()
        for j in _next_positions(steps, i, ids):
            if j not in seen:
                seen.add(j)
                todo.append(j)
    return [i for i in range(len(steps)) if i not in seen]


def busy_loops(steps: Sequence[Step], ids: dict[str, int]) -> list[list[int]]:
    """The cycles of steps that never wait for the caller (they would spin forever)."""
    edges: dict[int, list[int]] = {}
    for i, step in enumerate(steps):
        if isinstance(step, CollectStep):
            continue  # waiting for the caller breaks any loop through here
        edges[i] = [
            j for j in _next_positions(steps, i, ids) if not isinstance(steps[j], CollectStep)
        ]
    return cycles(edges)


def confirms(step: Step) -> bool:
    """Whether the step asks the caller to confirm what it does."""
    return isinstance(step, ActionStep) and step.confirm is not None


def covered_by_confirmation(steps: Sequence[Step], ids: dict[str, int]) -> list[bool]:
    """For each position, whether control arrives there only through confirmed steps with no
    question since (so an action there was agreed to already)."""
    preds: dict[int, list[int]] = {i: [] for i in range(len(steps))}
    for i in range(len(steps)):
        for j in _next_positions(steps, i, ids):
            preds[j].append(i)
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
    return covered


def cycles(edges: dict[int, list[int]]) -> list[list[int]]:
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
