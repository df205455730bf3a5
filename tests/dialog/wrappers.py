"""Capabilities wrapped for tests: one that fails on demand, one that notes what it was asked.

The demo shop is the real thing and has no test switches; a test that needs a provider to be
down, or to know whether a look-up has run yet, wraps the shop's capability in one of these and
hands the wrapper to the agent in its place (`tests.dialog.calls.services`).
"""

from __future__ import annotations

import asyncio
import inspect
from abc import ABC, abstractmethod
from typing import Any

from integrations.protocols import ProviderError


class _Around(ABC):
    """Forwards everything to `inner`; its async methods run `_before` when awaited.

    When awaited, not when called: the agent makes the coroutine of a look-up before it
    decides whether to say "one moment" (with `filler_after` 0 it says it first, and the
    look-up runs only after).
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            self._before(name, args)
            return await attr(*args, **kwargs)

        return call

    @abstractmethod
    def _before(self, name: str, args: tuple[Any, ...]) -> None:
        """What a wrapper does before the shop's own method runs."""


class Failing(_Around):
    """While `down`, the `methods` named (with none named, every one) raise.

    As a provider that is down: a retryable `ProviderError`, the way our adapters report an
    outage. Otherwise the shop's own capability answers.
    """

    def __init__(self, inner: Any, *methods: str, down: bool = False) -> None:
        super().__init__(inner)
        self._methods = frozenset(methods)
        self.down = down

    def _before(self, name: str, args: tuple[Any, ...]) -> None:
        if self.down and (not self._methods or name in self._methods):
            raise ProviderError(
                f"{type(self._inner).__name__} is down", code="unavailable", retryable=True
            )


class Recording(_Around):
    """Notes each call in `calls`, as "method arg …", when it runs."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.calls: list[str] = []

    def _before(self, name: str, args: tuple[Any, ...]) -> None:
        self.calls.append(" ".join([name, *(str(a) for a in args)]))


class Slow:
    """The `methods` named (with none named, every async one) answer `seconds` late.

    As a provider that is slow to answer, so the agent's "one moment" is due. What began,
    answered and was cancelled is noted in `started`, `finished` and `cancelled`.
    """

    def __init__(self, inner: Any, seconds: float, *methods: str) -> None:
        self._inner = inner
        self._methods = frozenset(methods)
        self.seconds = seconds
        self.started: list[str] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attr) or (self._methods and name not in self._methods):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.started.append(name)
            try:
                await asyncio.sleep(self.seconds)
            except asyncio.CancelledError:
                self.cancelled.append(name)
                raise
            result = await attr(*args, **kwargs)
            self.finished.append(name)
            return result

        return call
