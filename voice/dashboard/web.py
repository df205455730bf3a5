"""What every dashboard page shares: the context handed to each router, templates, login."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from integrations.store import Store
from voice.dashboard.auth import COOKIE, AdminGate, safe_next
from voice.settings import Settings

__all__ = ["NAV", "Dashboard", "render"]

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
    ("try", "Try it", "/try"),
)
"""(key, label, path) of the pages in the header, in order."""


@dataclass
class Dashboard:
    """What the dashboard's routers need: settings, the store, the running shop, the call
    machinery (for /try), and the gate that checks the admin token."""

    settings: Settings
    store: Store
    gate: AdminGate
    shop: Any = None  # voice.services.Shop
    deps: Any = None  # voice.call.CallDeps
    extra: dict[str, Any] = field(default_factory=dict)

    def page(self) -> Any:
        """Dependency: the page needs a logged-in admin."""
        return Depends(self.gate.require_page)

    def api(self) -> Any:
        """Dependency: the data route needs the admin token (header or cookie)."""
        return Depends(self.gate.require_api)


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
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "nav": NAV,
            "active": active,
            "csrf": dash.gate.csrf_token(request),
            "logged_in": not dash.gate.open,
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
            configured=dash.gate.token is not None,
        )

    @router.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/dashboard/calls", status_code=303)

    @router.get("/dashboard", include_in_schema=False)
    async def dashboard_root() -> Response:
        return RedirectResponse("/dashboard/calls", status_code=303)

    @router.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "/dashboard") -> Response:
        """The login page: one field, the admin token."""
        if dash.gate.allowed(request):
            return RedirectResponse(safe_next(next), status_code=303)
        return login_page(request, next)

    @router.post("/login", response_class=HTMLResponse)
    async def login(
        request: Request, token: str = Form(""), next: str = Form("/dashboard")
    ) -> Response:
        """Check the token; set the session cookie."""
        if not dash.gate.valid_token(token.strip()):
            host = request.client.host if request.client else "?"
            log.warning("dashboard: failed login from %s", host)
            return login_page(request, next, error="That is not the admin token.", status=401)
        response = RedirectResponse(safe_next(next), status_code=303)
        response.set_cookie(
            COOKIE,
            dash.gate.session_value(),
            max_age=12 * 3600,
            httponly=True,
            samesite="lax",
            secure=dash.settings.public_url.startswith("https://"),
        )
        return response

    @router.post("/logout")
    async def logout() -> Response:
        """Forget the session cookie."""
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    return router


def mount(app: FastAPI, dash: Dashboard) -> None:
    """Add the dashboard's pages, its static files and the login routes to `app`."""
    from voice.dashboard import insights, pages, trycall

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(login_router(dash))
    app.include_router(pages.router(dash))
    app.include_router(insights.router(dash))
    app.include_router(trycall.router(dash))
