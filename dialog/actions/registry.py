"""The action registry: named Python actions a flow may run, and what each may do.

An action is an `async def name(ctx: ActionContext) -> None` registered with
`@ACTIONS.action("name", sets={"slot": "type"})`. It reads and writes slots, reaches the
world only through `ctx.services` (the integrations protocols), records its decisions with
`ctx.record`, and speaks only through `ctx.filler()`, `ctx.transfer()` and `ctx.hang_up()`;
all wording lives in the flow files. `sets` declares the slots it fills, so the loader can tell
a flow naming an unknown slot from one reading an action's result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any, TypeVar

from dialog.events import FILLER_AFTER_S, CallInfo, EndCall, Event, Say, Transfer
from dialog.policy import Policy
from integrations.models import Order
from integrations.protocols import ProviderError, Services

__all__ = [
    "ACTIONS",
    "ActionContext",
    "ActionRegistry",
    "ActionSpec",
    "ServiceUnavailable",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


class ServiceUnavailable(Exception):
    """A service an action depends on failed, timed out, or is not configured."""


@dataclass
class ActionContext:
    """What an action may use: the services, the policy, the call's slots, and a voice.

    `emit` hands an event to the caller's ear and returns once it has been taken, so a
    filler sentence is heard while the slow lookup it announces goes on. `filler_after` is how
    long a lookup may take before that sentence is said (0: before every lookup).
    """

    services: Services
    policy: Policy
    slots: dict[str, Any]
    call: CallInfo
    now: datetime
    tz: tzinfo
    emit: Callable[[Event], Awaitable[None]]
    sms_templates: Mapping[str, str] = field(default_factory=dict)
    heard: str = ""
    caller_words: list[str] = field(default_factory=list)
    summary: Callable[[], str] = lambda: ""
    memo: dict[str, Any] = field(default_factory=dict)
    filler_text: str | None = None
    timeout: float = 8.0
    human_number: str = ""
    filler_after: float = FILLER_AFTER_S

    @property
    def today(self) -> date:
        """The shop's local date."""
        return self.now.astimezone(self.tz).date()

    @property
    def order(self) -> Order | None:
        """The order the conversation is about, if any."""
        value = self.slots.get("order")
        return value if isinstance(value, Order) else None

    def order_number(self) -> str | None:
        """The current order's number, for events."""
        return self.order.number if self.order else None

    def key(self, *parts: object) -> str:
        """An idempotency key scoped to this call."""
        return ":".join([self.call.call_sid, *(str(p) for p in parts)])

    def in_reply(self, text: str) -> None:
        """Put `text` in the reply, after what the action says (a text message's own link)."""
        self.memo.setdefault("in_reply", []).append(text)

    async def filler(self) -> None:
        """Say the step's "one moment" sentence, once per turn, for a slow call; never in
        text messages, where it would only be one more message."""
        if self.call.on_screen:
            return
        if self.filler_text and not self.memo.get("filled"):
            self.memo["filled"] = True
            await self.emit(Say(self.filler_text, filler=True))

    async def fetch(self, awaitable: Awaitable[_T], *, announce: bool = True) -> _T:
        """Await a service call with a timeout, saying the filler if it is slow (`announce`).

        The timeout runs from the start, the filler's time included. A provider's refusal (a
        non-retryable `ProviderError`, such as "already_shipped") is raised as is, for the
        action to turn into words; any other failure becomes `ServiceUnavailable`.
        """
        announcing = (
            announce
            and bool(self.filler_text)
            and not self.memo.get("filled")
            and not self.call.on_screen
        )
        if announcing and self.filler_after <= 0:
            await self.filler()
            announcing = False
        try:
            async with asyncio.timeout(self.timeout):
                if announcing:
                    return await self._announced(awaitable)
                return await awaitable
        except ServiceUnavailable:
            raise
        except ProviderError as exc:
            if not exc.retryable:
                raise
            _log.warning("provider failed on %s: %r", self.call.call_sid, exc)
            raise ServiceUnavailable(str(exc)) from exc
        except Exception as exc:
            _log.warning("service call failed on %s: %r", self.call.call_sid, exc)
            raise ServiceUnavailable(str(exc)) from exc

    async def _announced(self, awaitable: Awaitable[_T]) -> _T:
        """`awaitable`'s result, the filler said only if it is not ready in `filler_after`: a
        lookup that answers at once is not kept waiting behind a sentence about waiting.

        The lookup runs as a task of its own while the filler is said; if this is cancelled
        (the call ended, or the timeout), the lookup is cancelled too, and waited for, so
        nothing of it outlives the turn."""
        task = asyncio.ensure_future(awaitable)
        try:
            done, _ = await asyncio.wait({task}, timeout=self.filler_after)
            if not done:
                await self.filler()
            return await task
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})

    async def record(self, type: str, *, order: str | None = None, **data: Any) -> None:
        """Record an event (about the current order unless told); never breaks the call."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.services.events.record(
                    type, order=order if order is not None else self.order_number(), **data
                )
        except Exception:
            _log.exception("could not record %s on %s", type, self.call.call_sid)

    async def transfer(self) -> None:
        """Hand the caller to a person with the call's summary."""
        await self.emit(Transfer(number=self.human_number, summary=self.summary()))

    async def hang_up(self, reason: str) -> None:
        """End the call."""
        await self.emit(EndCall(reason))

    def sms(self, name: str, **fields: Any) -> str:
        """The SMS template `name` from the conversation file, filled in."""
        template = self.sms_templates.get(name, "")
        return template.format_map({"shop": self.services.shop_name, **fields}).strip()


ActionFn = Callable[[ActionContext], Awaitable[None]]


@dataclass(frozen=True)
class ActionSpec:
    """A registered action: its function, the slots it sets (with types), and its doc."""

    name: str
    run: ActionFn
    sets: Mapping[str, str]
    doc: str
    changes_world: bool = False


class ActionRegistry:
    """Actions by name."""

    def __init__(self) -> None:
        self._specs: dict[str, ActionSpec] = {}

    def action(
        self, name: str, *, sets: Mapping[str, str] | None = None, changes_world: bool = False
    ) -> Callable[[ActionFn], ActionFn]:
        """Register `fn` as action `name`, setting the slots in `sets` (name → slot type).

        `changes_world` marks an action a caller must confirm first (a return, a refund, a
        new delivery day, an address, a claim): the loader refuses a flow that runs it
        unconfirmed."""

        def register(fn: ActionFn) -> ActionFn:
            if name in self._specs:
                raise ValueError(f"action {name!r} registered twice")
            doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
            self._specs[name] = ActionSpec(name, fn, dict(sets or {}), doc, changes_world)
            return fn

        return register

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __getitem__(self, name: str) -> ActionSpec:
        return self._specs[name]

    def names(self) -> list[str]:
        """Every registered action name, sorted."""
        return sorted(self._specs)

    def slot_types(self) -> dict[str, str]:
        """Every slot some action sets, with its type."""
        types: dict[str, str] = {}
        for spec in self._specs.values():
            types.update(spec.sets)
        return types


ACTIONS = ActionRegistry()
"""The registry the shipped actions live in (importing `dialog.actions` fills it)."""
