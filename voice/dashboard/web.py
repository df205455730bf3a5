"""What every dashboard page shares: the context handed to each router, templates, login."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from integrations.store import Store
from voice.dashboard.auth import COOKIE, SESSION_S, Gate, Principal, safe_next
from voice.settings import Settings

__all__ = ["NAV", "Dashboard", "render", "start_session"]

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))

NAV = (
    ("calls", "Calls", "/dashboard/calls"),
    ("tickets", "Tickets", "/dashboard/tickets"),
    ("returns", "Returns", "/dashboard/returns"),
    ("approvals", "Refund approvals", "/dashboard/approvals"),
    ("metrics", "Metrics", "/dashboard/metrics"),
    ("flows", "Flows", "/dashboard/flows"),
    ("audit", "Audit", "/dashboard/audit"),
    ("try", "Try it", "/try"),
)
"""(key, label, path) of the pages in the header, in order."""


@dataclass
class Dashboard:
    """What the dashboard's routers need: settings, the store, the running shop, the call
    machinery (for /try), and the gate that says who is asking."""

    settings: Settings
    store: Store
    gate: Gate
    shop: Any = None  # voice.services.Shop
    deps: Any = None  # voice.call.CallDeps
    extra: dict[str, Any] = field(default_factory=dict)

    def page(self, role: str = "viewer") -> Any:
        """Dependency: the page needs a logged-in person with `role` (the `Principal`)."""
        return Depends(self.gate.require_page(role))

    def api(self, role: str = "viewer") -> Any:
        """Dependency: the data route needs a person with `role`, by cookie or token."""
        return Depends(self.gate.require(role))

    async def audit(self, who: Principal, action: str, target: Any = None, **detail: Any) -> None:
        """Record a decision `who` made, for the audit page."""
        await asyncio.to_thread(
            self.gate.accounts.audit,
            who.user,
            action,
            None if target is None else str(target),
            via=who.channel,
            **detail,
        )


def render(
    dash: Dashboard,
    request: Request,
    template: str,
    *,
    active: str = "",
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page from `templates/`, with the header's navigation and the form CSRF token."""
    who = dash.gate.principal(request)
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "nav": NAV,
            "active": active,
            "csrf": dash.gate.csrf_token(request),
            "logged_in": who is not None and who.via != "open",
            "who": who,
            "dev": dash.settings.dev,
            **context,
        },
        status_code=status,
    )


def login_router(dash: Dashboard) -> APIRouter:
    """/login, /logout, and / → the dashboard."""
    router = APIRouter()

    def login_page(request: Request, next: str, error: str | None = None, status: int = 200):
        return render(
            dash,
            request,
            "login.html",
            active="login",
            next=safe_next(next),
            status=status,
            error=error,
            configured=dash.gate.configured,
            oidc=bool(dash.settings.oidc_issuer),
            oidc_name=dash.settings.oidc_display_name,
        )

    @router.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/dashboard/calls", status_code=303)

    @router.get("/dashboard", include_in_schema=False)
    async def dashboard_root() -> Response:
        return RedirectResponse("/dashboard/calls", status_code=303)

    @router.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "/dashboard") -> Response:
        """The login page: a name and password (or the admin token, without a name)."""
        if dash.gate.principal(request) is not None:
            return RedirectResponse(safe_next(next), status_code=303)
        return login_page(request, next)

    @router.post("/login", response_class=HTMLResponse)
    async def login(
        request: Request,
        name: str = Form("", max_length=64),
        token: str = Form("", max_length=1024),
        next: str = Form("/dashboard"),
    ) -> Response:
        """Check the name and password (or the admin token); start a session."""
        user = await asyncio.to_thread(dash.gate.log_in, name, token)
        if user is None:
            host = request.client.host if request.client else "?"
            log.warning("dashboard: failed login for %r from %s", name[:64], host)
            error = (
                "That name and password do not match."
                if name.strip()
                else ("That is not the admin token.")
            )
            return login_page(request, next, error=error, status=401)
        return await start_session(dash, user, safe_next(next), via="password" if name else "token")

    @router.post("/logout")
    async def logout(request: Request, csrf: str = Form("")) -> Response:
        """End the session (the form's CSRF token is required: no other site can log you out)."""
        dash.gate.check_csrf(request, csrf)
        await asyncio.to_thread(dash.gate.accounts.end_session, request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    return router


async def start_session(dash: Dashboard, user: Any, target: str, *, via: str) -> Response:
    """Log `user` in: a new session, its cookie, an audit line, and on to `target`."""
    value = await asyncio.to_thread(dash.gate.start_session, user)
    await asyncio.to_thread(dash.gate.accounts.audit, user, "login", via=via)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_S,
        httponly=True,
        samesite="lax",
        secure=dash.settings.public_url.startswith("https://"),
    )
    return response


def mount(app: FastAPI, dash: Dashboard) -> None:
    """Add the dashboard's pages, its static files and the login routes to `app`."""
    from voice.dashboard import insights, oidc, pages, trycall

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(login_router(dash))
    app.include_router(oidc.router(dash))
    app.include_router(pages.router(dash))
    app.include_router(insights.router(dash))
    app.include_router(trycall.router(dash))
