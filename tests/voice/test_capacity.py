"""The call caps: a polite busy message above them; every place given back however calls end."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest

from tests.fakes import EchoAgent, FakeSynthesizer
from tests.voice.test_call import until
from tests.voice.test_call_faults import Line, ScriptedTranscriber, echo_deps, events_of, shop_deps
from voice import twilio
from voice.call import busy_text
from voice.capacity import CallLimiter, caller_key

JAMES = "+14155550102"
MARIA = "+14155550101"


# --- the limiter ----------------------------------------------------------------------------


def test_the_global_cap_refuses_the_call_above_it_and_a_release_makes_room():
    limiter = CallLimiter(max_calls=2, max_per_caller=2)
    first, second = limiter.admit(MARIA), limiter.admit(JAMES)
    third = limiter.admit("+14155550103")
    assert first.granted and second.granted
    assert not third.granted and third.reason == "max_calls"
    assert limiter.active == 2 and limiter.turned_away == 1
    first.release()
    first.release()  # twice is harmless
    third.release()  # and so is releasing a refusal
    assert limiter.active == 1
    assert limiter.admit("+14155550103").granted


def test_one_number_cannot_take_more_than_its_share():
    limiter = CallLimiter(max_calls=10, max_per_caller=1)
    first = limiter.admit(MARIA)
    again = limiter.admit("+1 (415) 555-0101")  # the same number, however it is written
    assert first.granted and not again.granted and again.reason == "max_calls_per_caller"
    assert limiter.admit(JAMES).granted
    first.release()
    assert limiter.admit(MARIA).granted


@pytest.mark.parametrize("withheld", ["", "anonymous", "+266696687", "client:alice"])
def test_withheld_numbers_count_only_toward_the_global_cap(withheld):
    limiter = CallLimiter(max_calls=3, max_per_caller=1)
    assert caller_key(withheld) is None
    assert all(limiter.admit(withheld).granted for _ in range(3))
    assert not limiter.admit(withheld).granted  # the global cap still holds
    assert limiter.snapshot()["callers_on_the_line"] == 0


# --- sessions -------------------------------------------------------------------------------


async def test_above_the_cap_the_caller_hears_a_busy_message_and_the_line_closes(tmp_path):
    deps = echo_deps(tmp_path, max_calls=1)
    first = Line(deps, "CA1", MARIA)
    first.start()
    await until(lambda: deps.synthesizer.spoken)
    assert deps.limiter.active == 1

    second = Line(deps, "CA2", JAMES)
    second.start()
    record = await second.ended()
    busy = busy_text(deps.settings, "inbound")
    assert busy in deps.synthesizer.spoken and second.media()  # it was said, as audio
    assert [m["mark"]["name"] for m in second.socket.events("mark")] == ["busy"]
    assert second.socket.closed_with == 1000  # Twilio's after-stream action then hangs up
    assert record["end_reason"] == "busy" and record["ended_at"] is not None
    (rejected,) = events_of(record, "call.rejected")
    assert rejected["data"]["reason"] == "busy" and rejected["data"]["cap"] == "max_calls"
    assert not events_of(record, "call.started")
    assert [t["text"] for t in record["turns"]] == [busy]
    assert deps.limiter.active == 1  # the refused call never held a place

    await first.hang_up()
    assert deps.limiter.active == 0


async def test_a_second_call_from_the_same_number_is_turned_away(tmp_path):
    deps = echo_deps(tmp_path, max_calls=5, max_calls_per_caller=1)
    first = Line(deps, "CA1", MARIA)
    first.start()
    await until(lambda: deps.limiter.active == 1)
    again = Line(deps, "CA2", MARIA)
    again.start()
    record = await again.ended()
    assert record["end_reason"] == "busy"
    assert events_of(record, "call.rejected")[0]["data"]["cap"] == "max_calls_per_caller"
    other = Line(deps, "CA3", JAMES)
    other.start()
    await until(lambda: deps.limiter.active == 2)  # another caller still gets through
    assert (await other.hang_up())["end_reason"] == "caller_hangup"
    await first.hang_up()
    assert deps.limiter.active == 0


async def test_the_busy_message_is_synthesized_once_however_many_are_turned_away(tmp_path):
    deps = echo_deps(tmp_path, max_calls=1)
    first = Line(deps, "CA1", MARIA)
    first.start()
    await until(lambda: deps.limiter.active == 1)
    refused = [Line(deps, f"CA{n}", f"+1415555020{n}") for n in range(2, 6)]
    for line in refused:
        line.start()
    for line in refused:
        assert (await line.ended())["end_reason"] == "busy"
    assert deps.synthesizer.spoken.count(busy_text(deps.settings, "inbound")) == 1
    assert deps.limiter.turned_away == 4
    await first.hang_up()


async def test_an_outbound_callee_turned_away_hears_who_called(tmp_path):
    deps = echo_deps(tmp_path, max_calls=1)
    first = Line(deps, "CA1", MARIA)
    first.start()
    await until(lambda: deps.limiter.active == 1)
    callee = Line(deps, "CA2", JAMES, direction="outbound")
    callee.start()
    assert (await callee.ended())["end_reason"] == "busy"
    assert f"this is {deps.settings.shop_name}" in " ".join(deps.synthesizer.spoken)
    await first.hang_up()


async def test_no_place_leaks_however_calls_end(tmp_path):
    """Hang-ups, dropped sockets, cancelled sessions, failing agents and engines, refusals,
    bad tokens: afterwards the limiter counts nobody on the line."""
    stt = ScriptedTranscriber([RuntimeError("stt down")] * 50)
    deps = echo_deps(tmp_path, stt=stt, max_calls=4, max_calls_per_caller=2)

    class BrokenAgent(EchoAgent):
        async def start(self):
            raise RuntimeError("the agent fell over")
            yield  # pragma: no cover

        async def end(self, reason):
            raise RuntimeError("and again on the way out")

    def how(n: int):
        return n % 6

    lines = []
    for n in range(24):
        # three callers share 24 calls; every sixth call's agent fails (same limiter)
        line_deps = replace(deps, make_agent=lambda i, e: BrokenAgent()) if how(n) == 4 else deps
        line = Line(line_deps, f"CA{n}", f"+1415555{n % 3:04d}")
        if how(n) == 5:
            line.stream = twilio.StreamParams(line.call_sid, "MZ", "AC1", {"token": "forged"})
        line.start()
        lines.append(line)

    await asyncio.sleep(0.3)
    assert deps.limiter.active <= 4
    for n, line in enumerate(lines):
        kind = how(n)
        if kind == 0:
            line.put(twilio.build_stop(line.stream, 1))  # caller hangs up
        elif kind == 1:
            line.put(None)  # the socket drops
        elif kind == 2:
            assert line.task is not None
            line.task.cancel()  # the server cancels the session (shutdown)
        elif kind == 3:
            line.speak()  # speech to text fails on this call
            line.put(twilio.build_stop(line.stream, 1))
        else:
            line.put(twilio.build_stop(line.stream, 1))
    results = await asyncio.gather(*(line.task for line in lines), return_exceptions=True)
    assert all(r is None or isinstance(r, asyncio.CancelledError) for r in results), results
    assert deps.limiter.active == 0
    assert deps.limiter.snapshot()["callers_on_the_line"] == 0
    assert deps.limiter.turned_away > 0  # the caps did refuse some of them


# --- sockets that hold a place without a caller ---------------------------------------------


class QuickSynthesizer(FakeSynthesizer):
    """A 100 ms tone per sentence: the agent's lines play out quickly."""

    async def synthesize(self, text: str) -> np.ndarray:
        self.spoken.append(text)
        return np.full(800, 1000, np.int16)


async def test_a_socket_that_never_starts_is_closed_after_a_few_seconds(tmp_path):
    deps = echo_deps(tmp_path, stream_start_timeout_s=0.3)
    silent, chatty = Line(deps, "CA1"), Line(deps, "CA2")
    silent.put(twilio.build_connected())
    silent.task = asyncio.create_task(silent.session.run())
    chatty.task = asyncio.create_task(chatty.session.run())
    for _ in range(20):  # junk, but never a start: it must not keep the socket open
        chatty.put(twilio.build_media("MZ", 1, 1, 0, b"\xff" * 160))
    await asyncio.wait_for(asyncio.gather(silent.task, chatty.task), 3)
    assert silent.socket.closed_with == chatty.socket.closed_with == 1008
    assert deps.limiter.active == 0
    assert deps.store.call("CA1") is None  # nothing was recorded for a call that never began


async def test_silence_after_start_reprompts_then_says_goodbye_and_frees_the_place(tmp_path):
    """A socket that sends `start` and then nothing at all: no audio, no mark echoes."""
    deps = shop_deps(tmp_path, tts=QuickSynthesizer(), silence_reprompt_s=0.4, max_calls=1)
    line = Line(deps, "CA1", MARIA)
    line.socket.echo_marks = False
    line.start()
    await until(lambda: deps.limiter.active == 1)
    record = await line.ended(timeout=20)
    assert deps.limiter.active == 0
    assert record["end_reason"] == "silence"
    said = [t["text"] for t in record["turns"] if t["role"] == "agent"]
    assert len(said) >= 3  # the greeting, a reprompt, the goodbye
    # The place is free for a real caller, who gets the agent and not the busy message.
    caller = Line(deps, "CA2", JAMES)
    caller.start()
    await until(lambda: deps.limiter.active == 1)
    assert not events_of(await caller.hang_up(), "call.rejected")


async def test_twelve_silent_sockets_do_not_make_a_real_caller_hear_busy(tmp_path):
    deps = echo_deps(tmp_path, stream_start_timeout_s=0.3, max_calls=12)
    lurkers = [Line(deps, f"CA{n}", f"+1415555{n:04d}") for n in range(12)]
    for line in lurkers:
        line.put(twilio.build_connected())  # and never a start
        line.task = asyncio.create_task(line.session.run())
    await asyncio.wait_for(asyncio.gather(*(line.task for line in lurkers)), 3)
    caller = Line(deps, "CA99", MARIA)
    caller.start()
    await until(lambda: deps.limiter.active == 1)
    assert not events_of(await caller.hang_up(), "call.rejected")
