"""Calls in the store for the dashboard's tests.

`converse` runs a real conversation in-process: the app's own `CallSession`, dialog and demo
shop, with typed caller turns standing in for audio (as `postvoice replay` injects them) and
fake speech engines. `record_call` writes the rows `voice/call.py` writes, for shapes a
conversation cannot reach quickly (a failed call, a hand-off, fifty calls).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from integrations.demo import seed
from integrations.store import Store
from tests.fakes import FakeSocket, FakeSynthesizer, FakeTranscriber
from voice import twilio
from voice.call import CallSession
from voice.server import Engines, create_app
from voice.settings import Settings

ADMIN = "admin-token"
BEARER = {"Authorization": f"Bearer {ADMIN}"}
SHOP = "+18005550100"
MARIA = "+14155550101"
JAMES = "+14155550102"
TOM = "+14155550104"
OMAR = "+14155550106"
T0 = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)


def make_app(tmp_path: Path, **overrides: Any) -> FastAPI:
    """The real app on a fresh SQLite file, with fake speech engines; the outbox worker is
    not started (tests deliver with `Worker.drain` when they mean to)."""
    values: dict[str, Any] = {
        "twilio_auth_token": "secret-token",
        "public_url": "https://support.example-shop.com",
        "database_url": f"sqlite:///{tmp_path}/dash.db",
        "admin_token": ADMIN,
        "allow_injection": True,
        "worker_in_process": False,
        "recordings_dir": tmp_path / "recordings",
        **overrides,
    }
    return create_app(Settings(**values), Engines(FakeTranscriber(), FakeSynthesizer()))


@contextmanager
def running(tmp_path: Path, **overrides: Any) -> Iterator[TestClient]:
    """A started app with the demo shop seeded, and a client that is not logged in."""
    app = make_app(tmp_path, **overrides)
    # https, as the public URL: the login cookie is Secure, so a browser sends it only there.
    with TestClient(app, base_url="https://testserver") as client:
        seed(app.state.runtime.engine)
        yield client


async def _settled(store: Store, sid: str, polls: int = 3) -> None:
    """Wait until the agent has finished what it was saying (its turns stop changing)."""
    seen, steady = None, 0
    async with asyncio.timeout(20):
        while steady < polls:
            await asyncio.sleep(0.05)
            record = await asyncio.to_thread(store.call, sid)
            turns = record["turns"] if record else []
            now = [(t["seq"], t["end_ms"]) for t in turns]
            done = bool(turns) and all(
                t["end_ms"] is not None for t in turns if t["role"] == "agent"
            )
            steady = steady + 1 if (now == seen and done) else 0
            seen = now


async def converse(
    app: FastAPI, sid: str, caller: str, lines: Sequence[str], *, hang_up: bool = True
) -> dict[str, Any]:
    """One inbound call from `caller` saying `lines`, each once the agent has answered; the
    call's record. The caller hangs up at the end unless the agent already did."""
    deps = app.state.deps
    store: Store = app.state.store
    params = {"from": caller, "to": SHOP, "direction": "inbound"}
    params["token"] = twilio.make_stream_token(deps.settings.secret(), sid, params)
    stream = twilio.StreamParams(sid, f"MZ{sid[2:]}", "AC1", params)
    socket = FakeSocket()
    session = CallSession(socket, deps)
    socket.incoming.put_nowait(twilio.build_connected())
    socket.incoming.put_nowait(twilio.build_start(stream))
    task = asyncio.create_task(session.run())
    clock = 0
    await _settled(store, sid)
    for line in lines:
        if task.done():
            break
        clock += 4000
        socket.incoming.put_nowait(twilio.build_inject(line, clock))
        await _settled(store, sid)
    if hang_up and not task.done():
        socket.incoming.put_nowait(twilio.build_stop(stream, 999))
    await asyncio.wait_for(task, 20)
    record = await asyncio.to_thread(store.call, sid)
    assert record is not None
    return record


def record_call(
    store: Store,
    sid: str,
    *,
    caller: str = MARIA,
    direction: str = "inbound",
    at: datetime = T0,
    seconds: int = 60,
    end_reason: str | None = "caller_done",
    transfer_to: str | None = None,
    turns: Sequence[tuple[str, str, int | None]] = (),
    events: Sequence[tuple[str, str | None, dict[str, Any]]] = (),
) -> None:
    """Write a call as `voice/call.py` does: the row, its turns (role, text, latency_ms of an
    agent reply or None) and its events (type, order, data)."""
    store.upsert_call(
        sid,
        from_number=caller if direction == "inbound" else SHOP,
        to_number=SHOP if direction == "inbound" else caller,
        direction=direction,
        status="in-progress",
    )
    ended = at + timedelta(seconds=seconds) if end_reason else None
    store.upsert_call(
        sid,
        created_at=at,
        started_at=at,
        ended_at=ended,
        end_reason=end_reason,
        transfer_to=transfer_to,
        status="completed" if end_reason else "in-progress",
    )
    for seq, (role, text, latency) in enumerate(turns):
        timing = None
        if latency is not None:
            timing = {
                "latency_ms": latency,
                "eot_wait_ms": 600,
                "stt_ms": latency - 700,
                "dialog_ms": 40,
                "tts_ms": 60,
            }
        store.add_turn(
            sid,
            seq,
            role,
            text,
            start_ms=seq * 3000,
            end_ms=seq * 3000 + 2000,
            source="tts" if role == "agent" else "audio",
            confidence=None if role == "agent" else 0.91,
            timing=timing,
        )
    for i, (type_, order, data) in enumerate(events):
        store.add_event(sid, type_, order, data, 1000 + i * 500)
