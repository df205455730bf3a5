"""Two servers and two workers on one PostgreSQL database work as one: a call's webhook and its
media socket land on different servers, and every queued side effect is delivered once."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from harness.bench_server import postvoice_command
from harness.replay import replay_scenario
from harness.scenario import Scenario
from harness.target import ReplayTarget, free_port
from integrations.demo import shop_sms
from integrations.outbox import OutboxItem
from integrations.store import Store, make_engine
from tests.pg import PostgresServer

pytestmark = pytest.mark.slow

MARIA = "+14155550101"
AUTH_TOKEN = "multi-instance-auth-token"
ADMIN_TOKEN = "multi-instance-admin"
# What Twilio is configured with: a load balancer in front of both servers.
PUBLIC_URL = "https://voice.example.test"
BATCH = 60


def _wait_healthy(base: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log.read_text()[-3000:])
        time.sleep(0.3)


@pytest.fixture
def cluster(postgres: PostgresServer, tmp_path: Path) -> Iterator[dict]:
    """`postvoice serve` on two ports and two outbox workers, all on one fresh database."""
    url = postgres.create_database()
    env = {
        **os.environ,
        "POSTVOICE_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "POSTVOICE_ADMIN_TOKEN": ADMIN_TOKEN,
        "POSTVOICE_PUBLIC_URL": PUBLIC_URL,
        "POSTVOICE_DATABASE_URL": url,
        "POSTVOICE_ALLOW_INJECTION": "true",
        # The two worker processes below do all the delivering.
        "POSTVOICE_WORKER_IN_PROCESS": "false",
        "POSTVOICE_WORKER_POLL_S": "0.1",
    }
    subprocess.run(
        [*postvoice_command(), "seed"], env=env, check=True, capture_output=True, timeout=120
    )
    ports = [free_port(), free_port()]
    with ExitStack() as stack:
        procs: list[tuple[subprocess.Popen, Path]] = []

        def spawn(name: str, command: list[str]) -> subprocess.Popen:
            log = tmp_path / f"{name}.log"
            out = stack.enter_context(open(log, "w"))
            proc = subprocess.Popen(command, env=env, stdout=out, stderr=out)
            procs.append((proc, log))
            return proc

        servers = [
            spawn(f"server-{n}", [*postvoice_command(), "serve", "--port", str(port)])
            for n, port in enumerate(ports)
        ]
        for n in (1, 2):
            spawn(f"worker-{n}", [*postvoice_command(), "worker", "--worker-id", f"w{n}"])
        try:
            for n, (proc, port) in enumerate(zip(servers, ports, strict=True)):
                _wait_healthy(f"http://127.0.0.1:{port}", proc, tmp_path / f"server-{n}.log")
            yield {"url": url, "ports": ports, "logs": [log for _, log in procs]}
        finally:
            for proc, _ in procs:
                proc.terminate()
            for proc, _ in procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
            postgres.drop_database(url)


def _texts(store: Store, key_part: str) -> list[dict]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(shop_sms).where(shop_sms.c.idempotency_key.contains(key_part))
        ).mappings()
        return [dict(r) for r in rows]


def _wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


async def test_two_servers_and_two_workers_on_one_database_cooperate(cluster, tmp_path):
    port_a, port_b = cluster["ports"]
    store = Store(make_engine(cluster["url"]))
    scenario = Scenario.model_validate(
        {
            "name": "split_call",
            "from": MARIA,
            "turns": [
                {"text": "where is my order"},
                {"text": "yes please"},
                {"text": "no that's all"},
            ],
            "expect": {"agent_says": ["linen shirt"], "actions": ["sms.sent"]},
        }
    )
    # The webhook goes to server A; Twilio's media socket lands on server B.
    split = ReplayTarget(
        http_base=f"http://127.0.0.1:{port_a}",
        ws_url=f"ws://127.0.0.1:{port_b}/twilio/media",
        public_url=PUBLIC_URL,
        auth_token=AUTH_TOKEN,
        admin_token=ADMIN_TOKEN,
    )

    report = await replay_scenario(scenario, split, tmp_path / "call")

    assert report["passed"], report["failures"]
    call_sid = report["call_sid"]
    _wait_for(lambda: _texts(store, call_sid))
    (text,) = _texts(store, call_sid)  # the tracking link, texted once
    assert text["to"] == MARIA and "1001" in text["body"]

    # A burst of decisions, each arriving twice, while both workers poll.
    keys = [f"sms:burst:{n}" for n in range(BATCH)]
    for key in keys + keys:
        store.record_decision(
            None, "sms.sent", None, {}, [OutboxItem("sms", key, {"to": MARIA, "body": key})]
        )
    _wait_for(lambda: store.outbox.counts()["delivered"] >= BATCH)

    rows = {r["idempotency_key"]: r for r in store.outbox_items(limit=None)}
    assert all(rows[k]["status"] == "delivered" and rows[k]["attempts"] == 1 for k in keys)
    assert Counter(t["idempotency_key"] for t in _texts(store, "sms:burst:")) == dict.fromkeys(
        keys, 1
    )
    delivered = Counter()
    by_worker = Counter()
    for log in cluster["logs"]:
        for key, worker in re.findall(
            r"delivered: sms (sms:burst:\d+) .*worker (\w+)\)", log.read_text()
        ):
            delivered[key] += 1
            by_worker[worker] += 1
    assert delivered == dict.fromkeys(keys, 1)
    print(f"burst of {BATCH} delivered by worker: {dict(by_worker)}")
    store.engine.dispose()
