"""Reading a flows directory: every YAML file parsed with its line numbers and validated
against `dialog.schema`, each mistake kept as "file:line: message" (never raised).

Only the files themselves are checked here; what one file says of another (steps, slots,
flows that exist) is for `dialog.flow_checks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dialog.schema import ConversationFile, FaqFile, FlowFile
from dialog.yaml_lines import LineDict, LineList, YamlError, line_of, load_yaml

__all__ = ["CONVERSATION_FILE", "FAQ_FILE", "FlowFiles", "read_dir"]

CONVERSATION_FILE = "conversation.yaml"
FAQ_FILE = "faq.yaml"


def _mark_lines(data: Any) -> None:
    """Copy each mapping's line into a `__line__` key where the schema expects one."""
    if isinstance(data, LineDict):
        data["__line__"] = data.line


def _prepare_flow(data: LineDict) -> None:
    _mark_lines(data)
    steps = data.get("steps")
    if isinstance(steps, LineList):
        for step in steps:
            _mark_lines(step)
            if isinstance(step, LineDict):
                for key in ("branch", "next"):
                    arms = step.get(key)
                    if isinstance(arms, LineList):
                        for arm in arms:
                            _mark_lines(arm)
    slots = data.get("slots")
    if isinstance(slots, LineDict):
        for decl in slots.values():
            _mark_lines(decl)


def _schema_errors(path: Path, data: Any, exc: ValidationError) -> list[str]:
    errors = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p[:1].isupper())]
        where = ".".join(str(p) for p in loc if p not in ("say", "collect", "action", "branch"))
        msg = err["msg"].removeprefix("Value error, ")
        line = line_of(data, loc)
        errors.append(f"{path}:{line}: {where + ': ' if where else ''}{msg}")
    return errors


@dataclass
class FlowFiles:
    """What a flows directory holds, as read: each flow's file and spec (and its raw mapping,
    for the lines of keys the spec drops), the conversation, its SMS templates, the FAQ, and
    every mistake found so far."""

    directory: Path
    flows: dict[str, tuple[Path, FlowFile]] = field(default_factory=dict)
    raw: dict[str, LineDict] = field(default_factory=dict)
    conversation: ConversationFile | None = None
    conversation_data: Any = None
    sms: dict[str, str] = field(default_factory=dict)
    sms_lines: dict[str, int] = field(default_factory=dict)
    faq: FaqFile | None = None
    faq_data: Any = None
    errors: list[str] = field(default_factory=list)


def _read_mapping(path: Path, key: str, what: str, read: FlowFiles) -> LineDict | None:
    """A YAML file that must be a mapping starting with `key:`; its mistakes go to `read`."""
    try:
        data = load_yaml(path)
    except YamlError as exc:
        read.errors.append(f"{path}:{exc.line}: {exc}")
        return None
    if not isinstance(data, LineDict) or key not in data:
        read.errors.append(f"{path}:1: the {what} file starts with `{key}:`")
        return None
    return data


def _read_conversation(path: Path, read: FlowFiles) -> None:
    data = _read_mapping(path, "conversation", "conversation", read)
    if data is None:
        return
    sms = data.pop("sms", None)
    if isinstance(sms, LineDict):
        for name, text in sms.items():
            if not isinstance(text, str):
                read.errors.append(f"{path}:{sms.line_for(name)}: sms.{name}: must be text")
                continue
            read.sms[name] = text
            read.sms_lines[name] = sms.line_for(name)
    elif sms is not None:
        read.errors.append(f"{path}:{data.line}: sms: must map template names to text")
    _mark_lines(data)
    _mark_lines(data.get("conversation"))
    try:
        read.conversation = ConversationFile.model_validate(data)
        read.conversation_data = data
    except ValidationError as exc:
        read.errors.extend(_schema_errors(path, data, exc))


def _read_faq(path: Path, read: FlowFiles) -> None:
    data = _read_mapping(path, "faq", "FAQ", read)
    if data is None:
        return
    _mark_lines(data)
    entries = data.get("faq")
    if isinstance(entries, LineList):
        for entry in entries:
            _mark_lines(entry)
    try:
        read.faq = FaqFile.model_validate(data)
        read.faq_data = data
    except ValidationError as exc:
        read.errors.extend(_schema_errors(path, data, exc))


def read_dir(directory: Path) -> FlowFiles:
    """Read every `*.yaml` of `directory`: `conversation.yaml`, `faq.yaml`, and one flow per
    other file. A file with a mistake is left out and its mistakes are kept."""
    read = FlowFiles(directory)
    if not directory.is_dir():
        read.errors.append(f"{directory}:0: not a directory of flows")
        return read
    for path in sorted(directory.glob("*.yaml")):
        if path.name == CONVERSATION_FILE:
            _read_conversation(path, read)
            continue
        if path.name == FAQ_FILE:
            _read_faq(path, read)
            continue
        try:
            data = load_yaml(path)
        except YamlError as exc:
            read.errors.append(f"{path}:{exc.line}: {exc}")
            continue
        if not isinstance(data, LineDict):
            read.errors.append(f"{path}:1: a flow file is a mapping starting with `flow:`")
            continue
        _prepare_flow(data)
        try:
            spec = FlowFile.model_validate(data)
        except ValidationError as exc:
            read.errors.extend(_schema_errors(path, data, exc))
            continue
        if spec.flow in read.flows:
            other = read.flows[spec.flow][0]
            read.errors.append(f"{path}:{spec.line}: flow {spec.flow!r} is also defined in {other}")
            continue
        read.flows[spec.flow] = (path, spec)
        read.raw[spec.flow] = data
    if read.conversation is None and not any(CONVERSATION_FILE in e for e in read.errors):
        read.errors.append(f"{directory / CONVERSATION_FILE}:0: missing conversation file")
    return read
