"""`postvoice replay`: play Twilio's part over a real WebSocket and check what the agent does.

The replayer does what Twilio does: it posts the signed voice webhook, reads the TwiML, opens
the media socket with the token from `<Parameter>`, streams caller audio in 20 ms µ-law
frames, plays the agent's audio into a buffer and echoes each `mark` when playback reaches it,
and honours `clear`. Each caller turn starts once the agent's reply to the previous one has
been heard to its end (the `r<reply>:<ms>` mark of `voice.call`).

Call time runs on a clock that is the wall clock in `--realtime` mode; otherwise caller audio
is sent as fast as the socket takes it and the agent's audio counts as played as soon as it
arrives, so only processing time is spent waiting.

On an outbound scenario the callee speaks first, as a person picking up does: a first `say:` or
`silence:` turn is their opening ("Hello?", or nothing), and the agent's greeting answers it.
A scenario that starts otherwise (e.g. with `text:` answers) gets a silent pick-up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from harness.fake_twilio import CallState, FakeTwilio, connect
from harness.scenario import Scenario, Turn, check_expectations, load_scenario, scenario_files
from harness.target import ReplayTarget, target_for
from voice import twilio
from voice.audio import SAMPLE_RATE, read_wav, write_wav

if TYPE_CHECKING:
    from harness.callers import CallerVoice
    from harness.checks import Checks
    from voice.settings import Settings

__all__ = [
    "CallResult",
    "answering",
    "call_scenario",
    "play_turn",
    "replay_recording",
    "replay_scenario",
    "run_target",
    "take_turn",
]

log = logging.getLogger(__name__)

SILENT_PICKUP_S = 2.0  # more than the agent waits (voice.turns.OPENING_SILENCE_S) before greeting

# --- one scenario -----------------------------------------------------------------------------


async def _open_call(
    client: httpx.AsyncClient, target: ReplayTarget, scenario: Scenario
) -> twilio.StreamParams:
    """POST the voice webhook as Twilio would and read the stream from the TwiML."""
    call_sid = "CA" + uuid.uuid4().hex
    form = {
        "CallSid": call_sid,
        "AccountSid": "AC" + "0" * 32,
        "From": scenario.from_,
        "To": scenario.to,
        "Direction": "outbound-api" if scenario.direction == "outbound" else "inbound",
        "CallStatus": "in-progress" if scenario.direction == "outbound" else "ringing",
    }
    path = "/twilio/voice"
    if scenario.direction == "outbound":
        query = f"purpose={scenario.purpose or ''}&order={scenario.order or ''}"
        path += "?" + query
    headers = {}
    if target.auth_token:
        signed_url = target.public_url.rstrip("/") + path
        headers["X-Twilio-Signature"] = twilio.compute_signature(
            target.auth_token, signed_url, form
        )
    response = await client.post(target.http_base + path, data=form, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"voice webhook answered {response.status_code}: {response.text[:200]}")
    _url, parameters = twilio.parse_stream_twiml(response.text)
    return twilio.StreamParams(
        call_sid=call_sid,
        stream_sid="MZ" + uuid.uuid4().hex,
        account_sid=form["AccountSid"],
        custom_parameters=parameters,
    )


async def play_turn(call: FakeTwilio, turn: Turn) -> int:
    """Play one caller turn; returns the call time its input started at."""
    if turn.say is not None:
        return await call.play(read_wav(turn.say))
    if turn.barge_in is not None:
        return await call.barge_in(read_wav(turn.barge_in))
    if turn.text is not None:
        return await call.text(turn.text)
    if turn.dtmf is not None:
        return await call.dtmf(turn.dtmf)
    return await call.silence(turn.silence or 0.0)


async def take_turn(call: FakeTwilio, turn: Turn) -> int:
    """Play one caller turn; the call time to wait for a reply to (-1: none is owed). Silence
    may or may not draw a reprompt: one that has begun is waited for."""
    at = await play_turn(call, turn)
    if turn.silence is None:
        return at
    if not await call.wait_reply(at, timeout_s=1.5) and call.reply_pending():
        await call.wait_reply(at)
    return -1


async def _pick_up(call: FakeTwilio, turns: list[Turn]) -> tuple[int, list[Turn]]:
    """An outbound callee's opening: their first `say:`/`silence:` turn, or a silent pick-up.
    Returns the call time it started and the turns left."""
    if turns and (turns[0].say is not None or turns[0].silence is not None):
        first = turns[0]
        if first.say is not None:
            return await call.play(read_wav(first.say)), turns[1:]
        return await call.silence(first.silence or 0.0), turns[1:]
    return await call.silence(SILENT_PICKUP_S), turns


@dataclass
class _Answering:
    """A caller who answers the agent's checks between their scripted turns."""

    checks: Checks
    call: FakeTwilio
    client: httpx.AsyncClient

    async def answer(self) -> int:
        """Answer what the agent checked in its reply (the call time of the last answer,
        -1: none)."""
        return await self.checks.answer(self.call, self.client)

    def played(self, turn: Turn) -> None:
        """The scripted turn just played, whose words the answers go by."""
        self.checks.played(turn.say or turn.barge_in)


async def _converse(
    call: FakeTwilio,
    turns: list[Turn],
    *,
    outbound: bool = False,
    caller: _Answering | None = None,
) -> None:
    """Each turn starts once the reply to the previous one has been heard to its end, except
    a barge-in, which starts while the agent is talking. On an outbound call the callee opens.
    A `caller` answers what the agent checked in a reply once it was heard (`harness.checks`)
    and is told of each turn played."""
    answer_to, label = 0, "the greeting"
    if outbound:
        answer_to, turns = await _pick_up(call, turns)
    for index, turn in enumerate(turns):
        if turn.barge_in is not None:
            call.hold()
        elif not await call.wait_reply(answer_to) and not call.closed.is_set():
            call.state.failures.append(f"{label}: the agent did not answer")
        elif caller is not None and answer_to >= 0:
            await caller.answer()
        if call.closed.is_set():
            call.state.failures.append(
                f"turn {index + 1} ({turn.kind}): the call had already ended"
            )
            return
        if turn.hangup:
            await call.hangup()
            return
        answer_to, label = await play_turn(call, turn), f"turn {index + 1} ({turn.kind})"
        if caller is not None:
            caller.played(turn)
        if turn.silence is not None:
            # Silence may or may not draw a reprompt: wait for one only if it has begun.
            if not await call.wait_reply(answer_to, timeout_s=1.5) and call.reply_pending():
                await call.wait_reply(answer_to)
            answer_to = -1
    if answer_to >= 0 and not await call.wait_reply(answer_to) and not call.closed.is_set():
        call.state.failures.append(f"{label}: the agent did not answer")
    elif answer_to >= 0 and caller is not None and not call.closed.is_set():
        await caller.answer()


@dataclass
class CallResult:
    """One call as the replayer saw it, and as the server recorded it."""

    report: dict[str, Any]  # the report of docs/DESIGN.md
    record: dict[str, Any]  # the server's call record (GET /api/calls/{sid}), timings included
    state: CallState  # what was heard and when (segments, latencies, arrival times)

    @property
    def duration_ms(self) -> int:
        """Call time from the start of the stream to the last audio either side sent."""
        return max([s.end_ms for s in self.state.caller + self.state.agent] + [0])


Drive = Callable[[FakeTwilio, Scenario], Any]


async def _drive_turns(call: FakeTwilio, scenario: Scenario) -> None:
    await _converse(call, scenario.turns, outbound=scenario.direction == "outbound")


def answering(checks: Checks, target: ReplayTarget) -> Drive:
    """Turn taking whose caller answers the agent's checks between their turns
    (`harness.checks`)."""

    async def drive(call: FakeTwilio, scenario: Scenario) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            await _converse(
                call,
                scenario.turns,
                outbound=scenario.direction == "outbound",
                caller=_Answering(checks, call, client),
            )

    return drive


async def call_scenario(
    scenario: Scenario, target: ReplayTarget, realtime: bool = False, *, drive: Drive | None = None
) -> CallResult:
    """Run one scenario's call against a server (no files written). `drive(call, scenario)`
    replaces the usual turn taking, e.g. to inject faults."""
    async with httpx.AsyncClient(timeout=30) as client:
        params = await _open_call(client, target, scenario)
        async with connect(target) as ws:
            # A scenario about timing (a pause mid-sentence) is only itself at the speed of
            # speech.
            call = FakeTwilio(ws, params, realtime or scenario.realtime)
            await call.start()
            try:
                await (drive or _drive_turns)(call, scenario)
            finally:
                await call.finish()
        record = await _fetch_record(client, target, params.call_sid)
    return CallResult(_report(scenario, params.call_sid, call.state, record), record, call.state)


async def replay_scenario(
    scenario: Scenario,
    target: ReplayTarget,
    out: Path,
    realtime: bool = False,
    *,
    drive: Drive | None = None,
) -> dict[str, Any]:
    """Run one scenario against a server; write report.json, agent.wav, call.wav into `out`.
    `drive` as for `call_scenario`."""
    out.mkdir(parents=True, exist_ok=True)
    result = await call_scenario(scenario, target, realtime, drive=drive)
    _write_audio(out, result.state)
    (out / "report.json").write_text(json.dumps(result.report, indent=2, default=str))
    return result.report


async def _fetch_record(
    client: httpx.AsyncClient, target: ReplayTarget, call_sid: str
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {target.admin_token}"} if target.admin_token else {}
    for _ in range(50):  # the server records the end of the call just after the socket closes
        response = await client.get(f"{target.http_base}/api/calls/{call_sid}", headers=headers)
        if response.status_code != 200:
            raise RuntimeError(
                f"could not read the call record ({response.status_code}); "
                "set POSTVOICE_ADMIN_TOKEN to the server's admin token"
            )
        record = response.json()
        if record.get("ended_at"):
            return record
        await asyncio.sleep(0.1)
    return record


def _report(
    scenario: Scenario, call_sid: str, state: CallState, record: dict[str, Any]
) -> dict[str, Any]:
    turns = []
    for t in record.get("turns", []):
        start, end = t.get("start_ms"), t.get("end_ms")
        if t["role"] == "agent":
            spans = [v for k, v in state.spans.items() if k.split(".")[0] == f"s{t['seq']}"]
            if spans:
                start, end = min(s for s, _ in spans), max(e for _, e in spans)
        turn = {"role": t["role"], "text": t["text"], "start_ms": start, "end_ms": end}
        if t["role"] == "caller":
            turn["source"] = t.get("source")
        if t.get("interrupted"):
            turn["interrupted"] = True
        turns.append(turn)
    events = []
    for e in record.get("events", []):
        item = {"type": e["type"], **(e.get("data") or {}), "at_ms": e.get("at_ms")}
        if e.get("order_ref"):
            item["order"] = e["order_ref"]
        events.append(item)
    intents: list[str] = []
    for e in events:
        if e["type"] == "intent" and e.get("name") and e["name"] not in intents:
            intents.append(e["name"])
    handoff = bool(record.get("transfer_to")) or any(e["type"] == "handoff" for e in events)
    report = {
        "scenario": scenario.name,
        "call_sid": call_sid,
        "passed": True,
        "failures": [],
        "turns": turns,
        "latency_ms": state.latencies,
        "intents": intents,
        "events": events,
        "handoff": handoff,
    }
    failures = list(state.failures) + check_expectations(scenario, report)
    report["failures"] = failures
    report["passed"] = not failures
    return report


def _write_audio(out: Path, state: CallState) -> None:
    length = max([s.end_ms for s in state.caller + state.agent] + [0])
    n = length * SAMPLE_RATE // 1000 + 1
    caller = np.zeros(n, dtype=np.int16)
    agent = np.zeros(n, dtype=np.int16)
    for track, segments in ((caller, state.caller), (agent, state.agent)):
        for seg in segments:
            i = seg.start_ms * SAMPLE_RATE // 1000
            j = min(n, i + len(seg.pcm))
            track[i:j] = seg.pcm[: j - i]
    write_wav(out / "agent.wav", agent)
    write_wav(out / "call.wav", np.stack([caller, agent], axis=1))


# --- a plain recording ------------------------------------------------------------------------


async def replay_recording(
    wav: Path, target: ReplayTarget, out: Path, from_number: str
) -> dict[str, Any]:
    """Play a whole recorded caller side in real time while the agent answers."""
    scenario = Scenario(name=wav.stem, **{"from": from_number})
    out.mkdir(parents=True, exist_ok=True)
    pcm = read_wav(wav)
    async with httpx.AsyncClient(timeout=30) as client:
        params = await _open_call(client, target, scenario)
        async with connect(target) as ws:
            call = FakeTwilio(ws, params, realtime=True)
            await call.start()
            started = await call.play(pcm, trailing_silence_s=0.0)
            await asyncio.sleep(0.1)
            while call.reply_pending() and not call.closed.is_set():
                await asyncio.sleep(0.1)
            await call.wait_reply(started, timeout_s=10)
            await call.finish(grace_s=1.0)
        record = await _fetch_record(client, target, params.call_sid)
    report = _report(scenario, params.call_sid, call.state, record)
    _write_audio(out, call.state)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return report


# --- the command ------------------------------------------------------------------------------


def run_target(
    target: Path,
    *,
    url: str | None,
    out: Path,
    realtime: bool,
    settings: Settings,
    from_number: str = "+14155550101",
    caller_voices: Sequence[CallerVoice] = (),
    json_path: Path | None = None,
    answer_checks: bool = True,
) -> int:
    """Replay a scenario, a directory of scenarios, or a WAV; 0 when everything passed. A
    server at `url` is reached with the secrets of `settings`. With `caller_voices`, the spoken
    scenarios once per voice, their clips said by that voice (`harness.caller_clips`), the
    caller answering the agent's checks unless `answer_checks` is False (`harness.checks`);
    `json_path` then gets every result."""
    if caller_voices:
        from harness.replay_voices import run_voices

        return asyncio.run(
            run_voices(
                target,
                list(caller_voices),
                url,
                settings,
                out,
                realtime,
                json_path,
                answer_checks=answer_checks,
            )
        )
    return asyncio.run(_run_target(target, url, settings, out, realtime, from_number))


async def _run_target(
    target: Path,
    url: str | None,
    settings: Settings,
    out: Path,
    realtime: bool,
    from_number: str,
) -> int:
    from rich.console import Console

    console = Console(stderr=False)
    if not target.exists():
        console.print(f"[red]{target} does not exist[/red]")
        return 2
    if target.is_dir():
        paths = scenario_files(target)
        if not paths:
            console.print(f"[red]no scenarios (*.yaml) in {target}[/red]")
            return 2
    else:
        paths = [target]
    out.mkdir(parents=True, exist_ok=True)
    async with target_for(url, settings) as server:
        if target.suffix.lower() == ".wav":
            report = await replay_recording(target, server, out, from_number)
            _print_report(console, report)
            return 0 if report["passed"] else 1
        if len(paths) == 1:
            report = await replay_scenario(load_scenario(paths[0]), server, out, realtime)
            _print_report(console, report)
            return 0 if report["passed"] else 1
        return await _run_many(console, paths, server, out, realtime)


async def _run_many(console, paths: list[Path], server: ReplayTarget, out: Path, realtime: bool):
    from rich.progress import Progress
    from rich.table import Table

    rows = []
    with Progress(console=console) as progress:
        task = progress.add_task("replaying", total=len(paths))
        for path in paths:
            try:
                scenario = load_scenario(path)
                if server.reset is not None:  # each scenario starts from the designed shop
                    await asyncio.to_thread(server.reset)
                report = await replay_scenario(scenario, server, out / scenario.name, realtime)
                rows.append(
                    (scenario.name, report["passed"], report["latency_ms"], report["failures"])
                )
            except Exception as exc:  # one broken scenario must not stop the others
                rows.append((path.stem, False, [], [f"error: {exc}"]))
            progress.advance(task)
    table = Table(title="replay")
    for column in ("scenario", "result", "median ms", "worst ms", "failures"):
        table.add_column(column)
    for name, passed, latencies, failures in rows:
        table.add_row(
            name,
            "[green]pass[/green]" if passed else "[red]FAIL[/red]",
            str(int(np.median(latencies))) if latencies else "-",
            str(max(latencies)) if latencies else "-",
            "; ".join(failures),
        )
    console.print(table)
    passed = sum(1 for r in rows if r[1])
    console.print(f"{passed} passed, {len(rows) - passed} failed")
    return 0 if passed == len(rows) else 1


def _print_report(console, report: dict[str, Any]) -> None:
    for turn in report["turns"]:
        who = "agent " if turn["role"] == "agent" else "caller"
        console.print(f"[dim]{turn['start_ms']!s:>6}[/dim] {who}: {turn['text']}")
    console.print(f"latency_ms: {report['latency_ms']}")
    if report["passed"]:
        console.print(f"[green]PASS[/green] {report['scenario']}")
    else:
        console.print(f"[red]FAIL[/red] {report['scenario']}")
        for failure in report["failures"]:
            console.print(f"  - {failure}")
