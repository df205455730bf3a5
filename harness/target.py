"""The server a replay talks to: the real app started in this process, or one running at a URL."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from voice.settings import Settings

if TYPE_CHECKING:
    from integrations.providers import BuildProviders

__all__ = ["ReplayTarget", "free_port", "in_process_server", "target_for", "target_from_url"]


@dataclass
class ReplayTarget:
    """Where the server is and how to talk to it as Twilio would."""

    http_base: str
    ws_url: str
    public_url: str
    auth_token: str | None
    admin_token: str | None
    reset: Callable[[], None] | None = None  # reseeds the demo shop (in-process server only)


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def in_process_server(
    database_url: str,
    engines: Any = None,
    *,
    overrides: dict[str, Any] | None = None,
    wrap: Callable[[Any], Any] | None = None,
    make_providers: BuildProviders | None = None,
):
    """Start the real app on a free loopback port in this process; yields its ReplayTarget.
    `overrides` are Settings fields; `make_providers` chooses the shop's providers (default
    `build_providers`) and `wrap(app)` returns the ASGI app to serve (the soak injects faults
    through both)."""
    import uvicorn

    from integrations.demo import seed
    from integrations.providers import build_providers
    from integrations.store import Store, make_engine
    from voice.server import create_app

    port = free_port()
    auth, admin = secrets.token_hex(16), secrets.token_hex(16)
    settings = Settings(
        twilio_auth_token=auth,
        admin_token=admin,
        public_url=f"http://127.0.0.1:{port}",
        database_url=database_url,
        allow_injection=True,
        dev=False,
        **(overrides or {}),
    )
    engine = make_engine(database_url)
    Store(engine).create_all()
    seed(engine)
    app = create_app(settings, engines, make_providers=make_providers or build_providers)
    config = uvicorn.Config(
        wrap(app) if wrap is not None else app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        ws_ping_interval=None,
        lifespan="on",
        timeout_graceful_shutdown=5,  # a connection that never closes must not hang the exit
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the in-process server did not start")
        await asyncio.sleep(0.05)
    try:
        yield ReplayTarget(
            http_base=f"http://127.0.0.1:{port}",
            ws_url=f"ws://127.0.0.1:{port}/twilio/media",
            public_url=settings.public_url,
            auth_token=auth,
            admin_token=admin,
            reset=lambda: _reseed(engine),
        )
    finally:
        server.should_exit = True
        await task
        engine.dispose()


def _reseed(engine: Any) -> None:
    """A fresh demo shop between calls, with an empty outbox: what it remembered (a line
    refunded, a label bought) was about the shop the reseed replaced."""
    from integrations.demo import seed
    from integrations.store import Store

    seed(engine)
    Store(engine).forget_decisions()


def target_from_url(url: str, settings: Settings) -> ReplayTarget:
    """A running server at ws(s)://host:port/twilio/media, with the secrets of `settings` (the
    environment's, which the server is taken to share)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"--url must be ws:// or wss://, got {url!r}")
    http_base = urlunsplit((scheme, parts.netloc, "", "", ""))
    return ReplayTarget(
        http_base=http_base,
        ws_url=url,
        public_url=settings.public_url if settings.twilio_auth_token else http_base,
        auth_token=settings.twilio_auth_token.get_secret_value()
        if settings.twilio_auth_token
        else None,
        admin_token=settings.admin_token.get_secret_value() if settings.admin_token else None,
    )


@contextlib.asynccontextmanager
async def target_for(url: str | None, settings: Settings):
    """The server at `url` (reached with the secrets of `settings`), or (without one) the real
    app in this process on a temporary demo shop."""
    if url:
        yield target_from_url(url, settings)
        return
    with tempfile.TemporaryDirectory(prefix="postvoice-replay-") as tmp:
        db = Path(tmp) / "replay.db"
        async with in_process_server(f"sqlite:///{db}") as server:
            yield server
