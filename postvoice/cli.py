"""The `postvoice` command."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from integrations.redact import RedactingFilter
from voice.settings import Settings

app = typer.Typer(help="postvoice: a phone agent for post-purchase support.", no_args_is_help=True)

log = logging.getLogger("postvoice")


def load_settings(**overrides: Any) -> Settings:
    """The settings, from the environment (`POSTVOICE_…`, .env) and `overrides`: the only place
    the command builds them. Each command calls this once and hands the result down, so
    everything one command runs sees the same settings."""
    return Settings(**overrides)


def setup_logging(level: str = "INFO") -> None:
    """Log to stderr, with card numbers redacted from every record."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    dev: Annotated[
        bool, typer.Option("--dev", help="Skip Twilio signature checks (never in production).")
    ] = False,
) -> None:
    """Run the server: Twilio webhooks and the media socket."""
    import uvicorn

    from voice.server import create_app

    overrides: dict[str, Any] = {}
    if dev:
        overrides.update(dev=True, allow_injection=True)
    if port is not None:
        overrides["port"] = port
    if host is not None:
        overrides["host"] = host
    settings = load_settings(**overrides)
    setup_logging()
    settings.check_startable()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws_ping_interval=None,
    )


@app.command()
def seed(
    today: Annotated[
        str | None, typer.Option(help="Seed as if today were this date (YYYY-MM-DD).")
    ] = None,
) -> None:
    """(Re)create the embedded demo shop of docs/DESIGN.md in the configured database, and
    empty the outbox, whose decisions were about the shop it replaces."""
    from datetime import date

    from integrations.demo import seed as seed_shop
    from integrations.store import Store, make_engine

    settings = load_settings()
    setup_logging()
    engine = make_engine(settings.database_url)
    store = Store(engine)
    store.create_all()
    seed_shop(engine, date.fromisoformat(today) if today else None)
    store.forget_decisions()  # they were about the shop just replaced
    typer.echo(
        f"demo shop seeded in {engine.url.render_as_string(hide_password=True)} "
        "(its outbox emptied)"
    )


@app.command()
def replay(
    target: Annotated[Path, typer.Argument(help="A scenario YAML, a directory of them, or a WAV.")],
    url: Annotated[
        str | None,
        typer.Option(help="ws://host:port/twilio/media of a running server (default: in-process)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where reports and audio go.")] = Path("out/replay"),
    realtime: Annotated[
        bool, typer.Option("--realtime", help="Stream audio at real speed, as a phone does.")
    ] = False,
    from_number: Annotated[
        str, typer.Option("--from", help="Caller ID for a plain WAV replay.")
    ] = "+14155550101",
    caller_voice: Annotated[
        list[str] | None,
        typer.Option(
            "--caller-voice",
            help="Say every clip in this caller voice (harness.callers) and replay (repeatable).",
        ),
    ] = None,
    caller_voices: Annotated[
        list[str] | None,
        typer.Option(
            "--caller-voices", help="Every caller voice of a split: test, tuning, heldout or all."
        ),
    ] = None,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="With --caller-voice(s): write every result here as JSON."),
    ] = None,
    answer_checks: Annotated[
        bool,
        typer.Option(
            help="With --caller-voice(s): the caller answers the agent's read-backs and "
            '"Is this about …?" with a yes or a no, by what they meant (harness.checks).'
        ),
    ] = True,
) -> None:
    """Play Twilio's part: stream a scenario's caller audio to the agent and check what it says."""
    from harness.caller_clips import choose_voices
    from harness.replay import run_target

    try:
        voices = choose_voices(caller_voice or [], caller_voices or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if json_path is not None and not voices:
        raise typer.BadParameter("--json goes with --caller-voice or --caller-voices")
    setup_logging("WARNING")
    code = run_target(
        target,
        url=url,
        out=out,
        realtime=realtime,
        from_number=from_number,
        settings=load_settings(),
        caller_voices=voices,
        json_path=json_path,
        answer_checks=answer_checks,
    )
    raise typer.Exit(code)


@app.command()
def simulate(
    personas: Annotated[Path, typer.Argument(help="A persona YAML, or a directory of them.")],
    calls: Annotated[
        int | None, typer.Option(help="Calls to make, personas in turn (default: one each).")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Calls at once.")] = 1,
    voices: Annotated[
        list[str] | None,
        typer.Option(
            "--voices",
            help="Caller voices (harness.callers), or a split: test, tuning, all (repeatable; "
            "default test, or text with --fast).",
        ),
    ] = None,
    noise: Annotated[
        list[str] | None,
        typer.Option(help="Noise levels to draw from: quiet, room, street (default all)."),
    ] = None,
    loss: Annotated[
        list[float] | None,
        typer.Option(
            help="Packet loss levels to draw from: the chance, 0 to below 1, of each 20 ms "
            "caller frame being lost, sent as silence (repeatable; default 0)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="The same seed makes the same calls.")] = 0,
    out: Annotated[Path, typer.Option(help="Where reports and summary.json go.")] = Path(
        "out/simulate"
    ),
    url: Annotated[
        str | None,
        typer.Option(help="ws://host:port/twilio/media of a running server (default: in-process)."),
    ] = None,
    realtime: Annotated[
        bool, typer.Option("--realtime", help="Stream audio at real speed, as a phone does.")
    ] = False,
    fast: Annotated[
        bool,
        typer.Option(
            "--fast", help="Hear the agent from the call record and speak by text (seconds)."
        ),
    ] = False,
) -> None:
    """Simulated callers who answer back: each persona calls, answers by rules, and is judged."""
    from harness.caller_clips import choose_voices
    from harness.callers import NOISE_LEVELS
    from harness.simulate_run import run_simulate

    names = voices or ([] if fast else ["test"])
    groups = [v for v in names if v in ("test", "tuning", "all")]
    try:
        chosen = choose_voices([v for v in names if v not in groups], groups)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    unknown = [n for n in noise or [] if n not in NOISE_LEVELS]
    if unknown:
        raise typer.BadParameter(f"no noise level {unknown}; known: {', '.join(NOISE_LEVELS)}")
    if any(not 0 <= p < 1 for p in loss or []):
        raise typer.BadParameter("--loss is a probability from 0 to below 1")
    if any(loss or []) and not chosen:
        raise typer.BadParameter(
            "--loss needs spoken callers: text has no audio to lose (--voices)"
        )
    setup_logging("WARNING")
    code = run_simulate(
        personas,
        settings=load_settings(),
        out=out,
        voices=chosen,
        noises=noise or tuple(NOISE_LEVELS),
        losses=loss or (0.0,),
        calls=calls,
        concurrency=concurrency,
        seed=seed,
        url=url,
        realtime=realtime,
        fast=fast,
    )
    raise typer.Exit(code)


@app.command()
def bench(
    calls: Annotated[int, typer.Option(min=1, help="Calls to measure.")] = 6,
    concurrency: Annotated[int, typer.Option(min=1, help="Calls at a time.")] = 1,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures here as JSON.")
    ] = None,
    scenarios: Annotated[
        Path | None,
        typer.Option(help="Scenarios to play (default: the fixtures' spoken, repeatable ones)."),
    ] = None,
    personas: Annotated[
        Path | None,
        typer.Option(
            help="Instead: simulated callers, the personas here that leave the shop as it was."
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="ws://host:port/twilio/media of a running server (default: start one)."),
    ] = None,
    server_pid: Annotated[
        int | None, typer.Option(help="With --url: the server's process, for CPU and memory.")
    ] = None,
    fast: Annotated[
        bool, typer.Option("--fast", help="No real-time pacing: processing time and memory only.")
    ] = False,
    find_max: Annotated[
        bool,
        typer.Option(
            "--find-max", help="Ramp C = 1, 2, 4, 6, 8, … while p95 ≤ 1000 ms with cut-offs ≤ 2%."
        ),
    ] = False,
    max_level: Annotated[int, typer.Option(min=1, help="Highest C --find-max tries.")] = 32,
    min_level: Annotated[int, typer.Option(min=1, help="Lowest C --find-max tries.")] = 1,
    long_call: Annotated[
        float | None,
        typer.Option(min=1, help="Instead: one call this many seconds long, memory along it."),
    ] = None,
    rss_every: Annotated[
        int | None, typer.Option(min=1, help="Note the server's memory every N calls.")
    ] = None,
    stagger: Annotated[
        float, typer.Option(min=0, help="Seconds between the starts of concurrent callers.")
    ] = 1.0,
    env: Annotated[
        list[str] | None, typer.Option("--env", help="KEY=VALUE for the server (repeatable).")
    ] = None,
    server_arg: Annotated[
        list[str] | None,
        typer.Option("--server-arg", help="Argument for `postvoice serve` (--server-arg=--dev)."),
    ] = None,
    log_file: Annotated[
        Path | None, typer.Option(help="Keep the server's log here (the one bench starts).")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="With --personas: each call's report and summary.json here.")
    ] = Path("out/bench-personas"),
) -> None:
    """Measure reply latency, STT/TTS time, underruns, CPU and memory of the real server,
    calling it over real WebSockets (in real time unless --fast)."""
    from harness.bench import BenchOptions, parse_env, run_bench

    setup_logging("WARNING")
    try:
        server_env = parse_env(env or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    options = BenchOptions(
        calls=calls,
        concurrency=concurrency,
        json_path=json_path,
        scenarios_dir=scenarios,
        personas_dir=personas,
        url=url,
        server_pid=server_pid,
        fast=fast,
        find_max=find_max,
        max_level=max_level,
        min_level=min_level,
        long_call_s=long_call,
        rss_every=rss_every,
        stagger_s=stagger,
        env=server_env,
        server_args=list(server_arg or []),
        log_file=log_file,
        out=out,
    )
    raise typer.Exit(run_bench(options, load_settings()))


@app.command()
def soak(
    calls: Annotated[int, typer.Option(min=1, help="Calls to make.")] = 200,
    concurrency: Annotated[int, typer.Option(min=1, help="Calls at a time.")] = 4,
    seed: Annotated[int, typer.Option(help="Which calls get which faults.")] = 1,
    fault_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Share of calls (after the first six) with a fault.")
    ] = 0.5,
    fake_engines: Annotated[
        bool, typer.Option("--fake-engines", help="Instant stand-ins for STT and TTS (for CI).")
    ] = False,
    scenarios: Annotated[
        Path | None, typer.Option(help="Scenarios to play (default: the fixtures' inbound ones).")
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the summary here as JSON.")
    ] = None,
    log_file: Annotated[
        Path | None, typer.Option(help="Write the server's full log (INFO) here.")
    ] = None,
) -> None:
    """Many calls with faults injected (STT and TTS errors, a hanging carrier, the helpdesk
    down, dropped lines, malformed frames); then check that no call is stuck, no ticket lost,
    no task leaked, and no fault left the caller in dead air. Exits 1 if a check fails."""
    from harness.soak import SoakOptions, run_soak
    from integrations.redact import RedactingFilter

    setup_logging("INFO" if log_file else "WARNING")
    # Injected faults log tracebacks by design: the console shows only what is critical, the
    # summary counts errors, and --log-file keeps everything.
    logging.getLogger().handlers[0].setLevel(logging.CRITICAL)
    if log_file is not None:
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(RedactingFilter())
        logging.getLogger().addHandler(handler)
    options = SoakOptions(
        calls=calls,
        concurrency=concurrency,
        seed=seed,
        fake_engines=fake_engines,
        fault_rate=fault_rate,
        scenarios_dir=scenarios,
        json_path=json_path,
    )
    raise typer.Exit(run_soak(options, load_settings()))


@app.command()
def worker(
    drain: Annotated[bool, typer.Option("--drain", help="Deliver what is due, then exit.")] = False,
    worker_id: Annotated[str | None, typer.Option(help="Name in logs and row locks.")] = None,
) -> None:
    """Deliver the outbox (texts, tickets, refunds, labels) as its own process."""
    from integrations.worker import RetryPolicy
    from integrations.worker import main as worker_main
    from voice.services import choose_providers

    settings = load_settings()
    setup_logging()
    scheduler = None if drain else _start_scheduler_thread(settings)

    def providers(engine):
        return choose_providers(settings, engine)[2]

    try:
        code = worker_main(
            settings.database_url,
            providers=providers,
            worker_id=worker_id,
            poll_s=settings.worker_poll_s,
            policy=RetryPolicy(
                max_attempts=settings.outbox_max_attempts, cap_s=settings.outbox_backoff_cap_s
            ),
            drain=drain,
        )
    finally:
        if scheduler is not None:
            scheduler()
    raise typer.Exit(code)


def _start_scheduler_thread(settings: Settings):
    """Run the outbound scheduler (confirmation calls, exception alerts) beside the outbox
    worker, on its own event loop; returns the function that stops it."""
    import asyncio
    import threading

    from voice.outbound import dialer_for, run_scheduler, scheduler_for
    from voice.services import build_shop

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def run() -> None:
        shop = build_shop(settings)
        dialer = dialer_for(shop)
        try:
            scheduler = scheduler_for(shop, dialer)
            if scheduler is None:
                log.warning(
                    "outbound scheduler off: the configured order source has no feed of "
                    "delivered orders"
                )
                return
            await run_scheduler(scheduler, stop, settings.scheduler_interval_s)
        finally:
            if dialer.calls is not None:
                await dialer.calls.aclose()
            await shop.close()

    thread = threading.Thread(
        target=loop.run_until_complete, args=(run(),), name="outbound-scheduler", daemon=True
    )
    thread.start()

    def stop_it() -> None:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)

    return stop_it


call_app = typer.Typer(help="Outbound calls: delivery confirmations.", no_args_is_help=True)
app.add_typer(call_app, name="call")


@call_app.command("delivery-confirmation")
def call_delivery_confirmation(
    order: Annotated[str | None, typer.Option(help="Call about this order.")] = None,
    delivered_since: Annotated[
        str | None, typer.Option(help="Call about every order delivered since: 2d, 36h, a date.")
    ] = None,
) -> None:
    """Place delivery-confirmation calls now (quiet hours, do-not-call and the per-customer
    limit still apply); prints what happened to each."""
    import asyncio
    from datetime import timedelta

    from voice.outbound import dialer_for, parse_since
    from voice.services import build_shop

    if (order is None) == (delivered_since is None):
        raise typer.BadParameter("give exactly one of --order or --delivered-since")
    settings = load_settings()
    setup_logging("WARNING")

    async def place() -> list:
        shop = build_shop(settings)
        dialer = dialer_for(shop)
        try:
            if order is not None:
                numbers = [order]
            else:
                feed = shop.order_feed()
                if feed is None:
                    raise typer.BadParameter(
                        "--delivered-since needs a feed of delivered orders, which the "
                        "configured order source lacks; use --order"
                    )
                now = dialer.clock()
                since = parse_since(delivered_since or "", now)
                numbers = await feed.delivered_between(since, now + timedelta(seconds=1))
            return [await dialer.request(n) for n in numbers]
        finally:
            if dialer.calls is not None:
                await dialer.calls.aclose()
            await shop.close()

    try:
        attempts = asyncio.run(place())
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    if not attempts:
        typer.echo("no orders to call about")
    for a in attempts:
        line = f"order {a.order_ref} → {a.to_number or '?'}: {a.status}"
        if a.call_sid:
            line += f" ({a.call_sid})"
        if a.detail:
            line += f" — {a.detail}"
        typer.echo(line)
    failed = any(a.status in ("not_placed", "failed") for a in attempts)
    raise typer.Exit(1 if failed else 0)


@call_app.command("results")
def call_results(order: Annotated[str, typer.Argument(help="The order.")]) -> None:
    """Every outbound attempt about an order and what it established."""
    from integrations.outbound import OutboundStore
    from integrations.outbound import metadata as outbound_metadata
    from integrations.store import Store, make_engine

    settings = load_settings()
    engine = make_engine(settings.database_url)
    Store(engine).migrate(also=[outbound_metadata])
    attempts = OutboundStore(engine).attempts_for(order)
    if not attempts:
        typer.echo(f"no outbound calls about order {order}")
    for a in attempts:
        typer.echo(
            f"#{a.attempt} {a.purpose} {a.status} due {a.due_at:%Y-%m-%d %H:%M}Z"
            + (f" {a.call_sid}" if a.call_sid else "")
            + (f" answered_by={a.answered_by}" if a.answered_by else "")
            + (f" result={a.result}" if a.result else "")
            + (f" — {a.detail}" if a.detail else "")
        )
    engine.dispose()


dnc_app = typer.Typer(help="The do-not-call list.", no_args_is_help=True)
app.add_typer(dnc_app, name="dnc")


def _dnc_store():
    from integrations.outbound import OutboundStore
    from integrations.outbound import metadata as outbound_metadata
    from integrations.phones import normalize_phone
    from integrations.store import Store, make_engine

    engine = make_engine(load_settings().database_url)
    Store(engine).migrate(also=[outbound_metadata])
    return OutboundStore(engine), normalize_phone


@dnc_app.command("add")
def dnc_add(
    phone: Annotated[str, typer.Argument(help="The number, any common form.")],
    reason: Annotated[str, typer.Option(help="Why (kept with the entry).")] = "",
) -> None:
    """Never call this number."""
    store, normalize = _dnc_store()
    number = normalize(phone) or phone
    added = store.dnc_add(number, reason)
    typer.echo(f"{number} {'added to' if added else 'was already on'} the do-not-call list")


@dnc_app.command("remove")
def dnc_remove(phone: Annotated[str, typer.Argument(help="The number.")]) -> None:
    """Allow calls to this number again."""
    store, normalize = _dnc_store()
    number = normalize(phone) or phone
    removed = store.dnc_remove(number)
    typer.echo(f"{number} {'removed from' if removed else 'was not on'} the do-not-call list")


@dnc_app.command("list")
def dnc_list() -> None:
    """The numbers we never call."""
    store, _ = _dnc_store()
    entries = store.dnc_list()
    for e in entries:
        typer.echo(f"{e['phone']}  {e['added_at']:%Y-%m-%d}  {e['reason']}")
    typer.echo(f"{len(entries)} number(s)")


flows_app = typer.Typer(help="The SOP flows and the policy.", no_args_is_help=True)
app.add_typer(flows_app, name="flows")


@flows_app.command("check")
def flows_check(
    directory: Annotated[
        Path | None, typer.Argument(help="A flows directory (default: the configured one).")
    ] = None,
    policy: Annotated[
        Path | None, typer.Option(help="A policy file (default: the configured one).")
    ] = None,
) -> None:
    """Validate flows and policy; every mistake is printed as file:line: message."""
    from dialog.loader import check_flows
    from dialog.policy import check_policy

    settings = load_settings()
    errors = check_flows(directory or settings.flows_dir) + check_policy(
        policy or settings.policy_file
    )
    for error in errors:
        typer.echo(error)
    typer.echo(f"{len(errors)} problem(s)" if errors else "flows and policy are valid")
    raise typer.Exit(1 if errors else 0)


@app.command()
def chat(
    from_number: Annotated[
        str, typer.Option("--from", help="Caller ID to present (a demo customer's, or any).")
    ] = "anonymous",
    outbound_order: Annotated[
        str | None,
        typer.Option("--delivery-confirmation", help="Play the outbound call for this order."),
    ] = None,
) -> None:
    """Talk to the agent by typing: `#1001` is the keypad, `/silence` says nothing, Ctrl-D
    hangs up. Texts, tickets and refunds happen for real on the configured shop."""
    import asyncio
    import dataclasses
    import uuid

    from integrations.store import CallEvents
    from voice.chat import StoredChat, run_chat
    from voice.services import build_shop

    settings = load_settings()
    setup_logging("WARNING")
    _warn_if_nothing_serves(settings)
    call_sid = f"CHAT{uuid.uuid4().hex[:28]}"

    async def talk() -> None:
        shop = build_shop(settings)
        shop.start_worker()
        try:

            def make(info):
                events = CallEvents(shop.store, call_sid)
                return shop.agent(dataclasses.replace(info, call_sid=call_sid), events)

            await run_chat(
                make,
                from_number,
                to_number=settings.support_number,
                direction="outbound" if outbound_order else "inbound",
                purpose="delivery_confirmation" if outbound_order else None,
                order_ref=outbound_order,
                record=StoredChat(shop.store, call_sid),
            )
        finally:
            await shop.close()

    asyncio.run(talk())


def _warn_if_nothing_serves(settings: Settings) -> None:
    """Texts carry links (return labels) to the public URL: say so when nothing serves there,
    rather than send links that point nowhere."""
    import httpx

    url = settings.public_url.rstrip("/")
    try:
        answered = httpx.get(url + "/healthz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        answered = False
    if not answered:
        guessed = "" if settings.public_url_given else " (POSTVOICE_PUBLIC_URL is not set)"
        typer.echo(
            f"warning: nothing answers at {url}{guessed}, so links in texts (return labels) "
            "would point nowhere; set POSTVOICE_PUBLIC_URL to your running server's address",
            err=True,
        )


@app.command()
def receive(
    rma: Annotated[str, typer.Argument(help="The RMA the warehouse has received.")],
) -> None:
    """The warehouse has a return: mark it received and settle its refund by policy
    (above the approval line: a ticket for a person, never a refund)."""
    import asyncio
    import getpass

    from dialog.receipt import refund_on_receipt
    from integrations.accounts import Accounts, User
    from integrations.protocols import ProviderError
    from integrations.store import CallEvents
    from voice.services import build_shop

    settings = load_settings()
    setup_logging("WARNING")

    async def settle():
        shop = build_shop(settings)
        shop.start_worker()
        try:
            services = shop.services(CallEvents(shop.store, None))
            if services.returns is None:
                return None, "no returns provider is configured"
            try:  # an RMA the returns provider does not know is an answer, not a ticket
                await services.returns.receive(rma)
            except ProviderError as exc:
                return None, str(exc)
            outcome = await refund_on_receipt(rma, services, flows=shop.flows, policy=shop.policy)
            actor = User(None, f"cli:{getpass.getuser()}"[:64], "admin")
            await asyncio.to_thread(
                Accounts(shop.store.engine).audit,
                actor,
                "return.receive",
                rma,
                via="cli",
                outcome=outcome.outcome,
                ticket=outcome.ticket_id,
            )
            await asyncio.sleep(0)  # let the worker pick up what was queued
            return outcome, None
        finally:
            await shop.close()

    outcome, refused = asyncio.run(settle())
    if outcome is None:
        raise _fail(f"{rma} cannot be received: {refused}")
    typer.echo(
        f"{outcome.rma} (order {outcome.order}): {outcome.outcome}"
        + (f", {outcome.amount_cents / 100:.2f}" if outcome.amount_cents else "")
        + (f", ticket {outcome.ticket_id}" if outcome.ticket_id else "")
        + (f" — {outcome.reason}" if outcome.reason else "")
    )


users_app = typer.Typer(
    help="Dashboard accounts: named people with roles (viewer, agent, approver, admin).",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")


def _accounts():
    """The accounts of the configured database (migrated first), and who runs the command."""
    import getpass

    from integrations.accounts import Accounts, User
    from integrations.store import Store, make_engine

    engine = make_engine(load_settings().database_url)
    Store(engine).migrate()
    # Whoever can run this command holds the database: they act as an admin, by their login.
    actor = User(None, f"cli:{getpass.getuser()}"[:64], "admin")
    return Accounts(engine), actor


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(1)


def _new_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise _fail("a password needs at least 10 characters")
    return password


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The name they log in with (and decisions show).")],
    role: Annotated[str, typer.Option(help="viewer, agent, approver or admin.")] = "viewer",
    email: Annotated[
        str | None, typer.Option(help="Their email: OpenID Connect sign-in finds them by it.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="No password: they sign in through OIDC only.")
    ] = False,
) -> None:
    """Add a person to the dashboard (asks for their password unless --no-password)."""
    password = None if no_password else _new_password(password_stdin)
    _change_account(
        "user.add",
        name,
        lambda a: a.add_user(name, role, password=password, email=email),
        f"added {name} ({role})",
        role_given=role,
        email=email,
    )


@users_app.command("list")
def users_list() -> None:
    """Every account, its role and how it signs in."""
    accounts, _ = _accounts()
    found = accounts.users()
    for u in found:
        ways = [w for w, ok in (("password", u.has_password), ("oidc", u.oidc_subject)) if ok]
        state = " (disabled)" if u.disabled else ""
        typer.echo(f"{u.name:24} {u.role:9} {','.join(ways) or '-':16} {u.email or ''}{state}")
    typer.echo(f"{len(found)} account(s)")


def _change_account(action: str, name: str, change, done: str, **detail) -> None:
    """Apply `change` to the accounts, say `done`, and put it in the audit log; exit 1 with
    the reason when it cannot be done."""
    accounts, actor = _accounts()
    try:
        change(accounts)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    accounts.audit(actor, action, name, via="cli", **detail)
    if done:
        typer.echo(done)


@users_app.command("role")
def users_role(
    name: Annotated[str, typer.Argument(help="The account.")],
    role: Annotated[str, typer.Argument(help="viewer, agent, approver or admin.")],
) -> None:
    """Change what someone may do."""
    _change_account(
        "user.role",
        name,
        lambda a: a.set_role(name, role),
        f"{name} is now {role}",
        role_given=role,
    )


@users_app.command("password")
def users_password(
    name: Annotated[str, typer.Argument(help="The account.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Set a new password (their sessions end)."""
    password = _new_password(password_stdin)
    _change_account(
        "user.password",
        name,
        lambda a: a.set_password(name, password),
        f"new password set for {name}",
    )


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="The account.")]) -> None:
    """Lock someone out: sessions end, API tokens stop (decisions keep their name)."""
    _change_account("user.disable", name, lambda a: a.disable(name), f"{name} is disabled")


@users_app.command("enable")
def users_enable(name: Annotated[str, typer.Argument(help="The account.")]) -> None:
    """Let a disabled account in again."""
    _change_account("user.enable", name, lambda a: a.enable(name), f"{name} is enabled")


@users_app.command("token")
def users_token(
    name: Annotated[str, typer.Argument(help="The account the token acts as.")],
    label: Annotated[str, typer.Option(help="What it is for (shown in `tokens`).")] = "api",
) -> None:
    """Make an API token for scripts (`Authorization: Bearer …`); printed once."""
    issued: list[str] = []
    _change_account(
        "token.issue", name, lambda a: issued.append(a.issue_token(name, label)), "", label=label
    )
    typer.echo(issued[0])


@users_app.command("tokens")
def users_tokens(name: Annotated[str, typer.Argument(help="The account.")]) -> None:
    """An account's API tokens (ids, labels, last use; never the tokens)."""
    accounts, _ = _accounts()
    for t in accounts.tokens(name):
        used = f"{t['last_used_at']:%Y-%m-%d %H:%M}" if t["last_used_at"] else "never used"
        state = " revoked" if t["revoked_at"] else ""
        typer.echo(f"#{t['id']} {t['label']} {used}{state}")


@users_app.command("revoke")
def users_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (`tokens`).")],
) -> None:
    """Stop an API token working."""
    accounts, actor = _accounts()
    if not accounts.revoke_token(token_id):
        raise _fail(f"no live token #{token_id}")
    accounts.audit(actor, "token.revoke", f"#{token_id}", via="cli")
    typer.echo(f"token #{token_id} revoked")


nlu_app = typer.Typer(help="Understanding: the labelled caller utterances.", no_args_is_help=True)
app.add_typer(nlu_app, name="nlu")


@nlu_app.command("eval")
def nlu_eval(
    set_path: Annotated[
        Path | None, typer.Option("--set", help="A labelled set (default: the shipped one).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="List every miss.")] = False,
    voices: Annotated[
        bool,
        typer.Option(
            "--voices", help="Score what callers in other voices were heard saying, per voice."
        ),
    ] = False,
    heard: Annotated[
        Path | None,
        typer.Option("--heard", help="With --voices: a directory of heard files."),
    ] = None,
    off: Annotated[
        list[str] | None,
        typer.Option("--without", help="With --voices: score without this technique."),
    ] = None,
) -> None:
    """Intent and slot accuracy of the understanding on a labelled set, or per caller voice."""
    if voices or heard is not None:
        from dialog.nlu.heard import DEFAULT_HEARD, format_voices, score_voices, without

        try:
            with without(off or []):
                scores = score_voices(heard or DEFAULT_HEARD)
        except ValueError as exc:
            raise _fail(str(exc)) from exc
        typer.echo(format_voices(scores, verbose=verbose))
        return
    from dialog.nlu.evaluate import evaluate, format_report

    typer.echo(format_report(evaluate(set_path), verbose=verbose))


@nlu_app.command("hear")
def nlu_hear(
    voice: Annotated[
        list[str] | None, typer.Option("--voice", help="A caller voice (default: every one).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to write the heard files.")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="A decoding option name=value (WhisperOptions field)."),
    ] = None,
    noise: Annotated[
        str | None, typer.Option("--noise", help="One noise level for every line.")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Voices decoded at once.")] = 2,
) -> None:
    """Have every caller voice say the labelled lines over a phone line and write what tiny.en
    heard (needs sox, espeak-ng, flite and festival: `make voices`)."""
    from dialog.nlu.heard import DEFAULT_HEARD
    from harness.callers import VOICES, missing_tools, voice_named
    from harness.heard import main_hear, parse_options

    try:
        chosen = [voice_named(name) for name in voice] if voice else list(VOICES)
        options = parse_options(option or [])
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    if missing := missing_tools(chosen):
        raise _fail(f"missing {', '.join(missing)}: make voices")
    setup_logging("ERROR")
    for path in main_hear([v.name for v in chosen], out or DEFAULT_HEARD, options, workers, noise):
        typer.echo(f"wrote {path}")


@app.command()
def conversations(
    target: Annotated[
        Path | None,
        typer.Argument(help="A conversation file or directory (default: the shipped set)."),
    ] = None,
    category: Annotated[str | None, typer.Option("--category", help="Only this category.")] = None,
    flows_dir: Annotated[
        Path | None, typer.Option("--flows", help="Your own flows directory.")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print each failed conversation's transcript.")
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write every conversation's result here.")
    ] = None,
) -> None:
    """Run typed conversations against the demo shop and print right outcomes per category;
    exits 1 when any conversation fails."""
    from harness.conversations import SHIPPED, format_results, results_json, run

    setup_logging("ERROR")
    outcomes = run(target or SHIPPED, flows_dir=flows_dir, category=category)
    typer.echo(format_results(outcomes, verbose=verbose))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(results_json(outcomes))
    if not outcomes or not all(o.passed for o in outcomes):
        raise typer.Exit(1)


@app.command()
def texts(
    target: Annotated[
        Path | None,
        typer.Argument(help="A text conversation file or directory (default: the shipped set)."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print each failed conversation's exchange.")
    ] = False,
    markdown: Annotated[
        Path | None,
        typer.Option("--markdown", help="Write what was typed and what came back here."),
    ] = None,
) -> None:
    """Run text conversations through the signed SMS route of a fresh demo shop and print
    the outcomes per category; exits 1 when any conversation fails."""
    from harness.text_conversations import format_results, run
    from harness.text_conversations import markdown as to_markdown

    setup_logging("ERROR")
    try:
        outcomes = run(target)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(format_results(outcomes, verbose=verbose))
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(to_markdown(outcomes))
    if not outcomes or not all(o.ok for o in outcomes):
        raise typer.Exit(1)


@app.command()
def doctor() -> None:
    """Check each configured provider (credentials, reachability, webhook URLs) and the models."""
    import asyncio

    from integrations.doctor import format_table, run_doctor
    from voice.stt_models import default_model_dir, resolve_second_model
    from voice.tts import default_voice

    settings = load_settings()
    setup_logging("WARNING")
    try:
        digits_model = resolve_second_model(settings.stt_second_model_dir)
    except FileNotFoundError:
        digits_model = None
    checks = asyncio.run(
        run_doctor(
            settings.provider_config(),
            database_url=settings.database_url,
            stt_model_dir=settings.stt_model_dir or default_model_dir(),
            digits_model=(settings.stt_second_model_dir, digits_model),
            tts_model=settings.tts_model or default_voice(),
        )
    )
    typer.echo(format_table(checks))
    raise typer.Exit(1 if any(c.status == "FAIL" for c in checks) else 0)


if __name__ == "__main__":  # pragma: no cover
    app()
