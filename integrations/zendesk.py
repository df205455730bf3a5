"""Zendesk Support tickets (`Helpdesk`): the call's summary and transcript for a person.

`POST https://{subdomain}.zendesk.com/api/v2/tickets.json`, authenticated as
`{agent email}/token` with an API token. Creating a ticket is made safe to repeat twice over:

- Zendesk's `Idempotency-Key` header (Zendesk answers a repeat within its window with the
  ticket it already made), so the POST is retried like a safe request;
- the same key is the ticket's `external_id`, and a ticket with that `external_id` is looked
  up first, so a retry days later (after Zendesk's window) still finds the first ticket.

The body is a private (internal) comment: it may hold the caller's words, which the customer
need not be emailed. The requester is the customer when their email is known; their phone
number, when known, ends the body so an agent can call back.

Files (photos of damage) are added with Zendesk's uploads API: each file is `POST
/uploads.json?filename=…` (the first upload's token passed to the next, so they share one
token), then one private comment on the ticket names that token. The comment ends with a
marker of the idempotency key, and the ticket's comments are read first, so a retry finds the
comment it made instead of adding the photos twice.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from integrations.http import DEFAULT_POLICY, DEFAULT_TIMEOUT, ProviderHttp, RetryPolicy, Sleep
from integrations.models import Attachment, Ticket
from integrations.protocols import ProviderError

__all__ = ["ZendeskHelpdesk", "call_ticket_body", "zendesk_priority"]

_PRIORITIES = {"low": "low", "normal": "normal", "high": "high", "urgent": "urgent"}


def zendesk_priority(priority: str) -> str:
    """Zendesk's priority for ours ("low", "normal", "high", "urgent"); unknown is normal."""
    return _PRIORITIES.get(priority.lower().strip(), "normal")


def call_ticket_body(summary: str, transcript: Iterable[tuple[str, str]]) -> str:
    """A ticket body for a call: the summary, then the transcript as `role: text` lines."""
    lines = [summary.strip(), "", "Transcript:"]
    lines.extend(f"{role}: {text.strip()}" for role, text in transcript if text.strip())
    return "\n".join(lines)


def _tag(text: str) -> str:
    # Zendesk tags are single words: spaces would split one tag into several.
    return "_".join(text.strip().lower().split())


class ZendeskHelpdesk:
    """`Helpdesk` over the Zendesk Support API."""

    def __init__(
        self,
        subdomain: str,
        email: str,
        api_token: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.subdomain = subdomain.strip().removesuffix(".zendesk.com")
        self.http = ProviderHttp(
            "Zendesk",
            f"https://{self.subdomain}.zendesk.com/api/v2",
            auth=(f"{email}/token", api_token),
            headers={"Content-Type": "application/json"},
            timeout=timeout,
            transport=transport,
            policy=policy,
            sleep=sleep,
            rand=rand,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

    async def create_ticket(
        self,
        subject: str,
        body: str,
        *,
        requester_phone: str | None,
        requester_email: str | None,
        tags: list[str],
        priority: str,
        idempotency_key: str,
    ) -> Ticket:
        """Open a ticket once per `idempotency_key`; returns it (or the one made before)."""
        if not idempotency_key:
            raise ValueError("a ticket needs an idempotency_key")
        existing = await self._by_external_id(idempotency_key)
        if existing is not None:
            return existing
        lines = [body.rstrip()]
        if requester_phone:
            lines.append(f"\nCaller's phone: {requester_phone}")
        ticket: dict[str, Any] = {
            "subject": subject[:255],
            "comment": {"body": "\n".join(lines), "public": False},
            "priority": zendesk_priority(priority),
            "tags": sorted({_tag(t) for t in [*tags, "postvoice"] if t.strip()}),
            "external_id": idempotency_key,
        }
        if requester_email:
            name = requester_email.split("@", 1)[0]
            ticket["requester"] = {"email": requester_email, "name": name}
        response = await self.http.request(
            "POST",
            "/tickets.json",
            json={"ticket": ticket},
            headers={"Idempotency-Key": idempotency_key[:255]},
            safe=True,  # made safe by the Idempotency-Key header
        )
        self._raise_for(response)
        return self._ticket(response.json()["ticket"])

    async def attach(
        self, ticket_id: str, files: list[Attachment], *, note: str, idempotency_key: str
    ) -> list[str]:
        """Upload `files` and add them to the ticket in one private comment; the ids of
        Zendesk's attachments (the first comment's, when this key attached them before)."""
        if not idempotency_key:
            raise ValueError("an attachment needs an idempotency_key")
        if not files or any(not f.data for f in files):
            raise ValueError("an attachment needs its bytes")
        marker = f"[postvoice:{idempotency_key}]"
        done = await self._comment_with(ticket_id, marker)
        if done is not None:
            return done
        token = ""
        for f in files:
            params = {"filename": f.filename}
            if token:
                params["token"] = token
            response = await self.http.request(
                "POST",
                "/uploads.json",
                params=params,
                content=f.data,
                headers={"Content-Type": f.content_type or "application/octet-stream"},
                safe=True,  # an upload no comment names is discarded by Zendesk: harmless
            )
            self._raise_for(response)
            token = (response.json().get("upload") or {}).get("token") or token
        if not token:
            raise ProviderError("Zendesk gave no upload token", code="invalid_upload")
        body = f"{note.rstrip()}\n\n{marker}" if note.strip() else marker
        response = await self.http.request(
            "PUT",
            f"/tickets/{ticket_id}.json",
            json={"ticket": {"comment": {"body": body, "public": False, "uploads": [token]}}},
            safe=False,  # a second comment would show the photos twice; the marker guards
        )
        self._raise_for(response)
        return await self._comment_with(ticket_id, marker) or []

    async def _comment_with(self, ticket_id: str, marker: str) -> list[str] | None:
        """The attachment ids of the ticket's comment holding `marker`, or None."""
        response = await self.http.request(
            "GET", f"/tickets/{ticket_id}/comments.json", params={"sort_order": "desc"}, safe=True
        )
        self._raise_for(response)
        for comment in response.json().get("comments") or []:
            if marker in (comment.get("body") or ""):
                return [str(a["id"]) for a in comment.get("attachments") or [] if "id" in a]
        return None

    async def check(self) -> str:
        """A cheap authenticated call (`GET /users/me.json`); returns the agent's email."""
        response = await self.http.request("GET", "/users/me.json", safe=True)
        self._raise_for(response)
        user = response.json().get("user") or {}
        if not user.get("id"):
            # Zendesk answers anonymous callers with an empty user rather than 401.
            raise ProviderError("Zendesk did not accept the email and token", code="auth")
        return user.get("email") or ""

    async def _by_external_id(self, key: str) -> Ticket | None:
        response = await self.http.request(
            "GET", "/tickets.json", params={"external_id": key}, safe=True
        )
        self._raise_for(response)
        found = response.json().get("tickets") or []
        return self._ticket(found[0]) if found else None

    def _ticket(self, raw: dict[str, Any]) -> Ticket:
        ticket_id = str(raw["id"])
        return Ticket(
            id=ticket_id,
            subject=raw.get("subject") or "",
            status=raw.get("status") or "new",
            url=f"https://{self.subdomain}.zendesk.com/agent/tickets/{ticket_id}",
        )

    @staticmethod
    def _raise_for(response: httpx.Response) -> None:
        if response.status_code < 300:
            return
        if response.status_code in (401, 403):
            raise ProviderError("Zendesk refused the email and API token", code="auth")
        try:
            detail = response.json()
        except ValueError:
            detail = {"error": response.text[:200]}
        error = detail.get("error") if isinstance(detail, dict) else None
        if isinstance(error, dict):
            error = error.get("title") or error.get("message")
        description = detail.get("description", "") if isinstance(detail, dict) else ""
        code = "invalid_ticket" if response.status_code == 422 else f"http_{response.status_code}"
        raise ProviderError(f"Zendesk: {error or response.status_code} {description}", code=code)
