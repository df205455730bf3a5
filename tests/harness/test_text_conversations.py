"""`postvoice texts`: the shipped text conversations pass through the real SMS route, and a
wrong expectation or a malformed file fails, clearly."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.text_conversations import SHIPPED, format_results, load_texts, markdown, run
from postvoice.cli import app


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(body)
    return path


WISMO = """
category: mine
conversations:
  - name: wismo
    from: "+14155550101"
    messages:
      - text: "hi wheres my order"
        expect: {says: [%s]}
    expect:
      events: [{type: order.looked_up, order: "%s"}]
"""


def test_the_shipped_text_conversations_pass():
    outcomes = run()
    assert outcomes and all(o.ok for o in outcomes), format_results(outcomes, verbose=True)
    categories = {o.category for o in outcomes}
    assert {"orders", "returns", "money", "deliveries", "keywords"} <= categories
    names = {o.name for o in outcomes}
    assert {"return-earbuds-typos", "alert-reply-friday-works", "stop-then-a-question"} <= names
    assert all(o.exchange for o in outcomes)
    xfails = [o for o in outcomes if o.xfail]
    assert all(o.status == "xfail" and not o.passed for o in xfails)  # never counted as passed
    page = markdown(outcomes)
    assert "> **typed:** yes, Friday works" in page and "sig=…" in page


def test_a_wrong_expectation_fails_and_says_why(tmp_path):
    (right,) = run(write(tmp_path, WISMO % ('"linen shirt"', "1001")))
    assert right.status == "passed"
    (wrong,) = run(write(tmp_path, WISMO % ('"espresso machine"', "1003")))
    assert wrong.status == "failed" and not wrong.ok
    assert any("does not contain 'espresso machine'" in f for f in wrong.failures)
    assert any("no event matching" in f and "1003" in f for f in wrong.failures)
    assert "FAILED mine/wismo" in format_results([wrong])


def test_a_known_failure_that_passes_is_reported_and_fails_the_run(tmp_path):
    body = WISMO % ('"linen shirt"', "1001") + '    xfail: "thought broken"\n'
    (outcome,) = run(write(tmp_path, body))
    assert outcome.status == "xpass" and not outcome.ok and not outcome.passed


def test_the_command_exits_1_on_a_failure_and_writes_the_transcript(tmp_path):
    page = tmp_path / "out.md"
    target = write(tmp_path, WISMO % ('"espresso machine"', "1001"))
    result = CliRunner().invoke(app, ["texts", str(target), "--verbose", "--markdown", str(page)])
    assert result.exit_code == 1
    assert "FAILED mine/wismo" in result.output and "typed: hi wheres my order" in result.output
    assert "linen shirt" in page.read_text()
    ok = write(tmp_path, WISMO % ('"linen shirt"', "1001"))
    assert CliRunner().invoke(app, ["texts", str(ok)]).exit_code == 0


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("category: x\nconversations:\n  - name: a\n    from: '+14155550101'\n", "messages"),
        (
            "category: x\nconversations:\n  - name: a\n    from: '+14155550101'\n"
            "    messages: [{text: hi, expect: {say: [x]}}]\n",
            "say",
        ),
        (
            "category: x\nconversations:\n  - name: a\n    from: 'maria'\n"
            "    messages: [{text: hi}]\n",
            "from",
        ),
    ],
)
def test_a_malformed_file_is_refused_naming_the_file_and_the_field(tmp_path, body, says):
    path = write(tmp_path, body)
    with pytest.raises(ValueError) as exc:
        load_texts(path)
    assert str(path) in str(exc.value) and says in str(exc.value)


def test_names_are_unique_across_the_files(tmp_path):
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(WISMO % ('"x"', "1001"))
    with pytest.raises(ValueError, match="is also in"):
        load_texts(tmp_path)
    assert load_texts(SHIPPED)
