"""Reading a Disqus export as a stream: expat in chunks, DTDs and entities refused, each
child of <disqus> (category, thread, post) handed over once it is complete."""

from __future__ import annotations

from forum.tools.wxr_reader import Element, StreamReader

DISQUS_NS = "http://disqus.com"
INTERNALS_NS = "http://disqus.com/disqus-internals"


class DisqusError(Exception):
    """The file cannot be imported; `line` says where (None when it is the whole file)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.args[0]}" if self.line else self.args[0]


class DisqusReader(StreamReader):
    """Stream the children of <disqus> (category, thread, post) as Elements."""

    error = DisqusError
    refused = "not in Disqus exports, and refused for safety"

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        line = self._parser.CurrentLineNumber
        tag = _tag(name)
        if not self._stack and tag != "disqus":
            raise DisqusError(line, f"not a Disqus export: the root is <{tag}>, not <disqus>")
        element = Element(tag, line, {_tag(k): v for k, v in attrs.items()})
        if len(self._stack) > 1:
            self._stack[-1].children.append(element)
        self._stack.append(element)

    def _end(self, _name: str) -> None:
        element = self._stack.pop()
        if len(self._stack) == 1:
            self._ready.append(element)

    def _data(self, text: str) -> None:
        if len(self._stack) > 1:
            self._stack[-1].parts.append(text)


def _tag(name: str) -> str:
    """Disqus elements by their local name, internals as 'dsq:name'."""
    namespace, _, local = name.rpartition(" ")
    if namespace == DISQUS_NS:
        return local
    if namespace == INTERNALS_NS:
        return f"dsq:{local}"
    return f"{{{namespace}}}{local}" if namespace else local
