"""Flows as graphs: every step a node, every way on an edge with its condition, and a broken
directory still read file by file."""

from __future__ import annotations

import textwrap
from pathlib import Path

from dialog.graph import DONE, START, Problem, flow_graph, read_flows
from dialog.loader import load_flows
from dialog.schema import FlowFile
from tests.dialog.test_loader import write


def test_every_shipped_flow_is_a_graph_whose_edges_land_on_its_nodes():
    overview = read_flows()
    loaded = load_flows().flows
    assert overview.valid and overview.other_problems == []
    assert {f.name for f in overview.flows} == set(loaded)
    for source in overview.flows:
        graph = source.graph
        assert graph is not None and source.valid
        keys = [n.key for n in graph.nodes]
        assert len(keys) == len(set(keys))
        assert keys[0] == START
        steps = [n for n in graph.nodes if n.key != START and n.kind not in ("done", "missing")]
        assert len(steps) == len(loaded[source.name].steps)
        assert not [n for n in graph.nodes if n.kind == "missing"]
        for edge in graph.edges:
            assert edge.source in keys and edge.target in keys, (source.name, edge)


def test_branch_conditions_are_on_the_edges_and_calls_link_to_their_flow():
    graph = next(f.graph for f in read_flows().flows if f.name == "returns")
    assert graph is not None
    leaving = {(e.label, e.target) for e in graph.edges if e.source == "#3"}
    assert ("return_eligible", "verify") in leaving
    assert ('denial_reason == "window"', "outside_window") in leaving
    assert ("else", "cannot") in leaving
    assert graph.node("#2").link == "identify_order"
    handoffs = [n for n in graph.nodes if n.kind == "handoff"]
    assert handoffs and all(n.link == "handoff" for n in handoffs)
    assert graph.node("reason").detail == "collect return_reason"
    assert {"identify_order", "verify_caller", "handoff"} <= set(graph.links)
    # `next: end` finishes the flow; a step's line is where the file has it.
    assert any(e.source == "outside_window" and e.target == DONE for e in graph.edges)
    text = graph.path.read_text().splitlines()
    assert text[graph.node("outside_window").line - 1].strip() == "- id: outside_window"


def _spec(yaml_text: str) -> FlowFile:
    import yaml

    return FlowFile.model_validate(yaml.safe_load(textwrap.dedent(yaml_text)))


def test_failures_and_unknown_targets_are_drawn_too():
    spec = _spec(
        """
        flow: tiny
        steps:
          - id: ask
            collect: order_number
            ask: "Which order?"
            on_fail: sorry
          - action: lookup_order
            on_error: sorry
            next:
              - if: order
                then: nowhere
              - else: end
          - id: sorry
            say: "Sorry."
        """
    )
    graph = flow_graph(spec, Path("tiny.yaml"))
    edges = {(e.source, e.target, e.kind, e.label) for e in graph.edges}
    assert (START, "ask", "next", "") in edges
    assert ("ask", "sorry", "fail", "no answer") in edges
    assert ("ask", "#2", "next", "") in edges
    assert ("#2", "sorry", "error", "service failed") in edges
    assert ("#2", "?nowhere", "branch", "order") in edges
    assert ("#2", DONE, "else", "else") in edges
    assert ("sorry", DONE, "next", "") in edges
    assert graph.node("?nowhere").kind == "missing"
    assert graph.node("#2").title == "step 2"
    assert "a person takes over" not in graph.node("ask").text  # it goes to `sorry` instead


def test_a_broken_directory_is_read_file_by_file(flows_dir: Path):
    broken = write(
        flows_dir, "returns.yaml", 'flow: returns\nsteps:\n  - say: "Hi."\n    say: "Again."\n'
    )
    wrong = write(
        flows_dir,
        "late.yaml",
        """
        flow: late
        steps:
          - say: "One moment."
            next: elsewhere
        """,
    )
    overview = read_flows(flows_dir)
    assert not overview.valid
    by_name = {f.name: f for f in overview.flows}
    returns = by_name["returns"]
    assert returns.graph is None and not returns.valid
    assert returns.problems and all(p.file == "returns.yaml" for p in returns.problems)
    assert [(p.line, p.message) for p in returns.problems] == [(4, "duplicate key 'say'")]
    late = by_name["late"]
    assert late.graph is not None and not late.valid  # drawn, with its mistake beside it
    assert [str(p) for p in late.problems] == ["late.yaml:3: goes to unknown step 'elsewhere'"]
    assert late.graph.node("?elsewhere").kind == "missing"
    # A flow that ran `returns` now names a flow that does not load: said where it is called.
    refunds = by_name["refunds"]
    assert any("unknown flow 'returns'" in p.message for p in refunds.problems)
    assert by_name["order_status"].valid and by_name["order_status"].graph is not None
    assert str(broken) not in " ".join(str(p) for p in overview.problems)  # names, not paths
    assert wrong.exists()


def test_mistakes_outside_flow_files_are_kept(flows_dir: Path, tmp_path: Path):
    (flows_dir / "conversation.yaml").unlink()
    overview = read_flows(flows_dir)
    assert [str(p) for p in overview.other_problems] == [
        "conversation.yaml:0: missing conversation file"
    ]
    missing = read_flows(tmp_path / "nowhere")
    assert missing.flows == [] and not missing.valid
    assert missing.other_problems[0].message == "not a directory of flows"


def test_a_file_that_is_not_text_is_named_rather_than_crashing(flows_dir: Path):
    (flows_dir / "scan.yaml").write_bytes(b"\xff\xfe\x00 not text")
    overview = read_flows(flows_dir)
    assert not overview.valid
    scan = next(f for f in overview.flows if f.path.name == "scan.yaml")
    assert [p.line for p in scan.problems] == [0]
    assert scan.problems[0].message.startswith("cannot be read as UTF-8 text")


def test_problem_reads_the_loaders_format():
    directory = Path("/srv/flows")
    problem = Problem.parse("/srv/flows/a.yaml:12: step 'x' can never be reached", directory)
    assert (problem.file, problem.line, problem.message) == (
        "a.yaml",
        12,
        "step 'x' can never be reached",
    )
    assert str(problem) == "a.yaml:12: step 'x' can never be reached"
    assert Problem.parse("something odd", directory) == Problem("", 0, "something odd")
