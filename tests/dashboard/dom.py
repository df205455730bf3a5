"""A small HTML tree for asserting on rendered pages, on the standard library's parser.

`parse(html).find_all("tr", data_call_sid="CA1")`, `.find("section", id="transcript")`,
`class_="turn agent"` (has every class), `node.text` (whitespace collapsed), `node["href"]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Node:
    """An element with its attributes, children and text."""

    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def __getitem__(self, name: str) -> str:
        return self.attrs[name]

    def get(self, name: str, default: str | None = None) -> str | None:
        """An attribute, or `default`."""
        return self.attrs.get(name, default)

    @property
    def text(self) -> str:
        """All the text inside, whitespace collapsed."""
        parts: list[str] = []

        def walk(node: Node) -> None:
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                else:
                    walk(child)

        walk(self)
        return " ".join(" ".join(parts).split())

    @property
    def classes(self) -> set[str]:
        """The element's classes."""
        return set((self.attrs.get("class") or "").split())

    def matches(self, tag: str | None, attrs: dict[str, str | bool]) -> bool:
        """Whether this element is a `tag` with `attrs` (True: present; class_: has all)."""
        if tag is not None and self.tag != tag:
            return False
        for key, want in attrs.items():
            if key == "class_":
                if not set(str(want).split()) <= self.classes:
                    return False
                continue
            name = key.replace("_", "-")
            if want is True:
                if name not in self.attrs:
                    return False
            elif self.attrs.get(name) != want:
                return False
        return True

    def find_all(self, tag: str | None = None, **attrs: str | bool) -> list[Node]:
        """Every element inside that matches, in document order."""
        found: list[Node] = []
        for child in self.children:
            if isinstance(child, Node):
                if child.matches(tag, attrs):
                    found.append(child)
                found.extend(child.find_all(tag, **attrs))
        return found

    def find(self, tag: str | None = None, **attrs: str | bool) -> Node | None:
        """The first element inside that matches, or None."""
        found = self.find_all(tag, **attrs)
        return found[0] if found else None

    def one(self, tag: str | None = None, **attrs: str | bool) -> Node:
        """The one element inside that matches; AssertionError when none or several do."""
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"expected one <{tag} {attrs}>, found {len(found)}"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v if v is not None else "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    """The document's tree."""
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root
