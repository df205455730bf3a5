"""The `postvoice` command."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from integrations.redact import RedactingFilter
from voice.settings import Settings

app = typer.Typer(help="postvoice: a phone agent for post-purchase support.", no_args_is_help=True)

log = logging.getLogger("postvoice")


def setup_logging(level: str = "INFO") -> None:
    """Log to stderr, with card numbers redacted from every record."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


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

    overrides: dict = {}
    if dev:
        overrides.update(dev=True, allow_injection=True)
    if port is not None:
        overrides["port"] = port
    if host is not None:
        overrides["host"] = host
    settings = Settings(**overrides)
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
    """(Re)create the embedded demo shop of DESIGN.md in the configured database."""
    from datetime import date

    from integrations.demo import seed as seed_shop
    from integrations.store import Store, make_engine

    settings = Settings()
    setup_logging()
    engine = make_engine(settings.database_url)
    Store(engine).create_all()
    seed_shop(engine, date.fromisoformat(today) if today else None)
    typer.echo(f"demo shop seeded in {engine.url.render_as_string(hide_password=True)}")


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
) -> None:
    """Play Twilio's part: stream a scenario's caller audio to the agent and check what it says."""
    from voice.replay import run_target

    setup_logging("WARNING")
    code = run_target(target, url=url, out=out, realtime=realtime, from_number=from_number)
    raise typer.Exit(code)


@app.command()
def worker(
    drain: Annotated[bool, typer.Option("--drain", help="Deliver what is due, then exit.")] = False,
    worker_id: Annotated[str | None, typer.Option(help="Name in logs and row locks.")] = None,
) -> None:
    """Deliver the outbox (texts, tickets, refunds, labels) as its own process."""
    from integrations.demo import DemoShop
    from integrations.labels import EmbeddedLabels
    from integrations.providers import build_label_maker, build_providers
    from integrations.worker import RetryPolicy
    from integrations.worker import main as worker_main

    settings = Settings()
    setup_logging()
    config = settings.provider_config()

    def providers(engine):
        labels = build_label_maker(config, engine) or EmbeddedLabels(
            settings.label_secret(), settings.public_url, shop_name=settings.shop_name
        )
        return build_providers(config, engine, DemoShop(engine, labels=labels))

    raise typer.Exit(
        worker_main(
            settings.database_url,
            providers=providers,
            worker_id=worker_id,
            poll_s=settings.worker_poll_s,
            policy=RetryPolicy(
                max_attempts=settings.outbox_max_attempts, cap_s=settings.outbox_backoff_cap_s
            ),
            drain=drain,
        )
    )


nlu_app = typer.Typer(help="Understanding: the labelled caller utterances.", no_args_is_help=True)
app.add_typer(nlu_app, name="nlu")


@nlu_app.command("eval")
def nlu_eval(
    set_path: Annotated[
        Path | None, typer.Option("--set", help="A labelled set (default: the shipped one).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="List every miss.")] = False,
) -> None:
    """Intent and slot accuracy of the understanding on a labelled set."""
    from dialog.nlu.evaluate import evaluate, format_report

    typer.echo(format_report(evaluate(set_path), verbose=verbose))


@app.command()
def doctor() -> None:
    """Check each configured provider (credentials, reachability, webhook URLs) and the models."""
    import asyncio

    from integrations.doctor import format_table, run_doctor
    from voice.stt import default_model_dir
    from voice.tts import default_voice

    settings = Settings()
    setup_logging("WARNING")
    checks = asyncio.run(
        run_doctor(
            settings.provider_config(),
            database_url=settings.database_url,
            stt_model_dir=settings.stt_model_dir or default_model_dir(),
            tts_model=settings.tts_model or default_voice(),
        )
    )
    typer.echo(format_table(checks))
    raise typer.Exit(1 if any(c.status == "FAIL" for c in checks) else 0)


if __name__ == "__main__":  # pragma: no cover
    app()
