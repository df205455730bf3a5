"""A line worded for the ear and for the screen: `{voice: "...", text: "..."}` in a flow file.

Wherever a flow or `conversation.yaml` takes a sentence, it may give two: what a caller hears
and what a text message (SMS, WhatsApp) reads. A plain string is both. The line is a `Worded`:
a `str` whose value is the voice wording, so everything that speaks keeps working unchanged,
with the screen's wording beside it on `.text`. `for_screen(flows)` is the same flows with every
line taken in its text wording, which the agent runs when `CallInfo.on_screen`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from pydantic import BaseModel, ValidatorFunctionWrapHandler, WrapValidator

__all__ = ["Line", "Worded", "for_screen", "screen_wording"]

_KEYS = ("voice", "text")


class Worded(str):
    """A line with two wordings: its `str` value is the voice one, `text` the screen one."""

    text: str

    def __new__(cls, voice: str, text: str) -> Worded:
        line = super().__new__(cls, voice)
        line.text = text
        return line

    @property
    def voice(self) -> str:
        """The wording for the ear."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"Worded(voice={self.voice!r}, text={self.text!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Worded, (self.voice, self.text))


def _line(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A plain string as it is; `{voice, text}` as a `Worded`, each wording non-empty text."""
    if isinstance(value, Worded):
        return value
    if not isinstance(value, dict):
        return handler(value)
    keys = [k for k in value if k != "__line__"]
    unknown = [str(k) for k in keys if k not in _KEYS]
    if unknown:
        raise ValueError(
            f"a worded line takes `voice:` and `text:` only, not `{unknown[0]}:` "
            "(or write one string for both)"
        )
    missing = [k for k in _KEYS if k not in value]
    if missing:
        raise ValueError(f"a worded line needs `{missing[0]}:` as well (or write one string)")
    for key in _KEYS:
        if not isinstance(value[key], str) or not value[key].strip():
            raise ValueError(f"`{key}:` must be a non-empty sentence")
    return Worded(handler(value["voice"]), value["text"])


Line = Annotated[str, WrapValidator(_line)]
"""A flow line: one string for both channels, or `{voice: ..., text: ...}`."""


def screen_wording(line: str) -> str:
    """The line as a text message reads it."""
    return line.text if isinstance(line, Worded) else line


def _screen_value(value: Any) -> Any:
    if isinstance(value, Worded):
        return value.text
    if isinstance(value, BaseModel):
        return _screen_model(value)
    if isinstance(value, list):
        return [_screen_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_screen_value(v) for v in value)
    if isinstance(value, dict):
        return {k: _screen_value(v) for k, v in value.items()}
    return value


def _screen_model(model: BaseModel) -> BaseModel:
    update = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        screened = _screen_value(value)
        if screened is not value:
            update[name] = screened
    return model.model_copy(update=update) if update else model


def for_screen(flows: Any) -> Any:
    """`flows` (a `dialog.loader.Flows`) with every line in its text wording."""
    return replace(
        flows,
        flows={
            name: replace(flow, spec=_screen_model(flow.spec)) for name, flow in flows.flows.items()
        },
        conversation=_screen_model(flows.conversation),
        faq=tuple(_screen_model(entry) for entry in flows.faq),
    )
